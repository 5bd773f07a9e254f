"""Transaction endpoints: validate, call one service, render."""

import functools

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import IsAdmin, IsAuditorOrAdmin
from accounts.selectors import find_user, user_reference
from transactions import selectors, services, stats
from transactions.idempotency import (
    IdempotencyRequest,
    IdempotentReplay,
    RenderedJSON,
    check_stored,
    fingerprint,
    record_replay,
    store_refusal,
    validate_key,
)
from transactions.models import ScheduledTransfer, Transaction, TransactionType, TransferBatch
from transactions.serializers import (
    BatchDetailSerializer,
    BatchInputSerializer,
    BatchSerializer,
    CreditInputSerializer,
    DebitInputSerializer,
    HistoryFilterSerializer,
    ReverseInputSerializer,
    ScheduledTransferSerializer,
    ScheduleFilterSerializer,
    ScheduleInputSerializer,
    StatsSerializer,
    TransactionSerializer,
    TransferInputSerializer,
)
from transactions.services.movements import recipient_not_found
from wallet_project.errors import (
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    NotFoundError,
    PermissionDeniedError,
)
from wallet_project.exception_handler import handle_exception
from wallet_project.pagination import CursorPagination
from wallet_project.schema import ERRORS, LIST_ERRORS

NOT_STORED = {"idempotency_key_reused", "idempotency_in_progress"}
NOT_STORED_ERRORS = (IdempotencyKeyReusedError, IdempotencyInProgressError)

IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description="1-255 printable ASCII. Same key and body replays the first response.",
)


def idempotent(handler):
    """Give the action an `idempotency` argument from the `Idempotency-Key` header.

    A known key replays the stored response (`Idempotent-Replayed: true`); refusals other
    than 5xx, 429 and the two idempotency 409s are stored so a retry gets the same answer.
    """

    @functools.wraps(handler)
    def wrapper(self, request: Request, *args, **kwargs) -> Response:
        raw = request.headers.get("Idempotency-Key")
        if raw is None:
            return handler(self, request, *args, idempotency=None, **kwargs)
        key = validate_key(raw)
        try:
            body = request.data
        except ParseError:
            body = request.body.decode("utf-8", "replace")
        idem = IdempotencyRequest(
            user_id=request.user.pk,
            key=key,
            fingerprint=fingerprint(method=request.method, path=request.path, body=body),
        )
        try:
            try:
                return handler(self, request, *args, idempotency=idem, **kwargs)
            except (IdempotentReplay, *NOT_STORED_ERRORS):
                raise
            except Exception:
                check_stored(idem)  # refused before its claim: a known key answers as before
                raise
        except IdempotentReplay as replay:
            record_replay(idempotency=idem, replay=replay)
            return Response(
                replay.body, status=replay.status, headers={"Idempotent-Replayed": "true"}
            )
        except Exception as exc:
            response = handle_exception(exc, self.get_exception_handler_context())
            code = response.data["error"]["code"]
            if (
                response.status_code < 500
                and response.status_code != 429
                and code not in NOT_STORED
            ):
                store_refusal(idempotency=idem, status=response.status_code, body=response.data)
            return response

    return wrapper


PREFER_HEADER = OpenApiParameter(
    name="Prefer",
    location=OpenApiParameter.HEADER,
    required=False,
    description="`respond-async`: answer 202 with a pending transaction, processed by a worker.",
)


class Rendering:
    """A result's response, rendered once: the body stored with the key is the body sent."""

    def __init__(self, request: Request, status_code: int, serializer=None):
        self.viewer = request.user
        self.status_code = status_code
        self.serializer = serializer or TransactionSerializer
        self._rendered: tuple[object, RenderedJSON] | None = None

    def __call__(self, obj) -> tuple[int, RenderedJSON]:
        if self._rendered is None or self._rendered[0] is not obj:
            data = self.serializer(obj, context={"viewer": self.viewer}).data
            self._rendered = (obj, RenderedJSON(data))
        return self.status_code, self._rendered[1]

    def response(self, obj) -> HttpResponse:
        status_code, body = self(obj)
        return HttpResponse(body.content, status=status_code, content_type="application/json")


def _rendering(
    request: Request, idempotency: IdempotencyRequest | None, status_code: int, serializer=None
) -> Rendering:
    rendering = Rendering(request, status_code, serializer)
    if idempotency:
        idempotency.render = rendering
    return rendering


def wants_async(request: Request) -> bool:
    """True if the `Prefer` header asks for `respond-async` (RFC 7240)."""
    tokens = request.headers.get("Prefer", "").split(",")
    return any(t.split(";")[0].split("=")[0].strip().lower() == "respond-async" for t in tokens)


def _recipient(user_id: int, *, read: bool = True) -> User:
    """The recipient named by `user_id`, read; with `read=False` only a reference to it,
    for a transfer, which checks that the recipient exists under its locks."""
    recipient = find_user(user_id=user_id) if read else user_reference(user_id=user_id)
    if recipient is None:
        raise recipient_not_found()
    return recipient


def _party(*, viewer: User, requested: int | None, field: str) -> User:
    """The account a movement acts on: the caller's own, or any for an admin."""
    if requested is None or requested == viewer.pk:
        return viewer
    if not viewer.is_admin:
        raise PermissionDeniedError(f"Only an admin may set {field}.")
    user = find_user(user_id=requested)
    if user is None:
        raise NotFoundError(f"No user {requested}.", details={field: requested})
    return user


MOVEMENT_ERRORS = ERRORS(400, 401, 403, 404, 409, 413, 422, 429)
ASYNC_DESCRIPTION = (
    "With `Prefer: respond-async`: the transaction, `pending`; it becomes `completed`, or "
    "`failed` with `failure_code` (e.g. insufficient_funds), as GET transactions/{id} shows."
)
# The OpenAPI description shared by credit, debit and transfer.
MOVEMENT_SCHEMA = {
    "parameters": [IDEMPOTENCY_HEADER, PREFER_HEADER],
    "responses": {
        201: TransactionSerializer,
        202: OpenApiResponse(TransactionSerializer, description=ASYNC_DESCRIPTION),
        **MOVEMENT_ERRORS,
    },
}


class TransactionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Money movement and transaction reads."""

    serializer_class = TransactionSerializer
    queryset = Transaction.objects.none()
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Transaction:
        return selectors.get_transaction_for_viewer(
            viewer=self.request.user, transaction_id=self.kwargs["pk"]
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "viewer": None}

    @extend_schema(responses={200: TransactionSerializer, **ERRORS(401, 404)})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    def _queue(
        self, request: Request, idempotency: IdempotencyRequest | None, **movement
    ) -> Response:
        """The `Prefer: respond-async` answer: a pending transaction, processed by a worker."""
        rendering = _rendering(request, idempotency, status.HTTP_202_ACCEPTED)
        txn = services.create_pending(actor=request.user, idempotency=idempotency, **movement)
        response = rendering.response(txn)
        response["Preference-Applied"] = "respond-async"
        return response

    @extend_schema(request=CreditInputSerializer, **MOVEMENT_SCHEMA)
    @action(detail=False, methods=["post"])
    @idempotent
    def credit(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        return self._one_account(request, idempotency, kind=TransactionType.CREDIT)

    @extend_schema(request=DebitInputSerializer, **MOVEMENT_SCHEMA)
    @action(detail=False, methods=["post"])
    @idempotent
    def debit(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        return self._one_account(request, idempotency, kind=TransactionType.DEBIT)

    def _one_account(
        self, request: Request, idempotency: IdempotencyRequest | None, *, kind: str
    ) -> Response:
        """A credit or a debit of the caller's own account (any account, for an admin)."""
        credit = kind == TransactionType.CREDIT
        payload = (CreditInputSerializer if credit else DebitInputSerializer)(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        user = _party(viewer=request.user, requested=data.pop("user_id", None), field="user_id")
        if wants_async(request):
            parties = (
                {"to_user": user, "from_user": None}
                if credit
                else {
                    "from_user": user,
                    "to_user": None,
                }
            )
            return self._queue(request, idempotency, kind=kind, **parties, **data)
        rendering = _rendering(request, idempotency, status.HTTP_201_CREATED)
        service = services.credit if credit else services.debit
        txn = service(actor=request.user, user=user, idempotency=idempotency, **data)
        return rendering.response(txn)

    @extend_schema(request=TransferInputSerializer, **MOVEMENT_SCHEMA)
    @action(detail=False, methods=["post"])
    @idempotent
    def transfer(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = TransferInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        sender = _party(
            viewer=request.user, requested=data.pop("from_user_id", None), field="from_user_id"
        )
        to_user_id = data.pop("to_user_id")
        if wants_async(request):
            return self._queue(
                request,
                idempotency,
                kind=TransactionType.TRANSFER,
                from_user=sender,
                to_user=_recipient(to_user_id),
                **data,
            )
        rendering = _rendering(request, idempotency, status.HTTP_201_CREATED)
        txn = services.transfer(
            actor=request.user,
            sender=sender,
            recipient=_recipient(to_user_id, read=False),
            idempotency=idempotency,
            **data,
        )
        return rendering.response(txn)

    @extend_schema(
        request=ReverseInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: TransactionSerializer, **MOVEMENT_ERRORS},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAdmin])
    @idempotent
    def reverse(
        self, request: Request, pk: str, idempotency: IdempotencyRequest | None
    ) -> Response:
        payload = ReverseInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rendering = _rendering(request, idempotency, status.HTTP_201_CREATED)
        txn = services.reverse(
            actor=request.user,
            transaction_id=pk,
            reason=payload.validated_data["reason"],
            idempotency=idempotency,
        )
        return rendering.response(txn)

    @extend_schema(
        parameters=[HistoryFilterSerializer],
        responses={200: TransactionSerializer(many=True), **LIST_ERRORS(400, 401, 403)},
    )
    @action(detail=False, methods=["get"])
    def history(self, request: Request) -> Response:
        filters = HistoryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        user_id = selectors.resolve_subject_user_id(
            viewer=request.user, requested=data.pop("user_id", None)
        )
        qs = selectors.list_transaction_history(
            user_id=user_id, start=data.pop("from", None), end=data.pop("to", None), **data
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(TransactionSerializer(page, many=True).data)


class BatchViewSet(viewsets.GenericViewSet):
    """Batch transfers: submit up to 10,000 at once, then follow their progress."""

    serializer_class = BatchSerializer
    queryset = TransferBatch.objects.none()
    lookup_value_regex = "[^/]+"

    @extend_schema(
        request=BatchInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            202: OpenApiResponse(
                BatchSerializer,
                description="Accepted; processed by the worker pool. A malformed item "
                "rejects the whole request with 400 and `details` keyed by item index.",
            ),
            **ERRORS(400, 401, 403, 409, 413, 429),
        },
    )
    @idempotent
    def create(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = BatchInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        rendering = _rendering(request, idempotency, status.HTTP_202_ACCEPTED, BatchSerializer)
        batch = services.create_batch(
            actor=request.user, idempotency=idempotency, **payload.validated_data
        )
        return rendering.response(batch)

    @extend_schema(responses={200: BatchDetailSerializer, **ERRORS(401, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        batch = selectors.get_batch_for_viewer(viewer=request.user, batch_id=pk)
        items = selectors.list_batch_item_results(batch_id=batch.pk)
        return Response(BatchDetailSerializer(batch, context={"items": items}).data)


class ScheduledTransferViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Scheduled transfers: one-time or recurring; users see their own, staff see all."""

    serializer_class = ScheduledTransferSerializer
    queryset = ScheduledTransfer.objects.none()
    pagination_class = CursorPagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if self.action != "list":
            return selectors.list_schedules_for_viewer(viewer=self.request.user)
        filters = ScheduleFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.list_schedules_for_viewer(
            viewer=self.request.user, user_id=filters.validated_data.get("user_id")
        )

    def get_object(self) -> ScheduledTransfer:
        return selectors.get_schedule_for_viewer(
            viewer=self.request.user, schedule_id=self.kwargs["pk"]
        )

    @extend_schema(
        parameters=[ScheduleFilterSerializer],
        responses={200: ScheduledTransferSerializer(many=True), **LIST_ERRORS(400, 401, 403)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: ScheduledTransferSerializer, **ERRORS(401, 404)})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        request=ScheduleInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: ScheduledTransferSerializer, **MOVEMENT_ERRORS},
    )
    @idempotent
    def create(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = ScheduleInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        sender = _party(
            viewer=request.user, requested=data.pop("from_user_id", None), field="from_user_id"
        )
        recipient = _recipient(data.pop("to_user_id"))
        rendering = _rendering(
            request, idempotency, status.HTTP_201_CREATED, ScheduledTransferSerializer
        )
        schedule = services.create_schedule(
            actor=request.user,
            sender=sender,
            recipient=recipient,
            idempotency=idempotency,
            **data,
        )
        return rendering.response(schedule)

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Cancelled: no further run."),
            **ERRORS(401, 403, 404, 422),
        }
    )
    def destroy(self, request: Request, pk: str) -> Response:
        schedule = self.get_object()
        services.cancel_schedule(actor=request.user, schedule_id=schedule.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class StatsView(APIView):
    """Transaction counts by type and status, and completed volume by currency."""

    permission_classes = [IsAuditorOrAdmin]

    @extend_schema(responses={200: StatsSerializer, **ERRORS(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(StatsSerializer(stats.transaction_stats()).data)

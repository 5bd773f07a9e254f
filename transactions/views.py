"""Transaction endpoints: validate, call one service, render."""

import functools

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import IsAdmin
from accounts.selectors import get_active_user
from transactions import selectors, services
from transactions.idempotency import (
    IdempotencyRequest,
    IdempotentReplay,
    check_before,
    fingerprint,
    store_refusal,
    validate_key,
)
from transactions.models import Transaction
from transactions.serializers import (
    CreditInputSerializer,
    DebitInputSerializer,
    HistoryFilterSerializer,
    ReverseInputSerializer,
    TransactionSerializer,
    TransferInputSerializer,
)
from wallet_project.errors import NotFoundError, PermissionDeniedError
from wallet_project.exception_handler import handle_exception
from wallet_project.pagination import CursorPagination
from wallet_project.schema import ERRORS

NOT_STORED = {"idempotency_key_reused", "idempotency_in_progress"}

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
            check_before(idem)
            return handler(self, request, *args, idempotency=idem, **kwargs)
        except IdempotentReplay as replay:
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


def _render_for(request: Request, status_code: int):
    return lambda txn: (
        status_code,
        TransactionSerializer(txn, context={"viewer": request.user}).data,
    )


def _party(*, viewer: User, requested: int | None, field: str) -> User:
    """The account a movement acts on: the caller's own, or any for an admin."""
    if requested is None or requested == viewer.pk:
        return viewer
    if not viewer.is_admin:
        raise PermissionDeniedError(f"Only an admin may set {field}.")
    user = get_active_user(user_id=requested)
    if user is None:
        raise NotFoundError(f"No user {requested}.", details={field: requested})
    return user


MOVEMENT_ERRORS = ERRORS(400, 401, 403, 404, 409, 413, 422, 429)


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

    def _respond(self, request: Request, txn: Transaction, code: int = 201) -> Response:
        return Response(
            TransactionSerializer(txn, context={"viewer": request.user}).data, status=code
        )

    @extend_schema(
        request=CreditInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: TransactionSerializer, **MOVEMENT_ERRORS},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def credit(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = CreditInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        user = _party(viewer=request.user, requested=data.pop("user_id", None), field="user_id")
        if idempotency:
            idempotency.render = _render_for(request, 201)
        txn = services.credit(actor=request.user, user=user, idempotency=idempotency, **data)
        return self._respond(request, txn)

    @extend_schema(
        request=DebitInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: TransactionSerializer, **MOVEMENT_ERRORS},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def debit(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = DebitInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        user = _party(viewer=request.user, requested=data.pop("user_id", None), field="user_id")
        if idempotency:
            idempotency.render = _render_for(request, 201)
        txn = services.debit(actor=request.user, user=user, idempotency=idempotency, **data)
        return self._respond(request, txn)

    @extend_schema(
        request=TransferInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={201: TransactionSerializer, **MOVEMENT_ERRORS},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def transfer(self, request: Request, idempotency: IdempotencyRequest | None) -> Response:
        payload = TransferInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        sender = _party(
            viewer=request.user, requested=data.pop("from_user_id", None), field="from_user_id"
        )
        recipient = get_active_user(user_id=data.pop("to_user_id"))
        if recipient is None:
            raise NotFoundError(
                "The recipient does not exist.", details={"to_user_id": ["Unknown user."]}
            )
        if idempotency:
            idempotency.render = _render_for(request, 201)
        txn = services.transfer(
            actor=request.user,
            sender=sender,
            recipient=recipient,
            idempotency=idempotency,
            **data,
        )
        return self._respond(request, txn)

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
        if idempotency:
            idempotency.render = _render_for(request, 201)
        txn = services.reverse(
            actor=request.user,
            transaction_id=pk,
            reason=payload.validated_data["reason"],
            idempotency=idempotency,
        )
        return self._respond(request, txn)

    @extend_schema(
        parameters=[HistoryFilterSerializer],
        responses={200: TransactionSerializer(many=True), **ERRORS(400, 401, 403)},
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

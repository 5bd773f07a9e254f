"""Auth and user endpoints: validate, call one service, render."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services, throttles
from accounts.models import User
from accounts.permissions import AuditorsReadOnly, IsAdmin, IsAuditorOrAdmin
from accounts.serializers import (
    LoginInputSerializer,
    RefreshInputSerializer,
    RefreshOutputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    UserFilterSerializer,
    UserReplaceInputSerializer,
    UserSerializer,
    UserUpdateInputSerializer,
)
from wallet_project.errors import InvalidCredentialsError
from wallet_project.schema import ERRORS, LIST_ERRORS


class AuthViewSet(viewsets.ViewSet):
    """Register, log in, refresh, log out, and who am I."""

    permission_classes = (AllowAny,)

    def get_throttles(self):
        self.throttle_scope = {"login": "login", "register": "register"}.get(self.action, "")
        return super().get_throttles()

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: UserSerializer, **ERRORS(400, 413, 429)},
        auth=[],
        summary="Register",
        description="Create a `user` account. Username 3-150 characters of `[A-Za-z0-9_.-]`; "
        "username and email unique case-insensitively (a duplicate is `400` on that field); "
        "the email's domain is stored lowercased; Django's password validators apply.",
    )
    @action(detail=False, methods=["post"])
    def register(self, request: Request) -> Response:
        payload = RegisterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = services.register_user(**payload.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=LoginInputSerializer,
        responses={200: TokenPairSerializer, **ERRORS(400, 401, 413, 429)},
        auth=[],
        summary="Log in",
        description="`username` may be the email. Wrong password, unknown or inactive user: "
        "`401 invalid_credentials`. More than 20 attempts a minute from one address, or 10 "
        "failures for one account within a minute: `429 throttled` with `Retry-After`.",
    )
    @action(detail=False, methods=["post"])
    def login(self, request: Request) -> Response:
        payload = LoginInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        login = payload.validated_data["username"]
        known = selectors.get_user_by_login(login=login)
        failure_key = throttles.failure_key(login=login, user_id=known.pk if known else None)
        throttles.ensure_login_not_locked(key=failure_key)
        user = authenticate(request, username=login, password=payload.validated_data["password"])
        if user is None:
            throttles.count_failure(key=failure_key)
            services.record_login(user=known, username=login, succeeded=False)
            raise InvalidCredentialsError()
        throttles.clear_failures(key=failure_key)
        services.record_login(user=user, username=login, succeeded=True)
        tokens = services.issue_tokens(user=user)
        output = TokenPairSerializer(
            {
                "access": tokens.access,
                "refresh": tokens.refresh,
                "token_type": "Bearer",
                "expires_in": tokens.expires_in,
            }
        )
        return Response(output.data)

    @extend_schema(
        request=RefreshInputSerializer,
        responses={200: RefreshOutputSerializer, **ERRORS(400, 401, 413)},
        auth=[],
        summary="Refresh",
        description="Exchange a refresh token for a new pair; the old refresh token is "
        "blacklisted. Presenting a refresh token that was already used or revoked is "
        "`401 invalid_token` and ends every session of that user (reuse means theft). "
        "An expired refresh token is `401 token_expired`.",
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        payload = RefreshInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        tokens = services.rotate_refresh_token(refresh=payload.validated_data["refresh"])
        output = RefreshOutputSerializer({"access": tokens.access, "refresh": tokens.refresh})
        return Response(output.data)

    @extend_schema(
        request=RefreshInputSerializer,
        responses={204: OpenApiResponse(description="Logged out."), **ERRORS(400, 401)},
        summary="Log out",
        description="Blacklist the caller's own refresh token (another user's is `401`).",
    )
    @action(detail=False, methods=["post"], permission_classes=[IsAuthenticated])
    def logout(self, request: Request) -> Response:
        payload = RefreshInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.revoke_refresh_token(user=request.user, refresh=payload.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: UserSerializer, **ERRORS(401)}, summary="Who am I")
    @action(detail=False, methods=["get"], permission_classes=[IsAuthenticated])
    def me(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Users: admins and auditors list; everyone sees and edits themselves."""

    serializer_class = UserSerializer
    queryset = User.objects.none()

    def get_permissions(self):
        if self.action == "list":
            return [IsAuditorOrAdmin()]
        if self.action == "destroy":
            return [IsAuthenticated(), IsAdmin()]
        return [AuditorsReadOnly()]

    def get_queryset(self):
        filters = UserFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.list_users(**filters.validated_data)

    def get_object(self) -> User:
        return selectors.get_user_for_viewer(viewer=self.request.user, user_id=self.kwargs["pk"])

    @extend_schema(
        parameters=[UserFilterSerializer],
        responses={200: UserSerializer(many=True), **LIST_ERRORS(400, 401, 403)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: UserSerializer, **ERRORS(401, 404)})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    def _update(self, request: Request, *, partial: bool) -> Response:
        user = self.get_object()
        serializer_class = UserUpdateInputSerializer if partial else UserReplaceInputSerializer
        payload = serializer_class(data=request.data)
        payload.is_valid(raise_exception=True)
        updated = services.update_user(actor=request.user, user=user, **payload.validated_data)
        return Response(UserSerializer(updated).data)

    @extend_schema(
        request=UserReplaceInputSerializer,
        responses={200: UserSerializer, **ERRORS(400, 401, 403, 404)},
        description="Replace the profile: `username` and `email` are required. A user may not "
        "send `role` or `is_active` (403); a new `password` needs `current_password`. "
        "A new password ends every session of that user.",
    )
    def update(self, request: Request, pk=None) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        request=UserUpdateInputSerializer,
        responses={200: UserSerializer, **ERRORS(400, 401, 403, 404)},
        description="Change some fields. A user may not send `role` or `is_active` (403); "
        "a new `password` needs `current_password`. A new password ends every session.",
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        return self._update(request, partial=True)

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Deactivated; every transaction is kept."),
            **ERRORS(401, 403, 404, 409),
        },
        description="Soft delete (admin): the user is deactivated and their sessions end. "
        "`409 conflict` while any balance is non-zero.",
    )
    def destroy(self, request: Request, pk=None) -> Response:
        user = self.get_object()
        services.deactivate_user(actor=request.user, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)

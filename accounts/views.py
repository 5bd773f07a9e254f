"""Auth and user endpoints: validate, call one service, render."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import selectors, services, throttles
from accounts.models import User
from accounts.permissions import IsAdmin, IsAuditorOrAdmin
from accounts.serializers import (
    LoginInputSerializer,
    RefreshInputSerializer,
    RefreshOutputSerializer,
    RegisterInputSerializer,
    TokenPairSerializer,
    UserFilterSerializer,
    UserSerializer,
    UserUpdateInputSerializer,
)
from wallet_project.errors import InvalidCredentialsError, InvalidTokenError, NotFoundError
from wallet_project.schema import ERRORS


class AuthViewSet(viewsets.ViewSet):
    """Register, log in, refresh, log out, and who am I."""

    permission_classes = (AllowAny,)

    def get_throttles(self):
        self.throttle_scope = {"login": "login", "register": "register"}.get(self.action, "")
        return super().get_throttles()

    @extend_schema(
        request=RegisterInputSerializer,
        responses={201: UserSerializer, **ERRORS(400, 429)},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def register(self, request: Request) -> Response:
        payload = RegisterInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = services.register_user(**payload.validated_data)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=LoginInputSerializer,
        responses={200: TokenPairSerializer, **ERRORS(400, 401, 429)},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def login(self, request: Request) -> Response:
        payload = LoginInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        username = payload.validated_data["username"]
        throttles.ensure_username_not_locked(username=username)
        user = authenticate(request, username=username, password=payload.validated_data["password"])
        if user is None:
            throttles.count_failure(username=username)
            known = selectors.list_users(search=None).filter(username__iexact=username).first()
            services.record_login(user=known, username=username, succeeded=False)
            raise InvalidCredentialsError()
        services.record_login(user=user, username=username, succeeded=True)
        refresh = RefreshToken.for_user(user)
        body = {
            "access": str(refresh.access_token),
            "refresh": str(refresh),
            "token_type": "Bearer",
            "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
        return Response(body)

    @extend_schema(
        request=RefreshInputSerializer,
        responses={200: RefreshOutputSerializer, **ERRORS(400, 401)},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request: Request) -> Response:
        payload = TokenRefreshSerializer(data=request.data)
        try:
            payload.is_valid(raise_exception=True)
        except TokenError as exc:
            raise InvalidTokenError(str(exc)) from exc
        return Response(
            {
                "access": payload.validated_data["access"],
                "refresh": payload.validated_data["refresh"],
            }
        )

    @extend_schema(
        request=RefreshInputSerializer,
        responses={204: OpenApiResponse(description="Logged out."), **ERRORS(400, 401)},
    )
    @action(detail=False, methods=["post"], permission_classes=[IsAuthenticated])
    def logout(self, request: Request) -> Response:
        payload = RefreshInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            token = RefreshToken(payload.validated_data["refresh"])
            if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(request.user.pk):
                raise InvalidTokenError("This refresh token belongs to another user.")
            token.blacklist()
        except TokenError as exc:
            raise InvalidTokenError(str(exc)) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: UserSerializer, **ERRORS(401)})
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
        return [IsAuthenticated()]

    def get_queryset(self):
        filters = UserFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.list_users(**filters.validated_data)

    def get_object(self) -> User:
        return selectors.get_user_for_viewer(viewer=self.request.user, user_id=self.kwargs["pk"])

    @extend_schema(parameters=[UserFilterSerializer], responses={200: UserSerializer(many=True)})
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={200: UserSerializer, **ERRORS(401, 404)})
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    def _update(self, request: Request, *, partial: bool) -> Response:
        user = self.get_object()
        if request.user.pk != user.pk and not request.user.is_admin:
            from wallet_project.errors import PermissionDeniedError

            raise PermissionDeniedError("Only an admin can change another user.")
        payload = UserUpdateInputSerializer(data=request.data, partial=partial)
        payload.is_valid(raise_exception=True)
        updated = services.update_user(actor=request.user, user=user, **payload.validated_data)
        return Response(UserSerializer(updated).data)

    @extend_schema(
        request=UserUpdateInputSerializer, responses={200: UserSerializer, **ERRORS(400, 403, 404)}
    )
    def update(self, request: Request, pk=None) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        request=UserUpdateInputSerializer, responses={200: UserSerializer, **ERRORS(400, 403, 404)}
    )
    def partial_update(self, request: Request, pk=None) -> Response:
        return self._update(request, partial=True)

    @extend_schema(
        responses={204: OpenApiResponse(description="Deactivated."), **ERRORS(403, 404, 409)}
    )
    def destroy(self, request: Request, pk=None) -> Response:
        try:
            user = selectors.get_user_for_viewer(viewer=request.user, user_id=pk)
        except NotFoundError:
            raise
        services.deactivate_user(actor=request.user, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)

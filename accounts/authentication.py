"""Bearer JWT authentication; a deactivated user's tokens stop working at once.

Failures carry the `docs/api.md` codes as their DRF `default_code`: `token_expired` for a genuine
token past its expiry (the signature is checked first, so a forged token is never "expired"),
`invalid_token` for everything else (bad signature, wrong token type, unknown or inactive
user, a password changed since the token was issued).
"""

import functools

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow, get_md5_hash_password

from accounts.selectors import find_user
from wallet_project.request_context import user_id_var


class TokenExpiredFailure(exceptions.AuthenticationFailed):
    default_detail = "The token has expired."
    default_code = "token_expired"


class InvalidTokenFailure(exceptions.AuthenticationFailed):
    default_detail = "The token is invalid."
    default_code = "invalid_token"


@functools.lru_cache(maxsize=4096)
def _decoded(raw_token: bytes, token_class: type[Token]) -> Token:
    """`raw_token` decoded and verified (signature, type, expiry), once per process.

    A client sends the same access token with every request for its lifetime; checking
    the signature and base64 again each time is most of authentication's cost. Failures
    raise and are not cached; the caller checks expiry again on every use, and the user
    (active, password unchanged) is read on every request.
    """
    return token_class(raw_token)


class BearerAuthentication(JWTAuthentication):
    """`Authorization: Bearer <access>`; binds the user id to the request's log context."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None:
            user_id_var.set(result[0].pk)
        return result

    def get_validated_token(self, raw_token: bytes):
        for token_class in jwt_settings.AUTH_TOKEN_CLASSES:
            try:
                token = _decoded(raw_token, token_class)
            except ExpiredTokenError as exc:
                raise TokenExpiredFailure() from exc
            except TokenError:
                continue
            try:
                token.check_exp(current_time=aware_utcnow())
            except TokenError as exc:  # its signature was checked: it is genuinely expired
                raise TokenExpiredFailure() from exc
            return token
        raise InvalidTokenFailure()

    def get_user(self, validated_token):
        """The token's user; unknown, inactive or re-passworded users get one answer.

        simplejwt's own checks (active, password digest), with the user read by one
        prepared statement (`user_by_pk`) rather than a built ORM query: this runs on
        every request.
        """
        user = find_user(user_id=validated_token.get(jwt_settings.USER_ID_CLAIM))
        if user is None or not user.is_active:
            raise InvalidTokenFailure()
        if jwt_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise InvalidTokenFailure()
        return user


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents `BearerAuthentication` in the OpenAPI schema as an HTTP bearer JWT."""

    target_class = BearerAuthentication
    name = "Bearer"

    def get_security_requirement(self, auto_schema):
        # SPECTACULAR_SETTINGS["SECURITY"] already adds {"Bearer": []} to every operation.
        return None

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="AUTHORIZATION",
            token_prefix=jwt_settings.AUTH_HEADER_TYPES[0],
            bearer_format="JWT",
        )

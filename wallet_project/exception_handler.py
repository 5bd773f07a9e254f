"""The one DRF exception handler: every error becomes the docs/api.md envelope.

`WalletError`s map directly. DRF exceptions map by their `default_code` (`parse_error` is
`malformed_json`, an authentication failure is `invalid_token` unless its code says
`token_expired`); Django's `ValidationError`, `Http404` and `PermissionDenied` map to their
API codes. Anything else is logged with its traceback and answered `500 internal_error`
with nothing of the exception in the body.
"""

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from wallet_project import errors
from wallet_project.db import database_unavailable
from wallet_project.envelope import STATUS_ERRORS, error_body

logger = logging.getLogger("wallet.errors")

# DRF default_code -> (API code, message). The message is ours: DRF's texts may quote input.
_DRF_CODES: dict[str, tuple[str, str]] = {
    "parse_error": ("malformed_json", errors.MalformedJsonError.message),
    "not_authenticated": ("not_authenticated", errors.NotAuthenticatedError.message),
    "authentication_failed": ("invalid_token", errors.InvalidTokenError.message),
    "invalid_token": ("invalid_token", errors.InvalidTokenError.message),
    "token_expired": ("token_expired", errors.TokenExpiredError.message),
    "permission_denied": ("permission_denied", errors.PermissionDeniedError.message),
    "not_found": ("not_found", errors.NotFoundError.message),
    "method_not_allowed": ("method_not_allowed", errors.MethodNotAllowedError.message),
    "unsupported_media_type": (
        "unsupported_media_type",
        errors.UnsupportedMediaTypeError.message,
    ),
    "not_acceptable": ("not_acceptable", "The requested response format is not available."),
}

# Fallback by HTTP status for an APIException with a code we do not know: the envelope's
# table, except that a DRF 401 here is a token DRF refused.
_STATUS_CODES: dict[int, tuple[str, str]] = {
    **STATUS_ERRORS,
    400: ("validation_error", errors.ValidationFailedError.message),
    401: ("invalid_token", errors.InvalidTokenError.message),
}


def _flatten(detail: Any) -> Any:
    """Turn DRF ErrorDetail trees into plain JSON (strings, lists, dicts)."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _validation_details(detail: Any) -> dict:
    """`details` of a validation_error: field -> list of messages."""
    flat = _flatten(detail)
    if isinstance(flat, dict):
        return {k: v if isinstance(v, list | dict) else [v] for k, v in flat.items()}
    if isinstance(flat, list):
        return {"non_field_errors": flat}
    return {"non_field_errors": [flat]}


def _describe(exc: Exception) -> tuple[int, str, str, dict[str, Any], dict[str, str]]:
    """(status, code, message, details, headers) of any exception."""
    exc = database_unavailable(exc) or exc
    if isinstance(exc, errors.WalletError):
        headers = {}
        if exc.http_status == 429:
            headers["Retry-After"] = str(exc.details.get("retry_after", 60))
        if isinstance(exc, errors.ServiceUnavailableError):
            headers["Retry-After"] = str(exc.retry_after)
        return exc.http_status, exc.code, exc.message, exc.details, headers
    if isinstance(exc, Http404):
        return 404, "not_found", errors.NotFoundError.message, {}, {}
    if isinstance(exc, DjangoPermissionDenied):
        return 403, "permission_denied", errors.PermissionDeniedError.message, {}, {}
    if isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return 400, "validation_error", errors.ValidationFailedError.message, details, {}
    if isinstance(exc, drf.ValidationError):
        details = _validation_details(exc.detail)
        return 400, "validation_error", errors.ValidationFailedError.message, details, {}
    if isinstance(exc, drf.Throttled):
        # djangorestframework-stubs omit `wait`, which Throttled.__init__ sets.
        wait_seconds = exc.wait  # type: ignore[attr-defined]
        wait = max(math.ceil(wait_seconds), 1) if wait_seconds is not None else 60
        message = f"Too many requests; retry in {wait} seconds."
        return 429, "throttled", message, {"retry_after": wait}, {"Retry-After": str(wait)}
    if isinstance(exc, drf.APIException):
        status = exc.status_code
        default = _STATUS_CODES.get(status, ("internal_error", errors.WalletError.message))
        code, message = _DRF_CODES.get(str(exc.default_code), default)
        if isinstance(exc, drf.AuthenticationFailed) and code not in (
            "invalid_token",
            "token_expired",
        ):
            code, message = _DRF_CODES["invalid_token"]
        if status >= 500:
            logger.error("server error", exc_info=exc)
            status, code, message = 500, "internal_error", errors.WalletError.message
        return status, code, message, {}, {}
    logger.error("unhandled error", exc_info=exc)
    return 500, "internal_error", errors.WalletError.message, {}, {}


def handle_exception(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: roll back, answer the envelope, keep the protocol headers."""
    status, code, message, details, headers = _describe(exc)
    if status == 401:
        auth_header = getattr(exc, "auth_header", None)
        headers["WWW-Authenticate"] = auth_header or 'Bearer realm="api"'
    set_rollback()
    return Response(
        error_body(code=code, message=message, details=details), status=status, headers=headers
    )

"""The one DRF exception handler: every error becomes the API.md envelope."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from wallet_project import errors
from wallet_project.envelope import error_body

logger = logging.getLogger("wallet.errors")

_DRF_CODES: dict[type, tuple[str, str]] = {
    drf.ParseError: ("malformed_json", "The request body is not valid JSON."),
    drf.NotAuthenticated: ("not_authenticated", "Authentication credentials were not provided."),
    drf.PermissionDenied: (
        "permission_denied",
        "You do not have permission to perform this action.",
    ),
    drf.NotFound: ("not_found", "Not found."),
    drf.MethodNotAllowed: ("method_not_allowed", "Method not allowed."),
    drf.UnsupportedMediaType: (
        "unsupported_media_type",
        "Unsupported media type; send application/json.",
    ),
    drf.NotAcceptable: ("not_acceptable", "Not acceptable."),
}


def _flatten(detail: Any) -> Any:
    """Turn DRF ErrorDetail trees into plain JSON (strings, lists, dicts)."""
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_flatten(v) for v in detail]
    return str(detail)


def _validation_details(detail: Any) -> dict:
    flat = _flatten(detail)
    if isinstance(flat, dict):
        return {k: v if isinstance(v, list | dict) else [v] for k, v in flat.items()}
    if isinstance(flat, list):
        return {"non_field_errors": flat}
    return {"non_field_errors": [flat]}


def _authentication_failure(exc: drf.APIException) -> tuple[str, str]:
    text = str(exc.detail)
    if "expired" in text.lower() and "invalid or expired" not in text.lower():
        return "token_expired", "The token has expired."
    if isinstance(exc.detail, dict) and any(
        "expired" in str(m.get("message", "")).lower()
        for m in exc.detail.get("messages", [])
        if isinstance(m, dict)
    ):
        return "token_expired", "The token has expired."
    return "invalid_token", "The token is invalid."


def handle_exception(exc: Exception, context: dict) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, errors.WalletError):
        status, code, message, details = exc.http_status, exc.code, exc.message, exc.details
        if status == 429:
            headers["Retry-After"] = str(details.get("retry_after", 60))
    elif isinstance(exc, Http404):
        status, code, message, details = 404, "not_found", "Not found.", {}
    elif isinstance(exc, DjangoPermissionDenied):
        status, code, message, details = (
            403,
            "permission_denied",
            "You do not have permission to perform this action.",
            {},
        )
    elif isinstance(exc, DjangoValidationError):
        details = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        status, code, message = 400, "validation_error", "The request is not valid."
    elif isinstance(exc, drf.ValidationError):
        status, code, message = 400, "validation_error", "The request is not valid."
        details = _validation_details(exc.detail)
    elif isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1) if exc.wait is not None else 60
        headers["Retry-After"] = str(max(wait, 1))
        status, code, message, details = (
            429,
            "throttled",
            f"Too many requests; retry in {max(wait, 1)} seconds.",
            {"retry_after": max(wait, 1)},
        )
    elif isinstance(exc, drf.AuthenticationFailed):
        code, message = _authentication_failure(exc)
        status, details = 401, {}
    elif isinstance(exc, drf.APIException):
        status = exc.status_code
        code, message = _DRF_CODES.get(type(exc), (None, None)) or (None, None)
        for klass, pair in _DRF_CODES.items():
            if isinstance(exc, klass):
                code, message = pair
                break
        code = code or str(exc.default_code)
        message = message or str(exc.detail)
        details = {}
        if status == 401:
            code = code if code == "not_authenticated" else "invalid_token"
    else:
        logger.exception("unhandled error", exc_info=exc)
        status, code, message, details = 500, "internal_error", "An internal error occurred.", {}
    if status == 401:
        auth_header = getattr(exc, "auth_header", None)
        headers["WWW-Authenticate"] = auth_header or 'Bearer realm="api"'
    set_rollback()
    return Response(
        error_body(code=code, message=message, details=details), status=status, headers=headers
    )

"""The one error envelope of docs/api.md, used by the DRF handler and Django's handlers alike."""

from typing import Any

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from wallet_project import errors
from wallet_project.request_context import current_request_id

# The API code and message for an error status that reached us without one.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("validation_error", "Bad request."),
    401: ("not_authenticated", errors.NotAuthenticatedError.message),
    403: ("permission_denied", errors.PermissionDeniedError.message),
    404: ("not_found", errors.NotFoundError.message),
    405: ("method_not_allowed", errors.MethodNotAllowedError.message),
    409: ("conflict", errors.ConflictError.message),
    413: ("payload_too_large", errors.PayloadTooLargeError.message),
    415: ("unsupported_media_type", errors.UnsupportedMediaTypeError.message),
    429: ("throttled", errors.ThrottledError.message),
    503: ("service_unavailable", errors.ServiceUnavailableError.message),
}


def error_body(*, code: str, message: str, details: dict[str, Any] | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": current_request_id(),
        }
    }


def error_response(
    *, status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JsonResponse:
    return JsonResponse(error_body(code=code, message=message, details=details), status=status)


def error_response_for_status(status: int) -> JsonResponse:
    """The envelope for a bare error status (a framework page, an empty 405)."""
    if status in STATUS_ERRORS:
        code, message = STATUS_ERRORS[status]
    elif status >= 500:
        status, code, message = 500, "internal_error", errors.WalletError.message
    else:
        code, message = STATUS_ERRORS[400]
    return error_response(status=status, code=code, message=message)


def bad_request(request, exception=None):
    return error_response_for_status(400)


def permission_denied(request, exception=None):
    return error_response_for_status(403)


@csrf_exempt  # also the catch-all route: a POST to an unknown API path is a 404, not a CSRF 403
def not_found(request, exception=None):
    return error_response_for_status(404)


def server_error(request):
    return error_response_for_status(500)


def csrf_failure(request, reason=""):
    return error_response(status=403, code="permission_denied", message="CSRF verification failed.")

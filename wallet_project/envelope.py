"""The one error envelope of API.md, used by the DRF handler and Django's handlers alike."""

from typing import Any

from django.http import JsonResponse

from wallet_project.request_context import current_request_id


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


def bad_request(request, exception=None):
    return error_response(status=400, code="validation_error", message="Bad request.")


def permission_denied(request, exception=None):
    return error_response(
        status=403,
        code="permission_denied",
        message="You do not have permission to perform this action.",
    )


def not_found(request, exception=None):
    return error_response(status=404, code="not_found", message="Not found.")


def server_error(request):
    return error_response(status=500, code="internal_error", message="An internal error occurred.")


def csrf_failure(request, reason=""):
    return error_response(status=403, code="permission_denied", message="CSRF verification failed.")

"""Request-scoped middleware: request id and access log, body size limit, last-resort errors."""

import logging
import time

import structlog
from django.conf import settings

from wallet_project.envelope import error_response
from wallet_project.request_context import (
    accept_or_new_request_id,
    client_ip_var,
    request_id_var,
    user_id_var,
)

access_logger = structlog.get_logger("wallet.access")
error_logger = logging.getLogger("wallet.errors")


def client_ip(request) -> str | None:
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if forwarded and settings.REST_FRAMEWORK.get("NUM_PROXIES"):
        return forwarded.split(",")[-int(settings.REST_FRAMEWORK["NUM_PROXIES"])].strip()
    return request.META.get("REMOTE_ADDR")


class RequestIdMiddleware:
    """Echo or make `X-Request-ID`, bind it to the log context, log one line per request.

    Also the last resort for exceptions outside DRF: they are logged and answered with the
    error envelope, never a traceback, whatever DEBUG says.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = accept_or_new_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        tokens = (
            request_id_var.set(request_id),
            user_id_var.set(None),
            client_ip_var.set(client_ip(request)),
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            user = getattr(request, "user", None)
            user_id = user_id_var.get() or (
                user.pk if user is not None and user.is_authenticated else None
            )
            access_logger.info(
                "request",
                user_id=user_id,
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return response
        finally:
            structlog.contextvars.clear_contextvars()
            request_id_var.reset(tokens[0])
            user_id_var.reset(tokens[1])
            client_ip_var.reset(tokens[2])

    def process_exception(self, request, exception):
        error_logger.exception("unhandled error outside the API", exc_info=exception)
        return error_response(
            status=500, code="internal_error", message="An internal error occurred."
        )


class BodySizeLimitMiddleware:
    """Refuse request bodies over 1 MiB with `413 payload_too_large` before anything reads them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_REQUEST_BODY_BYTES:
            return error_response(
                status=413,
                code="payload_too_large",
                message="The request body is larger than 1 MiB.",
                details={"max_bytes": settings.MAX_REQUEST_BODY_BYTES},
            )
        return self.get_response(request)

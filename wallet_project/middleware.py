"""Request-scoped middleware: request id and access log, body size limit, the time limit of
API reads, last-resort errors, and the HTML site's own middleware (sessions, Django's user,
messages), skipped by the API."""

import logging
import time
from typing import TYPE_CHECKING

import structlog
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.db import InterfaceError, OperationalError, transaction
from django.http import Http404
from django.utils.deprecation import MiddlewareMixin

from wallet_project.db import database_unavailable
from wallet_project.envelope import error_response, error_response_for_status
from wallet_project.errors import DatabaseUnavailableError, ServiceUnavailableError
from wallet_project.request_context import (
    accept_or_new_request_id,
    client_ip_var,
    request_id_var,
    user_id_var,
)
from wallet_project.statements import run_pipelined

access_logger = structlog.get_logger("wallet.access")
error_logger = logging.getLogger("wallet.errors")

# Headers of an error response that still mean something once its body is replaced.
_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Vary")
# Exceptions Django itself answers with a 4xx (never logged as crashes).
_DJANGO_REFUSALS = (
    (Http404, 404),
    (PermissionDenied, 403),
    (BadRequest, 400),
    (SuspiciousOperation, 400),
)
# HTML consoles whose own error pages are right for the humans who use them.
_HTML_PREFIXES = ("/admin/",)
API_PREFIX = "/api/"


def is_api_request(request) -> bool:
    """Under the API's prefix (after any script prefix the site is mounted under)."""
    return request.path_info.startswith(API_PREFIX)


def is_console_request(request) -> bool:
    """Under an HTML console's prefix (after any script prefix)."""
    return request.path_info.startswith(_HTML_PREFIXES)


def client_ip(request) -> str | None:
    """The client address: REMOTE_ADDR, or the address NUM_PROXIES hops back in X-Forwarded-For."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if forwarded and proxies:
        addresses = [a.strip() for a in forwarded.split(",")]
        return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR")


def _is_json(response) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().endswith("json")


def _as_envelope(request, response):
    """Give a non-JSON error (a framework error page, an empty 405) the API envelope.

    Catches what the DRF handler and Django's handlers cannot: Django's debug pages
    (DEBUG on), `require_GET`'s empty 405, an error raised in an inner middleware.
    """
    if (
        response.status_code < 400
        or response.streaming
        or _is_json(response)
        or is_console_request(request)
    ):
        return response
    replacement = error_response_for_status(response.status_code)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


class RequestIdMiddleware:
    """Echo or make `X-Request-ID`, bind it to the log context, log one line per request.

    Also the last resort for errors outside DRF: they are logged and answered with the
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
            response = _as_envelope(request, self.get_response(request))
            response["X-Request-ID"] = request_id
            if is_api_request(request) and "Cache-Control" not in response:
                # Tokens, balances and personal data: no shared or browser cache keeps them.
                response["Cache-Control"] = "no-store"
            access_logger.info(
                "request",
                user_id=user_id_var.get() or _authenticated_user_id(request),
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
        """A view outside DRF raised: Django's own refusals keep their status, the rest is 500.

        The admin console keeps Django's own pages (handler404/500 still apply there).
        """
        unavailable = database_unavailable(exception)
        if unavailable is not None:
            return _unavailable_response(unavailable)
        if is_console_request(request):
            return None
        for exception_class, status in _DJANGO_REFUSALS:
            if isinstance(exception, exception_class):
                return error_response_for_status(status)
        error_logger.error("unhandled error outside the API", exc_info=exception)
        return error_response_for_status(500)


def _unavailable_response(unavailable: ServiceUnavailableError):
    response = error_response(
        status=unavailable.http_status,
        code=unavailable.code,
        message=unavailable.message,
        details=unavailable.details,
    )
    response["Retry-After"] = str(unavailable.retry_after)
    return response


def _authenticated_user_id(request) -> int | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.pk
    return None


class BodySizeLimitMiddleware:
    """Refuse request bodies over 1 MiB with `413 payload_too_large` before anything reads them.

    A body without Content-Length (chunked) is read as empty by Django, so the declared
    length is the one that matters.
    """

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


READ_METHODS = ("GET", "HEAD")
# The versioned API; its schema and docs pages (`/api/schema/`, `/api/docs/`) read nothing.
RESOURCES_PREFIX = "/api/v1/"
# Sent with the transaction's BEGIN, in one round trip (`run_pipelined`).
_READ_LIMITS = (
    "SELECT set_config('statement_timeout', %s, true), "
    "set_config('transaction_read_only', 'on', true)"
)


class ReadTimeoutMiddleware:
    """Every API read (a GET or HEAD under `/api/v1/`) runs in one read-only database
    transaction in which no statement may take longer than `API_READ_TIMEOUT_MS`.

    PostgreSQL cancels a statement that runs past it, which frees its backend at once, and
    the request is answered `503 service_unavailable` with `Retry-After` (the handler maps
    SQLSTATE 57014), never held until a worker timeout. The transaction is rolled back at
    the end: a read has nothing to commit (the read-only mode guarantees it), and the limits
    (`SET LOCAL`) end with it, even inside a test's transaction. Every other method runs
    outside it, so no write, money movement least of all, is ever cut short by it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timeout_ms = settings.API_READ_TIMEOUT_MS
        if (
            timeout_ms <= 0
            or request.method not in READ_METHODS
            or not request.path_info.startswith(RESOURCES_PREFIX)
        ):
            return self.get_response(request)
        try:
            with transaction.atomic():
                run_pipelined([(_READ_LIMITS, [str(timeout_ms)])])
                response = self.get_response(request)
                transaction.set_rollback(True)
        except (OperationalError, InterfaceError) as exc:  # at BEGIN or at the end
            return _unavailable_response(database_unavailable(exc) or DatabaseUnavailableError())
        return response


# ----------------------------------------------------------------- the HTML site's middleware
if TYPE_CHECKING:
    _SiteMiddleware = MiddlewareMixin  # what the mixin is mixed into, for the type checker
else:
    _SiteMiddleware = object


class SiteOnlyMixin(_SiteMiddleware):
    """A middleware of the HTML site (the admin console) that API requests pass straight by.

    The API authenticates every request by its bearer token and keeps no session, so
    sessions, Django's own `request.user` and messages have nothing to do there; DRF sets
    `request.user` when it authenticates. (CSRF keeps Django's own middleware, which the
    deployment checks look for; DRF's views are exempt from it.)
    """

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(SiteOnlyMixin, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(SiteOnlyMixin, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(SiteOnlyMixin, messages.MessageMiddleware):
    pass

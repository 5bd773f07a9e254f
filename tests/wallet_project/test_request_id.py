"""X-Request-ID on every response, and the one JSON access-log line per request."""

import io
import json
import logging
import re

import pytest

from tests.wallet_project.envelope import assert_error
from wallet_project.logging import JsonFormatter

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def access_log():
    """The JSON lines the access logger writes during the test, rendered by our formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("wallet.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # whatever level earlier tests left on the root logger
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize(
    "incoming", ["abc", "A" * 128, "req-2026.11.21_0001", "0", "a.b-c_d"], ids=str
)
def test_a_well_formed_incoming_id_is_echoed_and_is_the_errors_request_id(api_client, incoming):
    # when
    response = api_client.get("/api/v1/no-such-route", HTTP_X_REQUEST_ID=incoming)
    # then
    assert response["X-Request-ID"] == incoming
    error = assert_error(response, 404, "not_found")
    assert error["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["A" * 129, "has space", "semi;colon", "slash/ed", "ünï", "quote'", "new\nline", ""],
    ids=["too-long", "space", "semicolon", "slash", "non-ascii", "quote", "newline", "empty"],
)
def test_an_ill_formed_incoming_id_is_replaced(api_client, incoming):
    # when
    response = api_client.get("/api/v1/no-such-route", HTTP_X_REQUEST_ID=incoming)
    # then
    assert response["X-Request-ID"] != incoming
    assert GENERATED.fullmatch(response["X-Request-ID"])
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/health/live", 200),
        ("get", "/api/v1/auth/me", 401),
        ("post", "/api/v1/auth/login", 400),
        ("get", "/nowhere", 404),
        ("delete", "/health/live", 405),
        ("get", "/api/schema/", 200),
    ],
)
def test_every_response_carries_a_generated_request_id(api_client, method, path, status):
    # when
    response = getattr(api_client, method)(path)
    # then
    assert response.status_code == status
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_a_payload_too_large_refusal_carries_the_request_id_too(api_client):
    # when
    response = api_client.post(
        "/api/v1/auth/login",
        data="x" * (1024 * 1024 + 1),
        content_type="application/json",
        HTTP_X_REQUEST_ID="big-1",
    )
    # then
    assert response["X-Request-ID"] == "big-1"
    assert assert_error(response, 413, "payload_too_large")["request_id"] == "big-1"


def test_two_requests_get_two_different_ids(api_client):
    # when
    first = api_client.get("/health/live")
    second = api_client.get("/health/live")
    # then
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_the_access_log_line_has_the_request_fields(user_client, user, access_log):
    # when
    response = user_client.get("/api/v1/auth/me", HTTP_X_REQUEST_ID="trace-me-1")
    # then
    assert response.status_code == 200
    (line,) = access_log()
    assert line["event"] == "request"
    assert line["request_id"] == "trace-me-1"
    assert line["user_id"] == user.pk
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/auth/me"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert line["logger"] == "wallet.access"
    assert line["timestamp"].endswith("Z")


def test_the_access_log_line_of_an_anonymous_error_has_no_user(api_client, access_log):
    # when
    response = api_client.post("/api/v1/auth/login", {}, format="json")
    # then
    (line,) = access_log()
    assert line["user_id"] is None
    assert line["status"] == 400
    assert line["request_id"] == response["X-Request-ID"]


@pytest.mark.urls("tests.wallet_project.urls_failing")
def test_an_error_logged_during_a_request_carries_its_id_and_traceback(api_client):
    # given: the error logger, rendered by the same formatter
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("wallet.errors")
    logger.addHandler(handler)
    # when
    try:
        api_client.get("/test-only/api-crash", HTTP_X_REQUEST_ID="ctx-1")
        logger.warning("after the request")
    finally:
        logger.removeHandler(handler)
    # then
    during, after = (json.loads(x) for x in stream.getvalue().splitlines())
    assert during["request_id"] == "ctx-1"
    assert during["level"] == "error"
    assert "Traceback" in during["exception"]
    assert "RuntimeError" in during["exception"]
    assert "request_id" not in after


def test_audit_events_record_the_request_id(api_client):
    # given
    from audit.models import AuditLog

    # when
    api_client.post(
        "/api/v1/auth/login",
        {"username": "nobody", "password": "x"},
        format="json",
        HTTP_X_REQUEST_ID="audit-trace-7",
    )
    # then
    assert AuditLog.objects.get(action="user.login_failed").request_id == "audit-trace-7"

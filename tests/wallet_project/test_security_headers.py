"""Security headers on every response, and CORS for the configured origins (docs/api.md conventions)."""

import pytest

pytestmark = pytest.mark.django_db

ORIGIN = "https://app.example.com"
API_HEADERS = {"authorization", "content-type", "idempotency-key", "x-request-id", "prefer"}
API_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]


def _assert_security_headers(response) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/health/live", 200),
        ("get", "/api/v1/auth/me", 401),
        ("get", "/api/v1/nowhere", 404),
        ("post", "/api/v1/auth/login", 400),
    ],
)
def test_security_headers_are_on_successes_and_errors(api_client, method, path, status):
    # when
    response = getattr(api_client, method)(path)
    # then
    assert response.status_code == status
    _assert_security_headers(response)


def test_a_payload_too_large_refusal_has_the_security_headers(api_client):
    # when
    response = api_client.post(
        "/api/v1/auth/login", data="x" * (1024 * 1024 + 1), content_type="application/json"
    )
    # then
    assert response.status_code == 413
    assert response["X-Content-Type-Options"] == "nosniff"


def test_api_responses_are_never_cached(user_client):
    # when
    response = user_client.get("/api/v1/auth/me")
    # then
    assert response["Cache-Control"] == "no-store"


def test_api_responses_are_never_cached_under_a_script_prefix(user_client):
    # when: the site is mounted under /wallet (the path the client sees starts with it)
    response = user_client.get("/api/v1/auth/me", SCRIPT_NAME="/wallet")
    # then
    assert response.status_code == 200
    assert response.wsgi_request.path == "/wallet/api/v1/auth/me"
    assert response["Cache-Control"] == "no-store"


def test_an_allowed_origin_gets_cors_headers(api_client, cors):
    # when
    response = api_client.get("/api/v1/auth/me", HTTP_ORIGIN=ORIGIN)
    # then
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "retry-after", "idempotent-replayed"} <= exposed


def test_another_origin_gets_no_cors_headers(api_client, cors):
    # when
    response = api_client.get("/api/v1/auth/me", HTTP_ORIGIN="https://evil.example")
    # then
    assert "Access-Control-Allow-Origin" not in response


def test_no_origin_is_allowed_by_default(api_client):
    # when
    response = api_client.get("/health/live", HTTP_ORIGIN=ORIGIN)
    # then
    assert "Access-Control-Allow-Origin" not in response


def test_the_preflight_allows_the_api_methods_and_headers(api_client, cors):
    # when
    response = api_client.options(
        "/api/v1/transactions/transfer",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=", ".join(sorted(API_HEADERS)),
    )
    # then
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    allowed_headers = {
        h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed_headers >= API_HEADERS
    allowed_methods = {m.strip() for m in response["Access-Control-Allow-Methods"].split(",")}
    assert allowed_methods == API_METHODS


def test_the_preflight_of_another_origin_is_not_allowed(api_client, cors):
    # when
    response = api_client.options(
        "/api/v1/transactions/transfer",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    # then
    assert "Access-Control-Allow-Origin" not in response

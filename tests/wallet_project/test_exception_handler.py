"""Every error class, from every layer, answers the one envelope of docs/api.md (DEBUG on or off)."""

import json
import logging

import pytest
from django.conf import settings as django_settings

from accounts.models import User
from tests.wallet_project.envelope import assert_error
from tests.wallet_project.urls_failing import LEAKY_TEXT

pytestmark = pytest.mark.django_db

FAILING_URLS = "tests.wallet_project.urls_failing"


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def _assert_nothing_leaks(response) -> None:
    text = response.content.decode()
    for secret in (
        LEAKY_TEXT,
        "secret_column",
        "Traceback",
        "RuntimeError",
        "ProgrammingError",
        "SELECT",
        django_settings.SECRET_KEY,
        "/work/",
        ".py",
    ):
        assert secret not in text, f"{secret!r} leaked into the body"


# ------------------------------------------------------------------ 404 and 405


@pytest.mark.parametrize(
    "path", ["/no/such/route", "/api/v1/no-such-route", "/api/v1/users/1/nope", "/api"]
)
def test_an_unknown_route_is_not_found(api_client, debug, path):
    # when
    response = api_client.get(path)
    # then
    assert_error(response, 404, "not_found")


@pytest.mark.urls(FAILING_URLS)
def test_a_not_found_raised_in_a_plain_django_view_is_the_envelope(api_client, debug):
    # when
    response = api_client.get("/test-only/django-not-found")
    # then
    assert_error(response, 404, "not_found")
    _assert_nothing_leaks(response)


def test_a_wrong_method_on_an_api_route_is_method_not_allowed(api_client, debug):
    # when
    response = api_client.get("/api/v1/auth/login")
    # then
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response["Allow"]


def test_a_wrong_method_on_a_plain_django_view_is_method_not_allowed(api_client, debug):
    # when
    response = api_client.post("/health/live")
    # then
    assert_error(response, 405, "method_not_allowed")
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD"}


# ------------------------------------------------------------------ bodies


def test_a_body_that_is_not_json_is_unsupported_media_type(api_client, debug):
    # when
    response = api_client.post(
        "/api/v1/auth/login", data="username=a&password=b", content_type="text/plain"
    )
    # then
    assert_error(response, 415, "unsupported_media_type")


def test_a_form_body_is_unsupported_media_type(api_client):
    # when
    response = api_client.post(
        "/api/v1/auth/register", {"username": "former", "email": "f@example.com"}
    )
    # then
    assert_error(response, 415, "unsupported_media_type")
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": ',
        b"{'single': 'quotes'}",
        b'{"amount": NaN}',
        b'{"amount": Infinity}',
        b'{"username": "a", "username": "b"}',
        b"[" * 100_000 + b"]" * 100_000,
        b"\xff\xfe not utf-8",
    ],
    ids=["truncated", "single-quotes", "nan", "infinity", "duplicate-key", "too-deep", "bytes"],
)
def test_malformed_json_is_refused_as_malformed_json(api_client, debug, body):
    # when
    response = api_client.post("/api/v1/auth/register", data=body, content_type="application/json")
    # then
    assert_error(response, 400, "malformed_json")
    _assert_nothing_leaks(response)
    assert not User.objects.exists()


def test_a_json_value_that_is_not_an_object_is_a_validation_error(api_client):
    # when
    response = api_client.post(
        "/api/v1/auth/register", data=b"[1, 2]", content_type="application/json"
    )
    # then
    error = assert_error(response, 400, "validation_error")
    assert "non_field_errors" in error["details"]


def test_a_body_over_one_mebibyte_is_payload_too_large(api_client, debug):
    # given
    padding = "x" * (1024 * 1024)
    body = json.dumps({"username": "big", "email": "b@example.com", "password": padding})
    # when
    response = api_client.post("/api/v1/auth/register", data=body, content_type="application/json")
    # then
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"max_bytes": 1024 * 1024}
    assert not User.objects.exists()


def test_a_body_of_exactly_one_mebibyte_is_read(api_client):
    # given: a valid JSON document of exactly 1 MiB
    prefix, suffix = '{"username": "big", "email": "b@example.com", "password": "', '"}'
    body = prefix + "x" * (1024 * 1024 - len(prefix) - len(suffix)) + suffix
    assert len(body.encode()) == 1024 * 1024
    # when
    response = api_client.post("/api/v1/auth/register", data=body, content_type="application/json")
    # then: it reached the serializer, which refuses the 1 MiB password
    error = assert_error(response, 400, "validation_error")
    assert "password" in error["details"]


# ------------------------------------------------------------------ 500


@pytest.mark.urls(FAILING_URLS)
def test_a_crash_in_an_api_view_is_internal_error_without_internals(api_client, debug, caplog):
    # when
    with caplog.at_level(logging.ERROR, logger="wallet.errors"):
        response = api_client.get("/test-only/api-crash", HTTP_X_REQUEST_ID="crash-1")
    # then
    error = assert_error(response, 500, "internal_error")
    assert error["request_id"] == "crash-1"
    assert error["details"] == {}
    _assert_nothing_leaks(response)
    logged = [r for r in caplog.records if r.name == "wallet.errors"]
    assert logged
    assert logged[0].exc_info is not None
    assert LEAKY_TEXT in str(logged[0].exc_info[1])


@pytest.mark.urls(FAILING_URLS)
def test_a_crash_in_a_plain_django_view_is_internal_error_without_internals(
    api_client, debug, caplog
):
    # when
    with caplog.at_level(logging.ERROR, logger="wallet.errors"):
        response = api_client.get("/test-only/django-crash")
    # then
    assert_error(response, 500, "internal_error")
    _assert_nothing_leaks(response)
    assert any(r.exc_info for r in caplog.records if r.name == "wallet.errors")


@pytest.mark.urls(FAILING_URLS)
@pytest.mark.django_db(transaction=True)
def test_a_database_error_is_internal_error_without_sql(api_client, debug):
    # when
    response = api_client.get("/test-only/api-database-crash")
    # then
    assert_error(response, 500, "internal_error")
    _assert_nothing_leaks(response)


# ------------------------------------------------------------------ the handler's other mappings


def test_an_unauthenticated_call_is_not_authenticated_with_www_authenticate(api_client):
    # when
    response = api_client.get("/api/v1/balances/current")
    # then
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_validation_details_map_each_field_to_a_list_of_messages(api_client):
    # when
    response = api_client.post(
        "/api/v1/auth/register",
        {"username": "x", "email": "nope", "password": 5},
        format="json",
    )
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"username", "email"}
    assert all(isinstance(v, list) and v for v in error["details"].values())

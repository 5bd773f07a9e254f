"""Login and register throttles on the real Redis cache: per address, per account, per scope."""

import socket

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from tests.accounts.factories import PASSWORD
from tests.wallet_project.envelope import assert_error

pytestmark = pytest.mark.django_db

LOGIN_PER_ADDRESS = 20
FAILURES_PER_ACCOUNT = 10


def _client(address: str = "203.0.113.7") -> APIClient:
    return APIClient(REMOTE_ADDR=address)


def _login(client, username, password=PASSWORD):
    return client.post(
        "/api/v1/auth/login", {"username": username, "password": password}, format="json"
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_retry_after(response) -> int:
    error = assert_error(response, 429, "throttled")
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert error["details"]["retry_after"] == wait
    return wait


def test_more_than_20_logins_a_minute_from_one_address_are_throttled():
    # given: 20 attempts, each for a different name, so no account limit applies
    client = _client()
    for n in range(LOGIN_PER_ADDRESS):
        assert _login(client, f"stranger{n}").status_code == 401
    # when
    response = _login(client, "stranger-last")
    # then
    _assert_retry_after(response)


def test_the_login_address_limit_counts_successes_too(user):
    # given
    client = _client()
    for _ in range(LOGIN_PER_ADDRESS):
        assert _login(client, user.username).status_code == 200
    # when
    response = _login(client, user.username)
    # then
    _assert_retry_after(response)


def test_the_login_address_limit_is_per_address(user):
    # given
    for n in range(LOGIN_PER_ADDRESS + 1):
        _login(_client("203.0.113.7"), f"stranger{n}")
    # when
    response = _login(_client("198.51.100.9"), user.username)
    # then
    assert response.status_code == 200


def test_ten_failures_for_one_account_lock_it_even_with_the_right_password(user):
    # given: failures from many addresses, so the address limit never applies
    for n in range(FAILURES_PER_ACCOUNT):
        response = _login(_client(f"198.51.100.{n + 1}"), user.username, password="Wrong-1-pass")
        assert_error(response, 401, "invalid_credentials")
    # when
    response = _login(_client("192.0.2.200"), user.username)
    # then
    _assert_retry_after(response)
    assert "access" not in response.json()


def test_failures_by_username_and_by_email_count_for_the_same_account(user):
    # given
    for n in range(FAILURES_PER_ACCOUNT):
        login = user.username if n % 2 else user.email.upper()
        _login(_client(f"198.51.100.{n + 1}"), login, password="Wrong-1-pass")
    # when
    response = _login(_client("192.0.2.200"), user.email)
    # then
    _assert_retry_after(response)


def test_a_locked_account_does_not_lock_another(user, other_user):
    # given
    for n in range(FAILURES_PER_ACCOUNT):
        _login(_client(f"198.51.100.{n + 1}"), user.username, password="Wrong-1-pass")
    # when
    response = _login(_client("192.0.2.200"), other_user.username)
    # then
    assert response.status_code == 200


def test_an_unknown_name_is_locked_after_ten_failures_too():
    # given
    for n in range(FAILURES_PER_ACCOUNT):
        _login(_client(f"198.51.100.{n + 1}"), "Ghost-Name")
    # when
    response = _login(_client("192.0.2.200"), "ghost-name")
    # then
    _assert_retry_after(response)


def test_a_successful_login_starts_the_failure_count_again(user):
    # given
    for n in range(FAILURES_PER_ACCOUNT - 1):
        _login(_client(f"198.51.100.{n + 1}"), user.username, password="Wrong-1-pass")
    assert _login(_client("192.0.2.1"), user.username).status_code == 200
    # when
    for n in range(FAILURES_PER_ACCOUNT - 1):
        _login(_client(f"198.51.100.{n + 1}"), user.username, password="Wrong-1-pass")
    response = _login(_client("192.0.2.2"), user.username)
    # then
    assert response.status_code == 200


def test_register_has_its_own_strict_scope():
    # given
    client = _client()
    for n in range(20):
        body = {"username": f"newcomer{n}", "email": f"n{n}@example.com", "password": "Plum-77-x"}
        assert client.post("/api/v1/auth/register", body, format="json").status_code == 201
    # when
    response = client.post(
        "/api/v1/auth/register",
        {"username": "one-too-many", "email": "late@example.com", "password": "Plum-77-x"},
        format="json",
    )
    # then
    _assert_retry_after(response)
    assert not User.objects.filter(username="one-too-many").exists()


def test_register_and_login_limits_are_separate_scopes(user):
    # given: the login scope is exhausted
    client = _client()
    for n in range(LOGIN_PER_ADDRESS + 1):
        _login(client, f"stranger{n}")
    # when
    response = client.post(
        "/api/v1/auth/register",
        {"username": "still-welcome", "email": "w@example.com", "password": "Plum-77-x"},
        format="json",
    )
    # then
    assert response.status_code == 201


def test_login_works_while_redis_is_down(settings, user):
    # given: the cache points at a port where nothing listens
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    # when
    ok = _login(_client(), user.username)
    refused = _login(_client(), user.username, password="Wrong-1-pass")
    # then
    assert ok.status_code == 200
    assert_error(refused, 401, "invalid_credentials")


def test_a_throttled_login_writes_no_audit_event():
    # given
    from audit.models import AuditLog

    client = _client()
    for n in range(LOGIN_PER_ADDRESS):
        _login(client, f"stranger{n}")
    before = AuditLog.objects.count()
    # when
    _login(client, "stranger-last")
    # then
    assert AuditLog.objects.count() == before


class _Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def three_a_minute(monkeypatch):
    """The per-user rate set to 3/min, on a clock the test moves."""
    from accounts import throttles

    clock = _Clock(1_000_000.0)
    monkeypatch.setattr(throttles.UserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
    monkeypatch.setattr(throttles.UserRateThrottle, "timer", staticmethod(clock))
    return clock


def test_the_user_rate_refuses_the_request_over_it_and_names_the_wait(three_a_minute, user):
    # given
    client = APIClient()
    client.force_authenticate(user)
    for _ in range(3):
        assert client.get("/api/v1/auth/me").status_code == 200
    # when
    three_a_minute.now += 20
    refused = client.get("/api/v1/auth/me")
    # then: the first request leaves the window 40 s from now
    assert _assert_retry_after(refused) == 40


def test_refused_requests_are_not_counted_and_the_window_slides(three_a_minute, user, other_user):
    # given: three requests at 0 s, 10 s and 50 s, then a refused one at 55 s
    client = APIClient()
    client.force_authenticate(user)
    for at in (0, 10, 50):
        three_a_minute.now = 1_000_000.0 + at
        assert client.get("/api/v1/auth/me").status_code == 200
    three_a_minute.now = 1_000_055.0
    assert client.get("/api/v1/auth/me").status_code == 429
    # when: at 61 s the first has left the window, at 71 s the second
    three_a_minute.now = 1_000_061.0
    first = client.get("/api/v1/auth/me")
    second = client.get("/api/v1/auth/me")
    three_a_minute.now = 1_000_071.0
    third = client.get("/api/v1/auth/me")
    # then
    assert first.status_code == 200
    assert_error(second, 429, "throttled")
    assert third.status_code == 200
    other = APIClient()
    other.force_authenticate(other_user)
    assert other.get("/api/v1/auth/me").status_code == 200


def test_the_user_rate_still_counts_after_redis_forgets_its_script(three_a_minute, user):
    # given: two requests counted, then Redis lost its script cache (a restart, a flush)
    from django_redis import get_redis_connection

    client = APIClient()
    client.force_authenticate(user)
    for _ in range(2):
        assert client.get("/api/v1/auth/me").status_code == 200
    get_redis_connection("default").script_flush()
    # when
    third = client.get("/api/v1/auth/me")
    fourth = client.get("/api/v1/auth/me")
    # then: the script was loaded again and the window kept its count
    assert third.status_code == 200
    assert_error(fourth, 429, "throttled")

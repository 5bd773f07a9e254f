"""The ceiling on API reads: a statement of a GET that runs past `API_READ_TIMEOUT_MS` is
stopped by PostgreSQL and answered 503 with the envelope; writes never run under it."""

import time
from decimal import Decimal

import pytest
from django.db import connection

from balances import selectors as balance_selectors
from tests.conftest import client_for
from transactions import views as transaction_views

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _balances_from_postgresql(settings):
    """balances/current is the read these tests watch PostgreSQL run: not from the cache."""
    settings.BALANCE_CACHE_ENABLED = False


def _session_limits() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('statement_timeout'), current_setting('transaction_read_only')"
        )
        return cursor.fetchone()


def _slow_read(seconds: float):
    def read(**_kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        return Decimal(0)

    return read


def test_a_read_past_the_limit_is_stopped_and_answered_503(user, settings, monkeypatch):
    # given a read that would take five seconds, and a limit of a tenth of one
    settings.API_READ_TIMEOUT_MS = 100
    monkeypatch.setattr(balance_selectors, "balance_at", _slow_read(5))
    client = client_for(user)
    # when
    started = time.monotonic()
    response = client.get("/api/v1/balances/at-time", {"timestamp": "2026-01-01T00:00:00Z"})
    elapsed = time.monotonic() - started
    # then PostgreSQL stopped it: the answer came long before the read would have ended
    assert elapsed < 2, elapsed
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert error["details"] == {"retryable": True}
    assert "took longer than the database allows" in error["message"]
    assert error["request_id"] == response["X-Request-ID"]
    assert int(response["Retry-After"]) > 0


def test_the_connection_serves_the_next_read_after_a_timeout(user, settings, monkeypatch):
    # given a read that was stopped
    settings.API_READ_TIMEOUT_MS = 100
    client = client_for(user)
    with monkeypatch.context() as patch:
        patch.setattr(balance_selectors, "balance_at", _slow_read(5))
        stopped = client.get("/api/v1/balances/at-time", {"timestamp": "2026-01-01T00:00:00Z"})
    # when
    response = client.get("/api/v1/balances/current")
    # then
    assert stopped.status_code == 503
    assert response.status_code == 200, response.json()
    assert _session_limits() == ("0", "off")


def test_reads_run_read_only_under_the_limit_and_writes_do_not(user, settings, monkeypatch):
    # given the limits each request runs under, seen from inside it
    settings.API_READ_TIMEOUT_MS = 250
    seen = {}
    list_current = balance_selectors.list_current_balances
    party = transaction_views._party

    def reading(**kwargs):
        seen["GET"] = _session_limits()
        return list_current(**kwargs)

    def writing(**kwargs):
        seen["POST"] = _session_limits()
        return party(**kwargs)

    monkeypatch.setattr(balance_selectors, "list_current_balances", reading)
    monkeypatch.setattr(transaction_views, "_party", writing)
    client = client_for(user)
    # when
    read = client.get("/api/v1/balances/current")
    written = client.post("/api/v1/transactions/credit", {"amount": "1.00"}, format="json")
    # then
    assert (read.status_code, written.status_code) == (200, 201)
    assert seen == {"GET": ("250ms", "on"), "POST": ("0", "off")}
    assert _session_limits() == ("0", "off")  # the read's limits ended with it


def test_the_limit_can_be_turned_off(user, settings, monkeypatch):
    # given
    settings.API_READ_TIMEOUT_MS = 0
    seen = []
    list_current = balance_selectors.list_current_balances

    def reading(**kwargs):
        seen.append(_session_limits())
        return list_current(**kwargs)

    monkeypatch.setattr(balance_selectors, "list_current_balances", reading)
    # when
    response = client_for(user).get("/api/v1/balances/current")
    # then
    assert response.status_code == 200
    assert seen == [("0", "off")]


@pytest.mark.django_db(transaction=True)
def test_outside_a_test_transaction_a_read_is_its_own_transaction(settings, monkeypatch):
    # given no enclosing transaction: each read begins its own (BEGIN sent with the limits)
    from tests.accounts.factories import UserFactory

    user = UserFactory()
    settings.API_READ_TIMEOUT_MS = 100
    client = client_for(user)
    seen = []
    list_current = balance_selectors.list_current_balances

    def reading(**kwargs):
        seen.append((connection.in_atomic_block, _session_limits()))
        return list_current(**kwargs)

    monkeypatch.setattr(balance_selectors, "list_current_balances", reading)
    # when a read is stopped, then another one runs
    with monkeypatch.context() as patch:
        patch.setattr(balance_selectors, "balance_at", _slow_read(5))
        stopped = client.get("/api/v1/balances/at-time", {"timestamp": "2026-01-01T00:00:00Z"})
    served = client.get("/api/v1/balances/current")
    # then
    assert (stopped.status_code, served.status_code) == (503, 200)
    assert seen == [(True, ("100ms", "on"))]
    assert connection.get_autocommit()
    assert _session_limits() == ("0", "off")

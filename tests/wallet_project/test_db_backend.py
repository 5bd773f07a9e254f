"""Health checks of persistent connections: skipped after a short idle, run after a long one."""

import pytest
from django.db import connections


def _connection():
    return connections["default"]  # the wrapper itself, not the proxy: monkeypatch restores it


@pytest.fixture
def checks(monkeypatch):
    """Count the health checks (`is_usable`) the connection runs."""
    connection = _connection()
    connection.ensure_connection()
    calls = []
    real = connection.is_usable

    def counting() -> bool:
        calls.append(1)
        return real()

    monkeypatch.setattr(connection, "is_usable", counting)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    monkeypatch.setattr(connection, "health_check_enabled", True)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)
    monkeypatch.setattr(connection, "close_at", None)
    return calls


def _request(now: float, monkeypatch) -> None:
    """One request at monotonic time `now`: start, first query, end."""
    connection = _connection()
    monkeypatch.setattr("wallet_project.db_backend.base.time.monotonic", lambda: now)
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close_if_unusable_or_obsolete()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("limit", "next_requests", "expected_checks"),
    [
        pytest.param(1.0, [100.5], [], id="idle-less-than-the-limit-is-trusted"),
        pytest.param(1.0, [102.0], [1], id="idle-longer-is-checked"),
        pytest.param(0, [100.001, 100.002], [1, 1], id="a-limit-of-zero-always-checks"),
    ],
)
def test_health_checks_follow_the_idle_time_since_the_previous_request(
    checks, monkeypatch, limit, next_requests, expected_checks
):
    # given: a request that ended at t=100 s
    monkeypatch.setitem(_connection().settings_dict, "HEALTH_CHECK_AFTER_IDLE", limit)
    _request(100.0, monkeypatch)
    checks.clear()
    # when
    for now in next_requests:
        _request(now, monkeypatch)
    # then
    assert checks == expected_checks


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_met_a_database_error_is_checked(checks, monkeypatch):
    connection = _connection()
    # given
    monkeypatch.setitem(connection.settings_dict, "HEALTH_CHECK_AFTER_IDLE", 1.0)
    _request(100.0, monkeypatch)
    checks.clear()
    # when: the request ends with an error recorded on the connection
    monkeypatch.setattr("wallet_project.db_backend.base.time.monotonic", lambda: 100.2)
    connection.close_if_unusable_or_obsolete()
    connection.errors_occurred = True
    connection.close_if_unusable_or_obsolete()
    # then: the end of that request checks it (and keeps it, since it is usable)
    assert checks == [1]
    assert connection.connection is not None


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_starts_over(checks, monkeypatch):
    connection = _connection()
    # given
    monkeypatch.setitem(connection.settings_dict, "HEALTH_CHECK_AFTER_IDLE", 1.0)
    _request(100.0, monkeypatch)
    # when
    connection.close()
    # then
    assert connection.request_boundary_at is None

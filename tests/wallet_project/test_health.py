"""GET /health/live and /health/ready against the real PostgreSQL, Redis and broker."""

import socket
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.sealing import seal_audit_stream
from tests.accounts.factories import UserFactory
from tests.wallet_project.envelope import assert_error
from transactions import services
from transactions.services.batches import BatchItemInput
from wallet_project.celery import app as celery_app

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }


@pytest.fixture
def real_broker(settings, monkeypatch):
    """Celery not eager: readiness checks the broker for real."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return monkeypatch


def test_live_is_ok_without_touching_anything(api_client, django_assert_num_queries):
    # when
    with django_assert_num_queries(0):
        response = api_client.get("/health/live")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/live", "/health/live/", "/health/ready"])
def test_health_answers_head_for_load_balancers(api_client, path):
    # when
    response = api_client.head(path)
    # then
    assert response.status_code == 200


def test_live_needs_no_authentication_even_with_a_bad_token(api_client):
    # given
    api_client.credentials(HTTP_AUTHORIZATION="Bearer forged")
    # when
    response = api_client.get("/health/live")
    # then
    assert response.status_code == 200


def test_ready_reports_each_component(api_client):
    # when
    response = api_client.get("/health/ready")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["components"] == {
        "database": "ok",
        "cache": "ok",
        "broker": "disabled",
        "scheduler": "ok",
        "audit_sealing": "ok",
        "batches": "ok",
    }


def test_ready_checks_the_real_broker_when_tasks_are_queued(api_client, real_broker):
    # when
    response = api_client.get("/health/ready")
    # then
    assert response.status_code == 200
    assert response.json()["components"]["broker"] == "ok"
    assert response.json()["status"] == "ok"


def test_ready_is_degraded_but_serving_when_only_the_broker_is_down(api_client, real_broker):
    # given
    real_broker.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{_closed_port()}/0")
    real_broker.setitem(celery_app.conf, "broker_write_url", None)
    # when
    response = api_client.get("/health/ready")
    # then
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["components"]["broker"] == "down"


def test_ready_is_503_and_down_when_the_cache_is_down(api_client, cache_down):
    # when
    response = api_client.get("/health/ready")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["components"]["cache"] == "down"
    assert body["components"]["database"] == "ok"
    assert response["X-Request-ID"]


def test_live_stays_ok_when_the_cache_is_down(api_client, cache_down):
    # when
    response = api_client.get("/health/live")
    # then
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_health_refuses_other_methods_with_the_envelope(api_client, method):
    # when
    response = getattr(api_client, method)("/health/ready")
    # then
    assert_error(response, 405, "method_not_allowed")


@pytest.fixture
def stall_after(settings):
    """Background work counts as stalled after half a second; sleep past it with `wait()`."""
    settings.STALL_AFTER_SECONDS = 0.5
    return lambda: time.sleep(0.7)


def test_ready_is_degraded_when_background_work_stalls(
    api_client, stall_after, funded_user, other_user
):
    # given: a due schedule nobody runs, events nobody seals, a batch nobody processes
    sender = funded_user("50.00")
    services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal("1.00"),
        currency="USD",
        run_at=timezone.now(),
    )
    services.create_batch(
        actor=sender,
        items=[BatchItemInput(to_user_id=other_user.pk, amount=Decimal("1.00"), currency="USD")],
        atomic=False,
    )
    stall_after()
    # when
    response = api_client.get("/health/ready")
    # then it still serves, and says what stalled and since when
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["components"] | {"broker": "-"} == {
        "database": "ok",
        "cache": "ok",
        "broker": "-",
        "scheduler": "overdue",
        "audit_sealing": "behind",
        "batches": "stalled",
    }
    background = body["details"]["background"]
    assert background["scheduler"]["overdue_schedules"] == 1
    assert background["scheduler"]["late_seconds"] >= 0.5
    assert background["audit_sealing"]["lag_seconds"] >= 0.5
    assert background["batches"]["stalled_batches"] == 1


def test_ready_is_ok_again_once_the_stream_is_sealed(transactional_db, api_client, stall_after):
    # given: events older than the threshold, then a seal over them
    funded = UserFactory()
    services.credit(actor=None, user=funded, amount=Decimal("5.00"), currency="USD")
    stall_after()
    assert api_client.get("/health/ready").json()["components"]["audit_sealing"] == "behind"
    # when
    seal_audit_stream()
    # then
    body = api_client.get("/health/ready").json()
    assert body["components"]["audit_sealing"] == "ok"
    assert body["status"] == "ok"

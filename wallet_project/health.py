"""Liveness, readiness and the metrics endpoint."""

import hmac

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView

from wallet_project.envelope import error_response


@require_safe
def live(request):
    """The process answers: no dependency is checked (a restart would not fix one)."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def _cache_ok() -> bool:
    try:
        cache.set("health:ready", "1", timeout=5)
        return cache.get("health:ready") == "1"
    except Exception:
        return False


def _broker_state() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "disabled"
    try:
        from wallet_project.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=1)
        return "ok"
    except Exception:
        return "down"


def _reconciliation() -> dict | None:
    try:
        from audit.selectors import latest_reconciliation_summary

        return latest_reconciliation_summary()
    except Exception:
        return None


@require_safe
def ready(request):
    """Whether this instance should get traffic: database and cache are required, the broker not.

    `503` with status `down` when a required component is down; `degraded` when only the
    broker is (requests work, async work waits).
    """
    components = {
        "database": "ok" if _database_ok() else "down",
        "cache": "ok" if _cache_ok() else "down",
        "broker": _broker_state(),
    }
    required_down = components["database"] == "down" or components["cache"] == "down"
    if required_down:
        state = "down"
    elif components["broker"] == "down":
        state = "degraded"
    else:
        state = "ok"
    body = {"status": state, "components": components}
    details = _reconciliation()
    if details is not None:
        body["details"] = {"reconciliation": details}
    return JsonResponse(body, status=503 if required_down else 200)


def metrics(request):
    token = settings.METRICS_BEARER_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(sent, f"Bearer {token}"):
            return error_response(
                status=401, code="not_authenticated", message="A metrics bearer token is required."
            )
    return ExportToDjangoView(request)

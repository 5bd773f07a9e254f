"""Liveness, readiness and the metrics endpoint.

Infrastructure: this checks the database, the cache and the broker itself, and imports none
of the apps. What readiness reports of the domain (stalled background work, the latest
reconciliation) comes from readers that the composition root, `wallet_project.urls`, passes in.
"""

import hmac
import os
from collections.abc import Callable

import prometheus_client
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import REGISTRY

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


def read_or_none(reader: Callable[[], dict | None] | None) -> dict | None:
    """What `reader` returns; None when there is no reader or the database cannot say."""
    if reader is None:
        return None
    try:
        return reader()
    except Exception:
        return None


@require_safe
def ready(
    request,
    *,
    background: Callable[[], dict[str, dict]] | None = None,
    reconciliation: Callable[[], dict | None] | None = None,
):
    """Whether this instance should get traffic: database and cache are required, the broker not.

    `503` with status `down` when a required component is down. `degraded` (still `200`:
    requests work) when the broker is down, or background work has stalled for
    STALL_AFTER_SECONDS: schedules overdue, the audit stream's unsealed tail too old, a
    batch without progress (`details.background` says which, and since when).
    `background` reads the stalls (by kind, each with its `status`), `reconciliation` the
    latest reconciliation's summary; the URLconf passes both in.
    """
    components = {
        "database": "ok" if _database_ok() else "down",
        "cache": "ok" if _cache_ok() else "down",
        "broker": _broker_state(),
    }
    required_down = components["database"] == "down" or components["cache"] == "down"
    details: dict = {}
    stalls = read_or_none(background) if components["database"] == "ok" else None
    if stalls is not None:
        components.update({name: stall["status"] for name, stall in stalls.items()})
        details["background"] = stalls
    if required_down:
        state = "down"
    elif any(value not in ("ok", "disabled") for value in components.values()):
        state = "degraded"
    else:
        state = "ok"
    body: dict = {"status": state, "components": components}
    summary = read_or_none(reconciliation)
    if summary is not None:
        details["reconciliation"] = summary
    if details:
        body["details"] = details
    return JsonResponse(body, status=503 if required_down else 200)


def _scrape_time_collectors() -> list:
    """Collectors that compute their values when scraped (from the database), not per process.

    In multiprocess mode the exported registry holds only the workers' summed files; these
    are added to it so they are not lost. Metric objects (Counter, Histogram...) and
    prometheus_client's own per-process collectors are left out: the files already hold them.
    """
    registered = list(getattr(REGISTRY, "_collector_to_names", {}))
    return [
        collector
        for collector in registered
        if not isinstance(collector, MetricWrapperBase)
        and not type(collector).__module__.startswith("prometheus_client")
    ]


def _exposition() -> bytes:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return prometheus_client.generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for collector in _scrape_time_collectors():
        registry.register(collector)
    return prometheus_client.generate_latest(registry)


@require_safe
def metrics(request):
    """Prometheus exposition; with METRICS_BEARER_TOKEN set, that bearer token is required."""
    token = settings.METRICS_BEARER_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(sent, f"Bearer {token}".encode()):
            response = error_response(
                status=401, code="not_authenticated", message="A metrics bearer token is required."
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(_exposition(), content_type=prometheus_client.CONTENT_TYPE_LATEST)

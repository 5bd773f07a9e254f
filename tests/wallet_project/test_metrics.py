"""GET /metrics: Prometheus exposition, the optional bearer token, and gunicorn's multiprocess mode."""

import subprocess
import sys

import pytest
from django.db import ProgrammingError, connection, transaction
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from tests.wallet_project.envelope import assert_error

pytestmark = pytest.mark.django_db


class _ScrapeTimeCollector(Collector):
    def collect(self):
        gauge = GaugeMetricFamily("wallet_test_scrape_time_value", "Computed when scraped.")
        gauge.add_metric([], 42.0)
        yield gauge


@pytest.fixture
def scrape_time_collector():
    collector = _ScrapeTimeCollector()
    REGISTRY.register(collector)
    yield collector
    REGISTRY.unregister(collector)


def test_metrics_are_open_by_default(api_client):
    # given
    api_client.get("/health/live")
    # when
    response = api_client.get("/metrics")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "django_http_requests_total_by_method_total" in body
    assert "django_http_requests_latency_seconds_by_view_method_bucket" in body


def test_metrics_need_the_bearer_token_when_one_is_set(api_client, settings):
    # given
    settings.METRICS_BEARER_TOKEN = "scrape-secret-1"
    # when
    missing = api_client.get("/metrics")
    wrong = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-2")
    right = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-1")
    # then
    assert_error(missing, 401, "not_authenticated")
    assert_error(wrong, 401, "not_authenticated")
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200
    assert b"django_http_requests_total_by_method_total" in right.content


def test_a_non_ascii_metrics_token_is_refused_not_a_crash(api_client, settings):
    # given
    settings.METRICS_BEARER_TOKEN = "scrape-secret-1"
    # when
    response = api_client.get("/metrics", HTTP_AUTHORIZATION="Bearer sécrét")
    # then
    assert_error(response, 401, "not_authenticated")


def test_metrics_refuse_writes(api_client):
    # when
    response = api_client.post("/metrics")
    # then
    assert_error(response, 405, "method_not_allowed")


def test_multiprocess_mode_sums_worker_files_and_keeps_scrape_time_collectors(
    api_client, tmp_path, monkeypatch, scrape_time_collector
):
    # given: a "worker" process counted two requests into the shared directory
    worker = (
        "from prometheus_client import Counter\n"
        "Counter('wallet_test_worker_requests', 'Requests seen by one worker.').inc(2)\n"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # when
    response = api_client.get("/metrics")
    # then
    assert response.status_code == 200
    body = response.content.decode()
    assert "wallet_test_worker_requests_total 2.0" in body
    assert "wallet_test_scrape_time_value 42.0" in body


def _sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_responses_are_counted_by_status_view_and_method(api_client):
    # given
    labels = {"status": "200", "view": "health-live", "method": "GET"}
    before = _sample("django_http_responses_total_by_status_view_method_total", **labels)
    latency_before = _sample(
        "django_http_requests_latency_seconds_by_view_method_count",
        view="health-live",
        method="GET",
    )
    # when
    for _ in range(2):
        assert api_client.get("/health/live").status_code == 200
    # then
    assert _sample("django_http_responses_total_by_status_view_method_total", **labels) == (
        before + 2
    )
    assert _sample(
        "django_http_requests_latency_seconds_by_view_method_count",
        view="health-live",
        method="GET",
    ) == (latency_before + 2)


def test_statements_are_counted_and_failed_ones_by_error_type():
    # given
    labels = {"alias": "default", "vendor": "postgresql"}
    executed = _sample("django_db_execute_total", **labels)
    timed = _sample("django_db_query_duration_seconds_count", **labels)
    failed = _sample("django_db_errors_total", type="UndefinedTable", **labels)
    # when
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        with pytest.raises(ProgrammingError), transaction.atomic():
            cursor.execute("SELECT * FROM no_such_table")
    # then
    assert _sample("django_db_execute_total", **labels) >= executed + 2
    assert _sample("django_db_query_duration_seconds_count", **labels) >= timed + 2
    assert _sample("django_db_errors_total", type="UndefinedTable", **labels) == failed + 1

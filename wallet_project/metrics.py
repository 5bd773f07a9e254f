"""HTTP request metrics: django-prometheus' middleware, with labelled series looked up once.

The series are django-prometheus' own (`django_http_requests_latency_seconds_by_view_method`,
`django_http_responses_total_by_status_view_method`, ...), as the dashboards expect. Its
middleware looks each labelled series up by label (validating the names, taking the metric's
lock) about ten times per request; here a series is looked up once per label set and then
found in a dict. There are few label sets: views, methods, statuses.
"""

from django_prometheus import middleware as django_prometheus

_series: dict[tuple, object] = {}


def series(metric, **labels):
    """The series of `metric` for `labels` (the metric itself when there are none)."""
    if not labels:
        return metric
    key = (metric, *labels.items())
    found = _series.get(key)
    if found is None:
        found = _series[key] = metric.labels(**labels)
    return found


class PrometheusAfterMiddleware(django_prometheus.PrometheusAfterMiddleware):
    """Counts requests by method, view and status, and their latency (last in the list)."""

    def label_metric(self, metric, request, response=None, **labels):
        return series(metric, **labels)

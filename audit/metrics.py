"""Prometheus gauges read from the database at scrape time (correct across processes)."""

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector


class ReconciliationCollector(Collector):
    def describe(self):
        """Names only, so registering does not query the database."""
        return [
            GaugeMetricFamily(name, "")
            for name in (
                "wallet_ledger_reconciliation_ok",
                "wallet_ledger_reconciliation_problems",
                "wallet_ledger_reconciliation_timestamp_seconds",
            )
        ]

    def collect(self):
        from audit.selectors import latest_reconciliation

        ok = GaugeMetricFamily(
            "wallet_ledger_reconciliation_ok",
            "1 when the last reconciliation found the ledger consistent, 0 on drift.",
        )
        problems = GaugeMetricFamily(
            "wallet_ledger_reconciliation_problems", "Problems found by the last reconciliation."
        )
        age = GaugeMetricFamily(
            "wallet_ledger_reconciliation_timestamp_seconds",
            "When the last reconciliation finished (Unix time).",
        )
        try:
            run = latest_reconciliation()
        except Exception:
            run = None
        if run is not None:
            ok.add_metric([], 1.0 if run.ok else 0.0)
            problems.add_metric([], float(len(run.problems)))
            age.add_metric([], run.finished_at.timestamp())
        yield ok
        yield problems
        yield age


_registered = False


def register() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(ReconciliationCollector())
        _registered = True

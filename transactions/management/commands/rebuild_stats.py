"""Recompute the transaction counters (Redis) from the database."""

from django.core.management.base import BaseCommand

from transactions import stats


class Command(BaseCommand):
    help = "Recompute the transaction counters from the database (after a Redis outage or flush)."

    def handle(self, *args, **options) -> None:
        stats.rebuild_counters()
        counts = stats.transaction_stats()
        self.stdout.write(
            f"counters rebuilt: {counts['transactions']['by_status']} volume {counts['volume']}"
        )

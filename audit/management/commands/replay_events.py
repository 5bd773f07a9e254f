"""Rebuild balances and their history from the event stream and compare with the live ledger."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from tqdm import tqdm

from audit.models import AuditLog
from audit.replay import replay_balances


class Command(BaseCommand):
    help = (
        "Replay balance events into scratch tables, report differences with the live balances and "
        "history (exit 1 when any). --rebuild replaces differing live balances in one transaction; "
        "--until replays up to an instant."
    )

    def add_arguments(self, parser):
        parser.add_argument("--until", help="ISO 8601 timestamp: the ledger as of that instant.")
        parser.add_argument("--rebuild", action="store_true")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        until = None
        if options["until"]:
            until = parse_datetime(options["until"])
            if until is None or until.tzinfo is None:
                raise CommandError("--until needs an ISO 8601 timestamp with a UTC offset.")
        if options["rebuild"] and until:
            raise CommandError("--rebuild replaces today's balances; it cannot go with --until.")
        last = AuditLog.objects.order_by("-id").values_list("id", flat=True).first() or 0
        with tqdm(total=last, unit="id", disable=options["no_progress"] or last < 200_000) as bar:
            report = replay_balances(until=until, rebuild=options["rebuild"], progress=bar.update)
        summary = {
            "events": report.events,
            "balances": report.balances,
            "until": until.isoformat() if until else None,
            "balance_differences": report.balance_differences,
            "history_differences": report.history_differences,
            "stream_problems": report.stream_problems,
            "rebuilt": report.rebuilt,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write(
                f"replayed {report.events} balance events into {report.balances} balances"
                + (f" as of {until.isoformat()}" if until else "")
            )
            for key in ("balance_differences", "history_differences", "stream_problems"):
                for row in summary[key]:
                    self.stdout.write(f"  {key[:-1].replace('_', ' ')}: {row}")
            if report.rebuilt:
                self.stdout.write(f"rebuilt {report.rebuilt} balances from the event stream")
        if not report.ok and not report.rebuilt:
            raise CommandError("the live ledger differs from the event stream")
        if report.ok:
            self.stdout.write(self.style.SUCCESS("live ledger matches the event stream"))

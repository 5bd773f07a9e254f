"""Walk the audit trail and name the first broken link."""

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audit.models import AuditLog
from audit.verification import verify_audit_trail


class Command(BaseCommand):
    help = "Verify every audit event hash, every chain link and every seal."

    def add_arguments(self, parser):
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, **options):
        total = AuditLog.objects.count()
        with tqdm(
            total=total, unit="event", disable=options["no_progress"] or total < 50_000
        ) as bar:
            result = verify_audit_trail(progress=bar.update)
        self.stdout.write(
            f"checked {result.events_checked} events in {result.chains} chains, "
            f"{result.seals_checked} seals; {result.unsealed_events} events not sealed yet"
        )
        if not result.ok:
            first = result.first_problem
            where = (
                f"event #{first['event_id']}"
                if "event_id" in first
                else f"seal #{first['seal_id']}"
                if "seal_id" in first
                else f"balance #{first['balance_id']}"
            )
            for problem in result.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"audit trail broken at {where}: {first['reason']}")
        self.stdout.write(self.style.SUCCESS("audit trail intact"))

"""Check the ledger invariants and the audit trail now, and record the result."""

from django.core.management.base import BaseCommand, CommandError

from audit.reconciliation import reconcile


class Command(BaseCommand):
    help = "Run a reconciliation: zero sum per currency, balances vs entries, audit chain."

    def handle(self, *args, **options):
        run = reconcile()
        for name, state in run.checks.items():
            self.stdout.write(f"  {name}: {state}")
        if not run.ok:
            for problem in run.problems:
                self.stderr.write(f"  {problem}")
            raise CommandError(f"drift detected (reconciliation #{run.pk})")
        self.stdout.write(self.style.SUCCESS(f"ledger reconciled (reconciliation #{run.pk})"))

"""Seal the audit events that can no longer change."""

from django.core.management.base import BaseCommand

from audit.sealing import seal_audit_stream


class Command(BaseCommand):
    help = "Write a seal over every audit event whose transaction has finished."

    def handle(self, *args, **options):
        seal = seal_audit_stream()
        self.stdout.write(str(seal) if seal else "nothing new to seal")

"""Maintenance tasks of the audit trail."""

from celery import shared_task
from django.db import OperationalError


@shared_task(
    name="maintenance.seal_audit",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def seal_audit() -> int | None:
    """Seal the finished part of the audit stream. Safe to run twice (advisory lock)."""
    from audit.sealing import seal_audit_stream

    seal = seal_audit_stream()
    return seal.pk if seal else None


@shared_task(
    name="maintenance.reconcile",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=3,
)
def reconcile() -> bool:
    """Check the ledger invariants and the audit trail; the result is recorded and alerted."""
    from audit.reconciliation import reconcile as run_reconciliation

    return run_reconciliation().ok

"""Reads of the audit stream and of reconciliation results."""

from datetime import datetime

from django.db import connection
from django.db.models import QuerySet

from audit.models import AuditLog, AuditSeal, ReconciliationRun
from wallet_project.errors import NotFoundError


def list_audit_logs(
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    actor: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.all()
    if entity_type:
        qs = qs.filter(entity_type=entity_type)
    if entity_id:
        qs = qs.filter(entity_id=entity_id)
    if action:
        qs = qs.filter(action=action)
    if actor is not None:
        qs = qs.filter(actor_id=actor)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    return qs.order_by("-created_at", "-id")


def get_audit_log(*, log_id: object) -> AuditLog:
    try:
        return AuditLog.objects.get(pk=int(str(log_id)))
    except (AuditLog.DoesNotExist, ValueError):
        raise NotFoundError("No such audit event.") from None


def latest_reconciliation() -> ReconciliationRun | None:
    return ReconciliationRun.objects.order_by("-id").first()


def latest_reconciliation_summary() -> dict | None:
    run = latest_reconciliation()
    if run is None:
        return None
    return {
        "ok": run.ok,
        "finished_at": run.finished_at.isoformat(),
        "checks": run.checks,
        "problems": len(run.problems),
    }


def oldest_unsealed_event_at() -> datetime | None:
    """When the oldest event no seal covers yet was written (None: everything is sealed).

    The first event at or after the last seal's horizon in `(txid, id)` order: one
    index lookup, whatever the stream's length.
    """
    last = AuditSeal.objects.order_by("-id").values_list("xid_to", flat=True).first()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT created_at FROM audit_logs WHERE txid >= %s ORDER BY txid, id LIMIT 1",
            [last or 0],
        )
        row = cursor.fetchone()
    return row[0] if row else None

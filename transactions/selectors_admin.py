"""Reads for the back-office console: a period's activity, the pending queue, recent history."""

from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.db.models import Count, QuerySet, Sum

from transactions.models import (
    BatchStatus,
    ScheduledRun,
    ScheduledRunStatus,
    Transaction,
    TransactionStatus,
    TransferBatch,
)
from transactions.selectors import list_transaction_history


class ActivityRow(TypedDict):
    type: str
    status: str
    currency_id: str
    count: int
    total: Decimal


def activity_between(*, start: datetime, end: datetime) -> list[ActivityRow]:
    """Count and summed amount per (type, status, currency) of transactions created in
    `[start, end)`: one range scan of the `(created_at, id)` index, grouped in the database."""
    rows = (
        Transaction.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("type", "status", "currency_id")
        .annotate(count=Count("id"), total=Sum("amount"))
        .order_by("currency_id", "type", "status")
    )
    return [
        ActivityRow(
            type=row["type"],
            status=row["status"],
            currency_id=row["currency_id"],
            count=row["count"],
            total=row["total"],
        )
        for row in rows
    ]


def list_pending_transactions(*, limit: int = 10) -> list[Transaction]:
    """The oldest pending (queued, not yet processed) transactions, on the partial index."""
    return list(
        Transaction.objects.filter(status=TransactionStatus.PENDING)
        .select_related("from_user", "to_user")
        .order_by("created_at", "id")[:limit]
    )


def count_pending_transactions() -> int:
    return Transaction.objects.filter(status=TransactionStatus.PENDING).count()


def list_recent_transactions_for_user(*, user_id: int, limit: int = 20) -> list[Transaction]:
    """The user's newest transactions (as sender or recipient), with both parties joined."""
    return list(
        list_transaction_history(user_id=user_id).select_related("from_user", "to_user")[:limit]
    )


def list_transactions_for_export(queryset: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """The rows of a CSV export: `queryset` (already filtered) with both parties joined."""
    return queryset.select_related("from_user", "to_user")


def list_failed_scheduled_runs(*, limit: int = 10) -> list[ScheduledRun]:
    """The newest failed runs of scheduled transfers, with the schedule and its parties."""
    return list(
        ScheduledRun.objects.filter(status=ScheduledRunStatus.FAILED)
        .select_related("schedule__from_user", "schedule__to_user")
        .order_by("-id")[:limit]
    )


def list_unfinished_batches(*, limit: int = 10) -> list[TransferBatch]:
    """Batches still pending or processing, least recently advanced first (partial index)."""
    return list(
        TransferBatch.objects.filter(status__in=[BatchStatus.PENDING, BatchStatus.PROCESSING])
        .select_related("owner")
        .order_by("updated_at")[:limit]
    )

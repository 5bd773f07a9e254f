"""Reads of transactions, scoped to the viewer."""

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Min, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from audit.selectors import oldest_unsealed_event_at
from transactions.models import (
    BatchStatus,
    ScheduledRun,
    ScheduledTransfer,
    ScheduleStatus,
    Transaction,
    TransferBatch,
    TransferBatchItem,
)
from wallet_project.errors import NotFoundError, PermissionDeniedError
from wallet_project.pagination import MergedQuerySets


def resolve_subject_user_id(*, viewer: User, requested: int | None) -> int:
    """Whose data a read is about: the viewer, or (admins and auditors only) `requested`."""
    if requested is None or requested == viewer.pk:
        return viewer.pk
    if not viewer.can_read_all:
        raise PermissionDeniedError("Only admins and auditors may read another user's data.")
    return requested


def _visible(viewer: User) -> QuerySet[Transaction]:
    qs = Transaction.objects.select_related("reversed_by")
    if viewer.can_read_all:
        return qs
    return qs.filter(Q(from_user_id=viewer.pk) | Q(to_user_id=viewer.pk))


def get_transaction_for_viewer(*, viewer: User, transaction_id: uuid.UUID | str) -> Transaction:
    """A transaction the viewer is a party to (or any, for admins and auditors)."""
    try:
        return _visible(viewer).get(pk=transaction_id)
    except (Transaction.DoesNotExist, ValueError, TypeError):
        raise NotFoundError("No such transaction.") from None
    except Exception as exc:  # a malformed UUID surfaces as a ValidationError
        from django.core.exceptions import ValidationError

        if isinstance(exc, ValidationError):
            raise NotFoundError("No such transaction.") from None
        raise


def list_transaction_history(
    *,
    user_id: int,
    type: str | None = None,
    status: str | None = None,
    currency: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    min_amount: Decimal | None = None,
    max_amount: Decimal | None = None,
) -> MergedQuerySets[Transaction]:
    """A user's transactions (as sender or recipient), newest first, keyset-friendly.

    Two querysets read as one (`MergedQuerySets`, paged like a queryset): the transactions
    the user sent, on `txn_from_user_idx`, and the ones received from someone else, on
    `txn_to_user_idx`, both in `(-created_at, -id)` order. A page is a short range scan of
    each index from the cursor on, merged in order, however long the history and however
    many other users share the table.
    """
    filters = Q()
    if type:
        filters &= Q(type=type)
    if status:
        filters &= Q(status=status)
    if currency:
        filters &= Q(currency_id=currency)
    if start:
        filters &= Q(created_at__gte=start)
    if end:
        filters &= Q(created_at__lt=end)
    if min_amount is not None:
        filters &= Q(amount__gte=min_amount)
    if max_amount is not None:
        filters &= Q(amount__lte=max_amount)
    qs = Transaction.objects.filter(filters).select_related("reversed_by")
    sent = qs.filter(from_user_id=user_id)
    received = qs.filter(to_user_id=user_id).exclude(from_user_id=user_id)
    return MergedQuerySets(sent, received).order_by("-created_at", "-id")


def get_batch_for_viewer(*, viewer: User, batch_id: uuid.UUID | str) -> TransferBatch:
    """A batch the viewer owns (or any, for admins and auditors); else NotFoundError."""
    qs = TransferBatch.objects.all()
    if not viewer.can_read_all:
        qs = qs.filter(owner_id=viewer.pk)
    try:
        return qs.get(pk=batch_id)
    except (TransferBatch.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFoundError("No such batch.") from None


def list_batch_item_results(*, batch_id: uuid.UUID) -> list[tuple]:
    """(index, status, transaction_id, error_code, error_message) of every item, by index."""
    return list(
        TransferBatchItem.objects.filter(batch_id=batch_id)
        .order_by("index")
        .values_list("index", "status", "transaction_id", "error_code", "error_message")
    )


def list_schedules_for_viewer(
    *, viewer: User, user_id: int | None = None
) -> QuerySet[ScheduledTransfer]:
    """Scheduled transfers the viewer sends (or all, for admins and auditors), with runs.

    With `user_id`, only that sender's; naming another user is for admins and auditors
    (PermissionDeniedError otherwise), as for every read that takes a `user_id`.
    """
    qs = ScheduledTransfer.objects.prefetch_related(
        Prefetch("runs", queryset=ScheduledRun.objects.order_by("run_number"))
    )
    if user_id is not None or not viewer.can_read_all:
        qs = qs.filter(from_user_id=resolve_subject_user_id(viewer=viewer, requested=user_id))
    return qs.order_by("-created_at", "-id")


def get_schedule_for_viewer(*, viewer: User, schedule_id: uuid.UUID | str) -> ScheduledTransfer:
    """One scheduled transfer the viewer may see; else NotFoundError."""
    try:
        return list_schedules_for_viewer(viewer=viewer).get(pk=schedule_id)
    except (ScheduledTransfer.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFoundError("No such scheduled transfer.") from None


def _lag(since: datetime | None, now: datetime) -> float:
    return round((now - since).total_seconds(), 1) if since else 0.0


def background_stalls(*, now: datetime, stall_after: timedelta) -> dict[str, dict]:
    """Background work that made no progress for `stall_after`, one entry per kind.

    - `scheduler`: active schedules due for longer than that and not yet run (beat or the
      `scheduled` queue's workers are missing);
    - `audit_sealing`: the oldest event no seal covers is older than that (the
      `maintenance` queue is not served, or a transaction has been open that long);
    - `batches`: pending or processing batches whose progress stopped that long ago.

    Each has `status` (`ok` or the stall's name), a count or lag, and the oldest instant.
    Three index lookups (the due, unsealed and unfinished partial indexes).
    """
    cutoff = now - stall_after
    due = ScheduledTransfer.objects.filter(
        status=ScheduleStatus.ACTIVE, next_run_at__lt=cutoff
    ).aggregate(count=Count("id"), oldest=Min("next_run_at"))
    unsealed_at = oldest_unsealed_event_at()
    batches = TransferBatch.objects.filter(
        status__in=[BatchStatus.PENDING, BatchStatus.PROCESSING], updated_at__lt=cutoff
    ).aggregate(count=Count("id"), oldest=Min("updated_at"))
    sealing_behind = unsealed_at is not None and unsealed_at < cutoff
    return {
        "scheduler": {
            "status": "overdue" if due["count"] else "ok",
            "overdue_schedules": due["count"],
            "oldest_due_at": due["oldest"],
            "late_seconds": _lag(due["oldest"], now),
        },
        "audit_sealing": {
            "status": "behind" if sealing_behind else "ok",
            "oldest_unsealed_at": unsealed_at,
            "lag_seconds": _lag(unsealed_at, now),
        },
        "batches": {
            "status": "stalled" if batches["count"] else "ok",
            "stalled_batches": batches["count"],
            "oldest_progress_at": batches["oldest"],
            "idle_seconds": _lag(batches["oldest"], now),
        },
    }


def stalled_background_work() -> dict[str, dict]:
    """`background_stalls` now, for STALL_AFTER_SECONDS (readiness and the dashboard)."""
    return background_stalls(
        now=timezone.now(), stall_after=timedelta(seconds=settings.STALL_AFTER_SECONDS)
    )

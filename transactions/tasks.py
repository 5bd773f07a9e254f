"""Celery tasks of the worker pool: thin interfaces that call one service each.

Every task is safe to run twice: the service re-reads its rows under a lock (or an
advisory lock) and does nothing when the work is already done, and money only moves
through deterministic idempotency keys or, for batch items, in the transaction that
locks the item and records its outcome. Routing is by name prefix (see the Celery section
of the settings): `transactions.*`, `scheduled.*`, `maintenance.*`.
"""

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

# Work untouched for this long is presumed lost (a message dropped by a broker outage).
STALE_AFTER = timedelta(minutes=2)

# Transient database failures only (a lost connection, a failover); a business refusal is
# recorded as a failed outcome by the service and never retried.
RETRY: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="transactions.process_pending_transaction", **RETRY)
def process_pending_transaction(*, transaction_id: str) -> None:
    """Complete or fail one pending transaction. Safe to run twice."""
    from transactions import services  # tasks call services; services queue tasks by name

    services.process_pending_transaction(transaction_id=transaction_id)


@shared_task(name="transactions.start_batch", **RETRY)
def start_batch(*, batch_id: str) -> None:
    """Apply an atomic batch, or fan a batch out into chunk tasks. Safe to run twice."""
    from transactions import services

    services.start_batch(batch_id=batch_id)


@shared_task(name="transactions.process_batch_chunk", **RETRY)
def process_batch_chunk(*, batch_id: str, start: int, stop: int) -> None:
    """Process the pending items `start <= index < stop` of a batch. Safe to run twice."""
    from transactions import services

    services.process_batch_chunk(batch_id=batch_id, start=start, stop=stop)


@shared_task(name="scheduled.run_due_schedules", **RETRY)
def run_due_schedules() -> int:
    """Claim the schedules that are due and queue one run each. Safe to run concurrently."""
    from transactions import services

    return services.run_due_schedules()


@shared_task(name="scheduled.execute_run", **RETRY)
def execute_scheduled_run(*, run_id: int) -> None:
    """Execute one claimed run of a schedule. Safe to run twice."""
    from transactions import services

    services.execute_scheduled_run(run_id=run_id)


@shared_task(name="maintenance.expire_idempotency_keys", **RETRY)
def expire_idempotency_keys() -> int:
    """Delete idempotency keys past their retention window."""
    from transactions.idempotency import expire_idempotency_keys as expire

    return expire()


@shared_task(name="maintenance.requeue_stale_pending", **RETRY)
def requeue_stale_pending() -> int:
    """Queue again transactions left pending (their message was lost)."""
    from transactions import services

    return services.requeue_stale_pending(older_than=STALE_AFTER)


@shared_task(name="maintenance.resume_stalled_batches", **RETRY)
def resume_stalled_batches() -> int:
    """Start again batches with no progress for STALL_AFTER_SECONDS (a worker died mid-chunk,
    or their messages were lost). Chunks already applied are skipped: items apply once."""
    from transactions import services

    return services.resume_stalled_batches(
        older_than=timedelta(seconds=settings.STALL_AFTER_SECONDS)
    )


@shared_task(name="maintenance.requeue_stale_runs", **RETRY)
def requeue_stale_runs() -> int:
    """Queue again scheduled runs claimed but never finished."""
    from transactions import services

    return services.requeue_stale_runs(older_than=STALE_AFTER)


@shared_task(name="maintenance.rebuild_stats", **RETRY)
def rebuild_stats() -> bool:
    """Recompute the transaction counters from the database when they are missing."""
    from transactions import stats

    return stats.rebuild_counters(only_if_missing=True)

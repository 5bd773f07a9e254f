"""Scheduled transfers: create, pause, resume, cancel, and the scheduler's runs.

A run goes through three short steps, none of which holds a lock while money moves:
1. `claim_due_runs` (the beat tick): locks due schedules with `FOR UPDATE SKIP LOCKED`,
   inserts their next run as `pending` (`UNIQUE (schedule, run_number)`) and moves
   `next_run_at` on, in one transaction; a second scheduler skips the locked rows and
   finds them no longer due. Each claimed run is queued after commit.
2. `execute_scheduled_run` (a worker): a normal `transfer` with the idempotency key
   `schedule:<id>:<run_number>`, scoped to the sender, so a run executed twice (a
   redelivered message, a re-queued stale run) moves money once.
3. the outcome is written on the run, only if it is still pending, under the schedule's
   row lock, with the failure policy of `ScheduledTransfer` (paused after 3 failures).
Lock order: the schedule row only (steps 1 and 3); step 2 locks like `transfer`.
"""

import calendar
import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from accounts.authorization import ensure_may_change
from accounts.models import User
from audit.services import record_event
from money.amounts import format_amount
from transactions.idempotency import (
    IdempotencyRequest,
    IdempotentReplay,
    claim_idempotency_key,
    complete_idempotency_key,
    fingerprint,
)
from transactions.models import (
    MAX_CONSECUTIVE_FAILURES,
    ScheduledRun,
    ScheduledRunStatus,
    ScheduledTransfer,
    ScheduleInterval,
    ScheduleStatus,
)
from transactions.services.movements import transfer
from transactions.services.pending import enqueue_after_commit, worker_exclusive
from wallet_project.celery import enqueue
from wallet_project.errors import (
    AccountInactiveError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    SameAccountError,
    ValidationFailedError,
    WalletError,
)
from wallet_project.statements import WriteStatement

logger = logging.getLogger("wallet.schedules")

EXECUTE_RUN_TASK = "scheduled.execute_run"  # see transactions.tasks

CLAIM_LIMIT = 100  # schedules claimed per statement; a tick claims until none is due
MAX_CLAIM_ROUNDS = 20
PAST_TOLERANCE = timedelta(minutes=5)  # a run_at slightly in the past (clock skew) runs now
_STEPS: dict[str | None, timedelta] = {
    ScheduleInterval.DAILY: timedelta(days=1),
    ScheduleInterval.WEEKLY: timedelta(weeks=1),
}


# ---------------------------------------------------------------- the calendar


def _add_months(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def occurrence(*, schedule: ScheduledTransfer, k: int) -> datetime:
    """The k-th occurrence (k = 0 is `run_at`); months keep the anchor day, clamped."""
    if schedule.interval == ScheduleInterval.MONTHLY:
        return _add_months(schedule.run_at, k)
    return schedule.run_at + k * _STEPS[schedule.interval]


def next_occurrence(*, schedule: ScheduledTransfer, after: datetime) -> datetime | None:
    """The first occurrence strictly after `after` and within `end_at`; None if there is none."""
    if not schedule.interval:
        return None
    if after < schedule.run_at:
        k = 0
    elif schedule.interval == ScheduleInterval.MONTHLY:
        k = max(0, (after.year - schedule.run_at.year) * 12 + after.month - schedule.run_at.month)
    else:
        k = (after - schedule.run_at) // _STEPS[schedule.interval]
    moment = occurrence(schedule=schedule, k=k)
    while moment <= after:
        k += 1
        moment = occurrence(schedule=schedule, k=k)
    if schedule.end_at is not None and moment > schedule.end_at:
        return None
    return moment


# ---------------------------------------------------------------- changes


def _details(schedule: ScheduledTransfer, **extra: object) -> dict:
    code = schedule.currency_id
    return {
        "from_user_id": schedule.from_user_id,
        "to_user_id": schedule.to_user_id,
        "amount": format_amount(schedule.amount, code),
        "currency": code,
        "interval": schedule.interval,
        "run_at": schedule.run_at.isoformat(),
        "end_at": schedule.end_at.isoformat() if schedule.end_at else None,
        "next_run_at": schedule.next_run_at.isoformat() if schedule.next_run_at else None,
        "status": schedule.status,
        "run_count": schedule.run_count,
        "consecutive_failures": schedule.consecutive_failures,
        **extra,
    }


def _record(
    *, schedule: ScheduledTransfer, action: str, actor_id: int | None, **extra: object
) -> None:
    """The audit event of a schedule change; the caller holds the schedule's row lock."""
    record_event(
        actor_id=actor_id,
        action=action,
        entity_type="schedule",
        entity_id=schedule.pk,
        details=_details(schedule, **extra),
        chain=f"schedule:{schedule.pk}",
    )


def _save(schedule: ScheduledTransfer, *fields: str) -> None:
    schedule.updated_at = timezone.now()
    schedule.save(update_fields=[*fields, "updated_at"])


@transaction.atomic(durable=True)
def create_schedule(
    *,
    actor: User,
    sender: User,
    recipient: User,
    amount: Decimal,
    currency: str,
    run_at: datetime,
    description: str = "",
    interval: str | None = None,
    end_at: datetime | None = None,
    idempotency: IdempotencyRequest | None = None,
) -> ScheduledTransfer:
    """Schedule a transfer from `sender` to `recipient`: once at `run_at`, or every `interval`.

    Locks nothing (the row is new). Raises PermissionDeniedError (a non-admin scheduling
    for someone else), SameAccountError, AccountInactiveError, ValidationFailedError
    (`run_at` in the past, `end_at` without interval or before `run_at`),
    IdempotencyKeyReusedError; IdempotentReplay for a repeated key. An auditor is refused.
    """
    ensure_may_change(actor)
    if sender.pk != actor.pk and not actor.is_admin:
        raise PermissionDeniedError("Only an admin may schedule transfers for another user.")
    if sender.pk == recipient.pk:
        raise SameAccountError(details={"to_user_id": recipient.pk})
    now = timezone.now()
    problems: dict[str, list[str]] = {}
    if run_at < now - PAST_TOLERANCE:
        problems["run_at"] = ["run_at must not be in the past."]
    if end_at is not None and not interval:
        problems["end_at"] = ["end_at needs an interval."]
    elif end_at is not None and end_at < run_at:
        problems["end_at"] = ["end_at must not be before run_at."]
    if interval is not None and interval not in ScheduleInterval.values:
        problems["interval"] = [f"One of {', '.join(ScheduleInterval.values)}."]
    if problems:
        raise ValidationFailedError(details=problems)
    inactive = [u.pk for u in (sender, recipient) if not u.is_active]
    if inactive:
        raise AccountInactiveError(details={"user_id": inactive[0]})
    claim_idempotency_key(idempotency=idempotency)
    schedule = ScheduledTransfer.objects.create(
        from_user=sender,
        to_user=recipient,
        created_by=actor,
        amount=amount,
        currency_id=currency,
        description=description or "",
        interval=interval or None,
        run_at=run_at,
        end_at=end_at,
        next_run_at=run_at,
        status=ScheduleStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    _record(schedule=schedule, action="schedule.created", actor_id=actor.pk)
    write = WriteStatement()
    complete_idempotency_key(write, idempotency=idempotency, result=schedule)
    write.execute()
    return schedule


def _lock_schedule(*, schedule_id: uuid.UUID | str) -> ScheduledTransfer:
    """Lock one schedule row (`FOR UPDATE`). Order: schedule rows are locked alone."""
    try:
        return ScheduledTransfer.objects.select_for_update().get(pk=schedule_id)
    except (ScheduledTransfer.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFoundError("No such scheduled transfer.") from None


def _ensure_may_change(*, actor: User, schedule: ScheduledTransfer) -> None:
    ensure_may_change(actor)
    if not actor.is_admin and actor.pk != schedule.from_user_id:
        raise PermissionDeniedError("Only the sender or an admin may change this schedule.")


def _refuse(schedule: ScheduledTransfer, verb: str) -> InvalidStateError:
    return InvalidStateError(
        f"A {schedule.status} schedule cannot be {verb}.", details={"status": schedule.status}
    )


@transaction.atomic(durable=True)
def pause_schedule(
    *, actor: User, schedule_id: uuid.UUID | str, reason: str = ""
) -> ScheduledTransfer:
    """Stop running an active schedule until it is resumed.

    Locks the schedule row. Raises NotFoundError, PermissionDeniedError, InvalidStateError.
    """
    schedule = _lock_schedule(schedule_id=schedule_id)
    _ensure_may_change(actor=actor, schedule=schedule)
    if schedule.status != ScheduleStatus.ACTIVE:
        raise _refuse(schedule, "paused")
    schedule.status = ScheduleStatus.PAUSED
    _save(schedule, "status")
    _record(schedule=schedule, action="schedule.paused", actor_id=actor.pk, reason=reason)
    return schedule


@transaction.atomic(durable=True)
def resume_schedule(
    *, actor: User, schedule_id: uuid.UUID | str, reason: str = ""
) -> ScheduledTransfer:
    """Run a paused schedule again from its next occurrence (missed ones are skipped).

    Resets the failure count. A schedule with no occurrence left becomes `completed`.
    Locks the schedule row. Raises NotFoundError, PermissionDeniedError, InvalidStateError.
    """
    schedule = _lock_schedule(schedule_id=schedule_id)
    _ensure_may_change(actor=actor, schedule=schedule)
    if schedule.status != ScheduleStatus.PAUSED:
        raise _refuse(schedule, "resumed")
    now = timezone.now()
    if schedule.next_run_at is None or schedule.next_run_at < now:
        schedule.next_run_at = next_occurrence(schedule=schedule, after=now)
    schedule.consecutive_failures = 0
    schedule.status = ScheduleStatus.ACTIVE
    if schedule.next_run_at is None:
        schedule.status = ScheduleStatus.COMPLETED
    _save(schedule, "status", "next_run_at", "consecutive_failures")
    _record(schedule=schedule, action="schedule.resumed", actor_id=actor.pk, reason=reason)
    return schedule


@transaction.atomic(durable=True)
def cancel_schedule(
    *, actor: User, schedule_id: uuid.UUID | str, reason: str = ""
) -> ScheduledTransfer:
    """Cancel an active or paused schedule: no further run. A run already claimed finishes.

    Locks the schedule row. Raises NotFoundError, PermissionDeniedError, InvalidStateError
    (already completed or cancelled).
    """
    schedule = _lock_schedule(schedule_id=schedule_id)
    _ensure_may_change(actor=actor, schedule=schedule)
    if schedule.status not in (ScheduleStatus.ACTIVE, ScheduleStatus.PAUSED):
        raise _refuse(schedule, "cancelled")
    schedule.status = ScheduleStatus.CANCELLED
    schedule.next_run_at = None
    _save(schedule, "status", "next_run_at")
    _record(schedule=schedule, action="schedule.cancelled", actor_id=actor.pk, reason=reason)
    return schedule


# ---------------------------------------------------------------- the scheduler


@transaction.atomic(durable=True)
def claim_due_runs(*, now: datetime | None = None, limit: int = CLAIM_LIMIT) -> list[int]:
    """Claim up to `limit` due schedules and record one pending run each; returns run ids.

    Locks the due schedule rows with `FOR UPDATE SKIP LOCKED` (another scheduler claims
    others, or nothing). Occurrences missed while nothing ran are not replayed: the next
    run is the first occurrence after `now`. The runs are queued after commit.
    """
    now = now or timezone.now()
    due = list(
        ScheduledTransfer.objects.select_for_update(skip_locked=True)
        .filter(status=ScheduleStatus.ACTIVE, next_run_at__lte=now)
        .order_by("next_run_at", "id")[:limit]
    )
    runs = []
    for schedule in due:
        due_at = cast(datetime, schedule.next_run_at)  # due: `next_run_at <= now`, not null
        run = ScheduledRun(
            schedule=schedule,
            run_number=schedule.run_count + 1,
            run_at=due_at,
            status=ScheduledRunStatus.PENDING,
            created_at=now,
        )
        runs.append(run)
        schedule.run_count = run.run_number
        schedule.next_run_at = next_occurrence(schedule=schedule, after=max(now, due_at))
        if schedule.next_run_at is None:
            schedule.status = ScheduleStatus.COMPLETED
        schedule.updated_at = now
        _record(
            schedule=schedule,
            action="schedule.run_started",
            actor_id=None,
            run_number=run.run_number,
            run_at=run.run_at.isoformat(),
        )
    if not due:
        return []
    ScheduledRun.objects.bulk_create(runs)
    ScheduledTransfer.objects.bulk_update(due, ["run_count", "next_run_at", "status", "updated_at"])
    for run in runs:
        enqueue_after_commit(EXECUTE_RUN_TASK, run_id=run.pk)
    return [run.pk for run in runs]


def run_due_schedules(*, now: datetime | None = None) -> int:
    """The beat tick: claim every due schedule (in rounds of CLAIM_LIMIT); returns the count."""
    claimed = 0
    for _ in range(MAX_CLAIM_ROUNDS):
        ids = claim_due_runs(now=now)
        claimed += len(ids)
        if len(ids) < CLAIM_LIMIT:
            break
    return claimed


def run_idempotency(run: ScheduledRun) -> IdempotencyRequest:
    """The deterministic key of a run, `schedule:<id>:<run_number>`, scoped to the sender."""
    key = f"schedule:{run.schedule_id}:{run.run_number}"
    return IdempotencyRequest(
        user_id=run.schedule.from_user_id,
        key=key,
        fingerprint=fingerprint(method="SCHEDULE", path=key, body={"run": run.pk}),
        render=lambda txn: (201, {"id": str(txn.pk), "status": txn.status}),
    )


def execute_scheduled_run(*, run_id: int) -> ScheduledRun | None:
    """Execute one claimed run as a transfer and record its outcome; safe to call twice.

    Holds the advisory lock `scheduled-run:<id>` (a duplicate skips), then moves money
    with the key `schedule:<id>:<run_number>` (a replay returns the first transfer). A
    refusal is recorded on the run (`failed`, with its error), never raised.
    """
    with worker_exclusive(name=f"scheduled-run:{run_id}") as acquired:
        if not acquired:
            return None
        run = (
            ScheduledRun.objects.select_related(
                "schedule", "schedule__from_user", "schedule__to_user", "schedule__created_by"
            )
            .filter(pk=run_id)
            .first()
        )
        if run is None or run.status != ScheduledRunStatus.PENDING:
            return run
        schedule = run.schedule
        transaction_id, error = None, None
        try:
            txn = transfer(
                actor=schedule.created_by or schedule.from_user,
                sender=schedule.from_user,
                recipient=schedule.to_user,
                amount=schedule.amount,
                currency=schedule.currency_id,
                description=schedule.description,
                idempotency=run_idempotency(run),
            )
            transaction_id = str(txn.pk)
        except IdempotentReplay as replay:
            transaction_id = replay.transaction_id
        except WalletError as refusal:
            if refusal.http_status >= 500:  # transient: the run stays pending for a retry
                raise
            error = refusal
        return record_run_outcome(run_id=run.pk, transaction_id=transaction_id, error=error)


@transaction.atomic(durable=True)
def record_run_outcome(
    *, run_id: int, transaction_id: str | None, error: WalletError | None
) -> ScheduledRun:
    """Write a run's outcome (only if still pending) and apply the failure policy.

    Locks the schedule row, then updates the run. Three failed runs in a row pause an
    active recurring schedule; a success resets the count.
    """
    run = ScheduledRun.objects.get(pk=run_id)
    schedule = _lock_schedule(schedule_id=run.schedule_id)
    now = timezone.now()
    status = ScheduledRunStatus.FAILED if error else ScheduledRunStatus.COMPLETED
    updated = ScheduledRun.objects.filter(pk=run_id, status=ScheduledRunStatus.PENDING).update(
        status=status,
        transaction_id=transaction_id,
        error_code=error.code if error else None,
        error_message=error.message[:500] if error else None,
        finished_at=now,
    )
    run.refresh_from_db()
    if not updated:
        return run
    schedule.consecutive_failures = schedule.consecutive_failures + 1 if error else 0
    fields = ["consecutive_failures"]
    pause = (
        error is not None
        and schedule.status == ScheduleStatus.ACTIVE
        and schedule.consecutive_failures >= MAX_CONSECUTIVE_FAILURES
    )
    if pause:
        schedule.status = ScheduleStatus.PAUSED
        fields.append("status")
    _save(schedule, *fields)
    _record(
        schedule=schedule,
        action="schedule.run_failed" if error else "schedule.run_completed",
        actor_id=None,
        run_number=run.run_number,
        transaction_id=transaction_id,
        error={"code": error.code, "message": error.message} if error else None,
    )
    if pause:
        _record(
            schedule=schedule,
            action="schedule.paused",
            actor_id=None,
            reason=f"{MAX_CONSECUTIVE_FAILURES} consecutive failed runs",
        )
        logger.warning("schedule paused after failed runs", extra={"schedule_id": str(schedule.pk)})
    return run


def requeue_stale_runs(*, older_than: timedelta) -> int:
    """Queue again every run claimed more than `older_than` ago and still pending."""
    cutoff = timezone.now() - older_than
    ids = list(
        ScheduledRun.objects.filter(status=ScheduledRunStatus.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("id", flat=True)[:1000]
    )
    for run_id in ids:
        enqueue(EXECUTE_RUN_TASK, run_id=run_id)
    return len(ids)

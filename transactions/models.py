"""Transactions and idempotency keys.

Tables (every amount is in a currency of `money.models.Currency`, the `currencies` table)
- `transactions`: one row per money movement (credit, debit, transfer, reversal). The amount
  is positive (`transaction_amount_positive`); the status follows the state machine below,
  and only services change it. A reversal is a new row pointing at the original through
  `reversal_of` (unique: an original is reversed at most once).
- `idempotency_keys`: `UNIQUE (user_id, key)`; the row is inserted in the same database
  transaction as the movement it guards, so a duplicate waits on the unique index and then
  replays the stored response.
- `transfer_batches`, `transfer_batch_items`: a batch of up to 10,000 transfers and each
  item's outcome; `processed = succeeded + failed <= total` (`batch_counts_consistent`),
  one item per index (`batch_item_unique_index`). See `TransferBatch`.
- `scheduled_transfers`, `scheduled_runs`: one-time or recurring transfers and every run,
  one row per run number (`scheduled_run_unique_number`); an active schedule always has a
  next run (`schedule_active_has_next_run`). See `ScheduledTransfer` for the run and
  failure policy.
Batch items and scheduled runs record what their transfer came to in the same columns
(`Outcome`): a status, the transaction once completed, the refusal once failed.

Invariants: every completed transaction has balance entries summing to zero (see
`balances.models`), and a transaction's status only moves along `ALLOWED_TRANSITIONS`.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from money.models import Currency


class TransactionType(models.TextChoices):
    CREDIT = "credit", "Credit"
    DEBIT = "debit", "Debit"
    TRANSFER = "transfer", "Transfer"
    REVERSAL = "reversal", "Reversal"


class TransactionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    REVERSED = "reversed", "Reversed"


ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TransactionStatus.PENDING: frozenset({TransactionStatus.COMPLETED, TransactionStatus.FAILED}),
    TransactionStatus.COMPLETED: frozenset({TransactionStatus.REVERSED}),
    TransactionStatus.FAILED: frozenset(),
    TransactionStatus.REVERSED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """The one place that says which status changes are allowed."""
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


class Transaction(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=16, choices=TransactionType.choices)
    status = models.CharField(max_length=16, choices=TransactionStatus.choices)
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    amount = models.DecimalField(max_digits=24, decimal_places=3)
    # No index of its own: reads by currency go through a user's or the time index.
    currency = models.ForeignKey(
        Currency,
        on_delete=models.PROTECT,
        db_column="currency",
        related_name="+",
        db_index=False,
    )
    description = models.CharField(max_length=500, blank=True, default="")
    reference = models.CharField(max_length=255, null=True, blank=True)
    reversal_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
    )
    failure_code = models.CharField(max_length=64, null=True, blank=True)
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    # Set by the movement services on the transactions they write, never stored (readers use
    # getattr): the balance after the movement of account `balance_owner_id`, and the status
    # a status change started from (for the counters).
    balance_after: Decimal
    balance_owner_id: int | None
    previous_status: str

    class Meta:
        db_table = "transactions"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="transaction_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["pending", "completed", "failed", "reversed"],
                    type__in=["credit", "debit", "transfer", "reversal"],
                ),
                name="transaction_type_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["from_user", "-created_at", "-id"], name="txn_from_user_idx"),
            models.Index(fields=["to_user", "-created_at", "-id"], name="txn_to_user_idx"),
            models.Index(fields=["-created_at", "-id"], name="txn_created_idx"),
            models.Index(
                fields=["status", "created_at"],
                name="txn_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} {self.currency_id} ({self.status})"


class IdempotencyKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, default="completed")
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "idempotency_keys"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"


# ---------------------------------------------------------------- limits


class TransferLimit(models.Model):
    """A limit on what an account holder may send in one currency (transfers and debits).

    A rule with no user is the default for everyone; a user's own active rule replaces the
    default for that user (to raise or lower it). `max_per_transaction` caps one movement,
    `max_per_day` the total sent per UTC day (completed movements; a reversed one no longer
    counts). An empty cap means no cap. Movements staff make on someone else's account
    (manual adjustments, admin-initiated transfers) are not limited. See `transactions.limits`.
    """

    currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, db_column="currency", related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty: the default rule for every account.",
    )
    max_per_transaction = models.DecimalField(
        max_digits=24, decimal_places=3, null=True, blank=True
    )
    max_per_day = models.DecimalField(max_digits=24, decimal_places=3, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    reason = models.CharField(max_length=500)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "transfer_limits"
        ordering = ("currency", "user_id")
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "user"],
                condition=models.Q(is_active=True),
                nulls_distinct=False,
                name="transfer_limit_one_active_rule",
                violation_error_message=(
                    "This account already has an active limit rule in this currency."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(max_per_transaction__isnull=True)
                | models.Q(max_per_transaction__gt=0),
                name="transfer_limit_per_transaction_positive",
                violation_error_message="A limit must be more than zero.",
            ),
            models.CheckConstraint(
                condition=models.Q(max_per_day__isnull=True) | models.Q(max_per_day__gt=0),
                name="transfer_limit_per_day_positive",
                violation_error_message="A limit must be more than zero.",
            ),
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else "everyone"
        return f"{self.currency_id} limit for {who}"


# ---------------------------------------------------------------- outcomes


class OutcomeStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Outcome(models.Model):
    """What one transfer made on someone's behalf came to (a batch item, a scheduled run).

    `pending` until it is done; then `completed` with its `transaction`, or `failed` with
    the refusal's code and message. Abstract: each kind has its own table.
    """

    id = models.BigAutoField(primary_key=True)
    status = models.CharField(
        max_length=16, choices=OutcomeStatus.choices, default=OutcomeStatus.PENDING
    )
    transaction = models.ForeignKey(
        Transaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    error_code = models.CharField(max_length=64, null=True, blank=True)
    error_message = models.CharField(max_length=500, null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def error(self) -> dict[str, str | None] | None:
        """The refusal as the API shows it (`{"code": ..., "message": ...}`), or None."""
        if not self.error_code:
            return None
        return {"code": self.error_code, "message": self.error_message}


# ---------------------------------------------------------------- batches


class BatchStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


BatchItemStatus = OutcomeStatus


class TransferBatch(models.Model):
    """Many transfers submitted at once (`transfer_batches`), processed by the worker pool.

    `atomic` batches apply all items or none in one database transaction; a failing item
    fails the whole batch (`failed`, `succeeded = 0`). Other batches are processed in
    chunks by several workers, one database transaction per chunk; an item is applied once,
    in the transaction that records its outcome, and a refused item fails alone. The batch
    is `completed` once every item is done, whatever the per-item outcomes.
    `processed = succeeded + failed <= total` always holds (`batch_counts_consistent`);
    counters only grow, in one statement with the item update.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    atomic = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=BatchStatus.choices, default=BatchStatus.PENDING
    )
    total = models.PositiveIntegerField()
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transfer_batches"
        ordering = ("-created_at", "-id")
        verbose_name_plural = "transfer batches"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(processed=models.F("succeeded") + models.F("failed"))
                & models.Q(processed__lte=models.F("total")),
                name="batch_counts_consistent",
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="batch_owner_idx"),
            models.Index(
                fields=["updated_at"],
                name="batch_unfinished_idx",
                condition=models.Q(status__in=["pending", "processing"]),
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status} {self.processed}/{self.total})"


class TransferBatchItem(Outcome):
    """One requested transfer of a batch, as submitted, and its outcome.

    The parties are plain ids (an unknown recipient is a per-item refusal, not a broken
    foreign key); `transaction` is set once the item completed.
    """

    batch = models.ForeignKey(
        TransferBatch, on_delete=models.PROTECT, related_name="items", db_index=False
    )
    index = models.PositiveIntegerField()
    from_user_id = models.BigIntegerField()
    to_user_id = models.BigIntegerField()
    amount = models.DecimalField(max_digits=24, decimal_places=3)
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=500, blank=True, default="")
    reference = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        db_table = "transfer_batch_items"
        ordering = ("batch_id", "index")
        constraints = [
            models.UniqueConstraint(fields=["batch", "index"], name="batch_item_unique_index"),
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="batch_item_amount_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} #{self.index} ({self.status})"


# ---------------------------------------------------------------- scheduled transfers


class ScheduleInterval(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class ScheduleStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


ScheduledRunStatus = OutcomeStatus


MAX_CONSECUTIVE_FAILURES = 3


class ScheduledTransfer(models.Model):
    """A transfer to run once (`run_at`) or on a calendar (`interval`, until `end_at`).

    Tables: `scheduled_transfers` (this) and `scheduled_runs` (one row per run).

    Runs: occurrence k falls at `run_at + k * interval` (months keep the anchor's day,
    clamped to the month's end). The scheduler claims due rows with
    `SELECT ... FOR UPDATE SKIP LOCKED`, records the run (`run_number = run_count + 1`,
    `UNIQUE (schedule, run_number)`) and moves `next_run_at` in the same transaction, so
    two schedulers never claim the same run. The run then executes as a normal transfer
    with the idempotency key `schedule:<id>:<run_number>`, so a redelivered run never
    moves money twice. Occurrences missed while the scheduler was down are not replayed
    in a burst: one run executes, and `next_run_at` jumps to the next future occurrence.

    Failure policy: a failed run (e.g. insufficient funds) is recorded with its error
    and the schedule carries on; after MAX_CONSECUTIVE_FAILURES (3) failed runs in a row
    a recurring schedule is `paused` (resume it to continue). A successful run resets
    the count. A one-time schedule is `completed` after its run, whatever its outcome.

    Statuses: `active` -> `paused` <-> `active`; `active | paused` -> `cancelled`;
    `active` -> `completed` (no occurrence left). `completed` and `cancelled` are final.
    Every change writes an audit event on the chain `schedule:<id>`, under the row lock.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    amount = models.DecimalField(max_digits=24, decimal_places=3)
    currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, db_column="currency", related_name="+"
    )
    description = models.CharField(max_length=500, blank=True, default="")
    interval = models.CharField(
        max_length=16, choices=ScheduleInterval.choices, null=True, blank=True
    )
    run_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ScheduleStatus.choices, default=ScheduleStatus.ACTIVE
    )
    run_count = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "scheduled_transfers"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="schedule_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(end_at__isnull=True)
                | models.Q(interval__isnull=False, end_at__gte=models.F("run_at")),
                name="schedule_end_after_start",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="active") | models.Q(next_run_at__isnull=False),
                name="schedule_active_has_next_run",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_run_at"],
                name="schedule_due_idx",
                condition=models.Q(status="active"),
            ),
            models.Index(fields=["-created_at", "-id"], name="schedule_created_idx"),
        ]

    def __str__(self) -> str:
        every = self.interval or "once"
        return f"{self.amount} {self.currency_id} {every} ({self.status})"


class ScheduledRun(Outcome):
    """One execution of a scheduled transfer: claimed (`pending`), then `completed` or `failed`."""

    schedule = models.ForeignKey(
        ScheduledTransfer, on_delete=models.PROTECT, related_name="runs", db_index=False
    )
    run_number = models.PositiveIntegerField()
    run_at = models.DateTimeField()
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "scheduled_runs"
        ordering = ("schedule_id", "run_number")
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "run_number"], name="scheduled_run_unique_number"
            ),
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                name="scheduled_run_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.run_number} of {self.schedule_id} ({self.status})"

"""Batch transfers: up to 10,000 transfers in one request, processed by the worker pool.

`create_batch` records the batch and its items and queues `start_batch` after commit.

Both kinds of batch apply their items the same way (`_apply_items`), in one database
transaction per unit of work: every balance the items touch is locked once (one
`lock_balances` call, primary-key order), the items are checked in memory in index order
against the locked amounts (`_check_items`: a refused item is not applied, so later items
are checked as if it were absent), and the accepted ones are written set-based: the
transactions, the audit events (each balance's chain continued from the head read under
its lock, then each transaction's `transaction.completed`), the balance entries, the
balances, then the items' outcomes and the batch counters (`_record_outcomes`). The
large inserts use COPY, streamed while the rows are computed.

An *atomic* batch is one unit, `apply_atomic_batch`, which locks the batch row first. If
any item is refused, nothing moves: the refused items carry their own error, the others
`batch_aborted`, and the batch ends `failed` with `succeeded = 0`. A second run finds the
batch finished and does nothing.

Other batches are cut into chunks of CHUNK_SIZE items, each a `process_batch_chunk` task
and one database transaction, so several workers share the work. A refused item is
recorded `failed` with its own error code and affects only itself. Each item is applied
exactly once without an idempotency key of its own: a chunk locks its item rows and
applies only those still `pending`, in the transaction that records their outcomes, so a
redelivered chunk finds them finished, and a chunk that fails before its commit leaves
them pending with nothing moved. The batch is `completed` when the last item is counted.
"""

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.authorization import ensure_may_change
from accounts.models import User
from audit.services import PendingEvent, add_events, chain_head, copy_events
from balances.locks import LockedSet, lock_balances
from balances.services import ENTRY_COLUMNS, PostingResult, add_balance_updates, iter_postings
from money.amounts import exponent_of, format_amount
from transactions.idempotency import (
    IdempotencyRequest,
    claim_idempotency_key,
    complete_idempotency_key,
)
from transactions.limits import LIMIT_COLUMNS, LimitCheck, is_limited
from transactions.models import (
    BatchItemStatus,
    BatchStatus,
    Transaction,
    TransactionStatus,
    TransactionType,
    TransferBatch,
    TransferBatchItem,
)
from transactions.services.movements import (
    TRANSACTION_COLUMNS,
    legs_for,
    schedule_after_commit,
    transaction_event,
)
from transactions.services.pending import database_now, enqueue_after_commit, worker_exclusive
from wallet_project.celery import enqueue
from wallet_project.db import retry_on_lock_conflict
from wallet_project.errors import (
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
)
from wallet_project.statements import ModelColumns, WriteStatement

logger = logging.getLogger("wallet.batches")

# The tasks this queues (see transactions.tasks).
START_BATCH_TASK = "transactions.start_batch"
PROCESS_BATCH_CHUNK_TASK = "transactions.process_batch_chunk"

MAX_ITEMS = 10_000
# One task and one database transaction per chunk. Workers sharing accounts take turns on
# the balance locks; 500 items hold them about 0.2 s, so other movements wait little, and
# per-chunk work stays a small share (bench/batch_bench.py, two workers over 1,000
# accounts: 250 items ~2,500 transfers/s, 500 ~3,100/s, 1,000 ~3,100/s).
CHUNK_SIZE = 500
ABORTED = "batch_aborted"  # item error in a failed atomic batch for items that were fine


@dataclass(frozen=True)
class BatchItemInput:
    """One requested transfer of a batch (shape already checked)."""

    to_user_id: int
    amount: Decimal
    currency: str
    description: str = ""
    reference: str | None = None
    from_user_id: int | None = None


def _batch_event(
    *,
    batch: TransferBatch,
    action: str,
    actor_id: int | None,
    now: datetime,
    extra: dict | None = None,
) -> PendingEvent:
    """An event on the chain `batch:<id>`; the caller holds the batch row lock."""
    return PendingEvent(
        entity_type="batch",
        entity_id=str(batch.pk),
        action=action,
        details={
            "owner_id": batch.owner_id,
            "atomic": batch.atomic,
            "status": batch.status,
            "total": batch.total,
            "processed": batch.processed,
            "succeeded": batch.succeeded,
            "failed": batch.failed,
            **(extra or {}),
        },
        actor_id=actor_id,
        created_at=now,
        chain=f"batch:{batch.pk}",
        prev_hash=chain_head(chain=f"batch:{batch.pk}"),
    )


# An item is inserted as requested; its outcome is written when it is applied.
ITEM_COLUMNS = ModelColumns(
    TransferBatchItem,
    omitted={
        "id": "an identity",
        "transaction": "set when the item is applied (_RECORD_SQL)",
        "error_code": "set when the item is refused (_RECORD_SQL, _FAIL_SQL)",
        "error_message": "set when the item is refused (_RECORD_SQL, _FAIL_SQL)",
    },
)


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def create_batch(
    *,
    actor: User,
    items: list[BatchItemInput],
    atomic: bool,
    idempotency: IdempotencyRequest | None = None,
) -> TransferBatch:
    """Record a batch of transfers from `actor` (or, for an admin, from any sender).

    Inserts the batch, its items (one COPY) and a `batch.created` event, stores the
    idempotency response, and queues `start_batch` after commit. Locks nothing. Raises
    ValidationFailedError (no items, more than MAX_ITEMS), PermissionDeniedError (a
    non-admin naming another sender, an auditor), IdempotencyKeyReusedError; IdempotentReplay.
    """
    ensure_may_change(actor)
    if not 1 <= len(items) <= MAX_ITEMS:
        raise ValidationFailedError(details={"items": [f"Send between 1 and {MAX_ITEMS} items."]})
    if not actor.is_admin and any(i.from_user_id not in (None, actor.pk) for i in items):
        raise PermissionDeniedError("Only an admin may set from_user_id.")
    claim_idempotency_key(idempotency=idempotency)
    now = database_now()
    batch = TransferBatch.objects.create(
        owner=actor,
        atomic=atomic,
        status=BatchStatus.PENDING,
        total=len(items),
        created_at=now,
        updated_at=now,
    )
    ITEM_COLUMNS.copy(
        ITEM_COLUMNS.row_of(
            {
                "batch_id": batch.pk,
                "index": index,
                "from_user_id": item.from_user_id or actor.pk,
                "to_user_id": item.to_user_id,
                "amount": item.amount,
                "currency": item.currency,
                "description": item.description or "",
                "reference": item.reference,
                "status": BatchItemStatus.PENDING,
            }
        )
        for index, item in enumerate(items)
    )
    write = WriteStatement()
    event = _batch_event(batch=batch, action="batch.created", actor_id=actor.pk, now=now)
    add_events(write, events=[event])
    complete_idempotency_key(write, idempotency=idempotency, result=batch)
    write.execute()
    enqueue_after_commit(START_BATCH_TASK, batch_id=str(batch.pk))
    return batch


def _lock_batch(batch_id: uuid.UUID | str) -> TransferBatch:
    try:
        return TransferBatch.objects.select_for_update().get(pk=batch_id)
    except (TransferBatch.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFoundError("No such batch.") from None


def _unfinished(batch: TransferBatch) -> bool:
    return batch.status in (BatchStatus.PENDING, BatchStatus.PROCESSING)


@transaction.atomic(durable=True)
def _mark_processing(*, batch_id: uuid.UUID | str) -> TransferBatch:
    """`pending` -> `processing` (with its event); returns the batch as it now is."""
    batch = _lock_batch(batch_id)
    if batch.status == BatchStatus.PENDING:
        batch.status = BatchStatus.PROCESSING
        now = database_now()
        TransferBatch.objects.filter(pk=batch.pk).update(status=batch.status, updated_at=now)
        write = WriteStatement()
        add_events(
            write,
            events=[_batch_event(batch=batch, action="batch.started", actor_id=None, now=now)],
        )
        write.execute()
    return batch


def start_batch(*, batch_id: uuid.UUID | str) -> TransferBatch:
    """Start (or resume) a batch: apply an atomic one, fan the others out into chunks.

    Idempotent: a finished batch is left alone; for a chunked one, only chunks that still
    have pending items are queued, and each chunk skips items already done.
    """
    batch = _mark_processing(batch_id=batch_id)
    if not _unfinished(batch):
        return batch
    if batch.atomic:
        return apply_atomic_batch(batch_id=batch.pk)
    for start in _pending_chunk_starts(batch.pk):
        enqueue(
            PROCESS_BATCH_CHUNK_TASK,
            batch_id=str(batch.pk),
            start=start,
            stop=min(start + CHUNK_SIZE, batch.total),
        )
    return batch


def _pending_chunk_starts(batch_id: uuid.UUID | str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT (index / %s::integer) * %s::integer FROM transfer_batch_items "
            "WHERE batch_id = %s::uuid AND status = 'pending' ORDER BY 1",
            [CHUNK_SIZE, CHUNK_SIZE, batch_id],
        )
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------- applying items


class _Item(NamedTuple):
    """A pending item as read for applying (the columns of `_ITEMS_SQL`)."""

    # mypy refuses a field named like a tuple method; it shadows tuple.index, unused here.
    index: int  # type: ignore[assignment]
    from_user_id: int
    to_user_id: int
    amount: Decimal
    currency: str
    description: str
    reference: str | None


_ITEMS_SQL = """
SELECT index, from_user_id, to_user_id, amount, currency, description, reference
FROM transfer_batch_items
WHERE batch_id = %s::uuid AND index >= %s AND index < %s AND status = 'pending'
ORDER BY index
"""


def _read_items(*, batch_id: uuid.UUID | str, start: int, stop: int, lock: bool) -> list[_Item]:
    """The pending items `start <= index < stop`, in index order (locked if `lock`)."""
    with connection.cursor() as cursor:
        cursor.execute(_ITEMS_SQL + (" FOR UPDATE" if lock else ""), [batch_id, start, stop])
        names = [column.name for column in cursor.description]
        return [_Item(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def _lock_parties(items: list[_Item]) -> tuple[set[int], LockedSet]:
    """The ids of the items' parties that exist, and every balance they touch, locked.

    One `lock_balances` call: primary-key order, like every money path, so two batches (or
    a batch and a transfer) touching the same accounts cannot deadlock. Recipients' rows
    are created on first use.
    """
    ids = {i.from_user_id for i in items} | {i.to_user_id for i in items}
    users = set(User.objects.filter(pk__in=ids).values_list("pk", flat=True))
    known = [i for i in items if i.from_user_id in users and i.to_user_id in users]
    locked = lock_balances(
        keys=[(i.from_user_id, i.currency) for i in known]
        + [(i.to_user_id, i.currency) for i in known],
        create_missing=[(i.to_user_id, i.currency) for i in known],
        columns=LIMIT_COLUMNS,
    )
    return users, locked


@dataclass
class _Refusal:
    code: str
    message: str


def _check_items(
    items: list[_Item], known_users: set[int], locked: LockedSet, *, owner_id: int
) -> dict[int, _Refusal]:
    """Run the items in index order against the locked amounts; return the refused ones.

    A refused item is not applied, so the later items are checked as if it were absent;
    every refusal found is reported, not only the first. Keys are item indexes. Limits
    apply as to single transfers: to items the owner sends from their own account.
    """
    running = {key: balance.amount for key, balance in locked.balances.items()}
    limits = LimitCheck(locked)
    refused: dict[int, _Refusal] = {}
    for item in items:
        from_id, to_id, amount, currency = (
            item.from_user_id,
            item.to_user_id,
            item.amount,
            item.currency,
        )
        refusal, limited = None, False
        parties = [locked.balances.get((from_id, currency)), locked.balances.get((to_id, currency))]
        if to_id not in known_users:
            refusal = _Refusal("not_found", "The recipient does not exist.")
        elif from_id not in known_users:
            refusal = _Refusal("not_found", "The sender does not exist.")
        elif from_id == to_id:
            refusal = _Refusal("same_account", "Sender and recipient must be different.")
        elif any(b is not None and not b.is_active for b in parties):
            refusal = _Refusal("account_inactive", "An account of this transfer is inactive.")
        elif limited := is_limited(
            kind=TransactionType.TRANSFER, from_user_id=from_id, initiated_by_id=owner_id
        ):
            try:
                limits.check(sender_id=from_id, currency=currency, amount=amount, count=False)
            except LimitExceededError as exceeded:
                refusal = _Refusal(exceeded.code, exceeded.message)
        if refusal is None and running.get((from_id, currency), Decimal(0)) < amount:
            refusal = _Refusal(
                "insufficient_funds",
                f"The balance is too low for this transfer "
                f"({format_amount(running.get((from_id, currency), Decimal(0)), currency)} "
                f"{currency} available).",
            )
        if refusal is not None:
            refused[item.index] = refusal
            continue
        if limited:
            limits.count(sender_id=from_id, currency=currency, amount=amount)
        running[(from_id, currency)] -= amount
        running[(to_id, currency)] = running.get((to_id, currency), Decimal(0)) + amount
    return refused


def _write_transfers(
    *, batch: TransferBatch, items: list[_Item], locked: LockedSet
) -> list[Transaction]:
    """Write `items` (checked already) as completed transfers, set-based, in this transaction.

    Inserts the transactions, the audit events (each balance's `balance:<id>` chain
    continued from the head read under its lock, in item order, then each transaction's
    `transaction.completed`), the balance entries, then updates the balances' amounts
    and chain heads. The inserts use COPY fed by generators, so the database inserts
    rows while the next ones are computed here; foreign keys are checked at commit.
    """
    now = locked.now
    owner_id = batch.owner_id
    # Amounts are formatted (events) while rows stream and the connection is busy: read the
    # currencies' exponents now, into the cache they are then served from.
    for currency in {item.currency for item in items}:
        exponent_of(currency)
    # Random ids, inserted in ascending order: each index on them grows at one place.
    ids = sorted(uuid.uuid4() for _ in items)
    txns: list[Transaction] = []

    def transaction_rows() -> Iterator[tuple]:
        for item, txn_id in zip(items, ids, strict=True):
            txn = Transaction(
                id=txn_id,
                type=TransactionType.TRANSFER,
                status=TransactionStatus.COMPLETED,
                from_user_id=item.from_user_id,
                to_user_id=item.to_user_id,
                amount=item.amount,
                currency_id=item.currency,
                description=item.description or "",
                reference=item.reference,
                initiated_by_id=owner_id,
                created_at=now,
                completed_at=now,
            )
            txns.append(txn)
            yield TRANSACTION_COLUMNS.row(txn)

    TRANSACTION_COLUMNS.copy(transaction_rows())
    # Legs grouped by balance, each balance's in item order: its chain and amounts are
    # exactly those of posting in item order, and its events are written side by side.
    # (Every leg of a transfer is an account's, never the world's: its user id is set.)
    legs = [leg for txn in txns for leg in legs_for(txn)]
    legs.sort(key=lambda leg: locked.balances[(cast(int, leg.user_id), leg.currency)].id)
    posted = PostingResult()
    entries = iter_postings(locked=locked, postings=legs, actor_id=owner_id, now=now, result=posted)

    def events() -> Iterator[PendingEvent]:
        written = 0
        for entry in entries:
            posted.entry_rows.append(entry)
            yield from posted.events[written:]
            written = len(posted.events)
        for txn in txns:
            yield transaction_event(
                txn=txn, action="transaction.completed", actor_id=owner_id, now=now
            )

    copy_events(events=events())
    ENTRY_COLUMNS.copy(posted.entry_rows, created_at=now)
    write = WriteStatement()
    add_balance_updates(write, result=posted, now=now)
    write.execute()
    return txns


def _apply_items(
    *, batch: TransferBatch, items: list[_Item], refused: dict[int, _Refusal], locked: LockedSet
) -> None:
    """Apply the pending `items` that were not refused and record every item's outcome.

    The one write path of both kinds of batch: the transfers (`_write_transfers`), then
    the outcomes and the batch counters (`_record_outcomes`), all in the caller's
    transaction, which holds the items (or the batch) and the balances locked.
    """
    accepted = [item for item in items if item.index not in refused]
    txns = _write_transfers(batch=batch, items=accepted, locked=locked) if accepted else []
    outcomes: list[tuple] = [
        (item.index, BatchItemStatus.COMPLETED, txn.pk, None, None)
        for item, txn in zip(accepted, txns, strict=True)
    ]
    outcomes += [
        (item.index, BatchItemStatus.FAILED, None, r.code, r.message[:500])
        for item in items
        if (r := refused.get(item.index)) is not None
    ]
    _record_outcomes(batch=batch, outcomes=outcomes)
    schedule_after_commit(txns)


# ---------------------------------------------------------------- atomic batches

_FAIL_SQL = """
UPDATE transfer_batch_items i
SET status = 'failed', error_code = coalesce(v.code, %s), error_message = coalesce(v.message, %s)
FROM transfer_batch_items a
LEFT JOIN unnest(%s::integer[], %s::varchar[], %s::varchar[]) AS v(idx, code, message)
       ON v.idx = a.index
WHERE a.batch_id = %s::uuid AND i.id = a.id
"""


def _fail_atomic(
    *, batch: TransferBatch, refused: dict[int, _Refusal], now: datetime
) -> tuple[WriteStatement, list[PendingEvent]]:
    write = WriteStatement()
    ordered = sorted(refused.items())
    first = ordered[0][0]
    write.add(
        _FAIL_SQL,
        [
            ABORTED,
            f"Not applied: item {first} of this atomic batch was refused ({refused[first].code}).",
            [index for index, _ in ordered],
            [r.code for _, r in ordered],
            [r.message[:500] for _, r in ordered],
            batch.pk,
        ],
    )
    batch.status = BatchStatus.FAILED
    batch.processed = batch.failed = batch.total
    batch.succeeded = 0
    event = _batch_event(
        batch=batch,
        action="batch.failed",
        actor_id=None,
        now=now,
        extra={"refused": {str(i): r.code for i, r in sorted(refused.items())[:100]}},
    )
    return write, [event]


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def apply_atomic_batch(*, batch_id: uuid.UUID | str) -> TransferBatch:
    """Apply every item of an atomic batch in this one transaction, or none of them.

    Locks the batch row, then every balance the items touch, once, in primary-key order
    (`lock_balances`); recipients' rows are created on first use. Refusals (unknown or
    inactive account, same account, insufficient funds) fail the whole batch, recorded
    per item; nothing moves then. A finished batch is returned unchanged.
    """
    batch = _lock_batch(batch_id)
    if not _unfinished(batch):
        return batch
    items = _read_items(batch_id=batch.pk, start=0, stop=batch.total, lock=False)
    users, locked = _lock_parties(items)
    refused = _check_items(items, users, locked, owner_id=batch.owner_id)
    if refused:
        write, events = _fail_atomic(batch=batch, refused=refused, now=locked.now)
        _finish_batch_row(write, batch=batch, now=locked.now)
        add_events(write, events=events)
        with _planned_for_actual_sizes():
            write.execute()
        return batch
    _apply_items(batch=batch, items=items, refused={}, locked=locked)
    return batch


def _finish_batch_row(write: WriteStatement, *, batch: TransferBatch, now: datetime) -> None:
    batch.completed_at = batch.updated_at = now
    write.add(
        "UPDATE transfer_batches SET status = %s, processed = %s, succeeded = %s, failed = %s, "
        "completed_at = %s, updated_at = %s WHERE id = %s::uuid",
        [batch.status, batch.processed, batch.succeeded, batch.failed, now, now, batch.pk],
    )


# ---------------------------------------------------------------- chunked batches

# Outcomes are keyed by (batch, index), the unique index, and passed as arrays: planned
# with their actual sizes (see `_planned_for_actual_sizes`), the join is a hash join or an
# index lookup per item, whatever the statistics say about the items table.
_RECORD_SQL = """
WITH item AS (
    UPDATE transfer_batch_items i
    SET status = v.status, transaction_id = v.txn, error_code = v.code, error_message = v.message
    FROM unnest(%s::integer[], %s::varchar[], %s::uuid[], %s::varchar[], %s::varchar[])
         AS v(idx, status, txn, code, message)
    WHERE i.batch_id = %s::uuid AND i.index = v.idx AND i.status = 'pending'
    RETURNING i.status
), counted AS (
    SELECT count(*)::integer AS n,
           count(*) FILTER (WHERE status = 'completed')::integer AS ok
    FROM item
)
UPDATE transfer_batches b
SET processed = b.processed + c.n,
    succeeded = b.succeeded + c.ok,
    failed = b.failed + (c.n - c.ok),
    status = CASE WHEN b.processed + c.n = b.total THEN 'completed' ELSE b.status END,
    completed_at = CASE WHEN b.processed + c.n = b.total THEN clock_timestamp()
                        ELSE b.completed_at END,
    updated_at = clock_timestamp()
FROM counted c
WHERE b.id = %s::uuid
RETURNING c.n, b.status, b.processed, b.total
"""


def _record_outcomes(*, batch: TransferBatch, outcomes: list[tuple]) -> None:
    """Write the items' outcomes and count them, in one statement, only items still pending.

    `outcomes` are (index, status, transaction id, error code, error message). Runs in the
    caller's transaction (the one that moved the money), so an outcome is recorded exactly
    when its transfer commits. The statement locks the batch row; the one call that counts
    the last item writes `batch.completed` under that lock.
    """
    columns = [list(column) for column in zip(*outcomes, strict=True)]
    with _planned_for_actual_sizes(), connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL, [*columns, batch.pk, batch.pk])
        counted, status, processed, total = cursor.fetchone()
    if counted and processed == total and status == BatchStatus.COMPLETED:
        batch.refresh_from_db()
        write = WriteStatement()
        add_events(
            write,
            events=[
                _batch_event(
                    batch=batch,
                    action="batch.completed",
                    actor_id=None,
                    now=cast(datetime, batch.completed_at),  # set when the last item counts
                )
            ],
        )
        write.execute()


@contextmanager
def _planned_for_actual_sizes() -> Iterator[None]:
    """Plan the statements inside for their actual parameters, never generically.

    A batch's statements carry thousands of rows in array parameters; planned with the
    arrays' real lengths they join by hash or by index. A generic plan (the driver
    prepares statements it runs often) would assume a handful of rows and may join them
    by nested loop. Only around those statements: the foreign-key checks run at commit on
    plans prepared once, which must stay generic to be cheap.
    """
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode TO DEFAULT")


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def _run_chunk(*, batch: TransferBatch, start: int, stop: int) -> int:
    """Apply the pending items of one chunk in one database transaction; returns how many.

    Locks the chunk's pending item rows, then every balance they touch, once, in
    primary-key order. Items are checked in index order against the locked amounts; a
    refused item is recorded `failed` with its code and affects only itself.
    """
    items = _read_items(batch_id=batch.pk, start=start, stop=stop, lock=True)
    if not items:
        return 0
    users, locked = _lock_parties(items)
    refused = _check_items(items, users, locked, owner_id=batch.owner_id)
    _apply_items(batch=batch, items=items, refused=refused, locked=locked)
    return len(items)


def process_batch_chunk(*, batch_id: uuid.UUID | str, start: int, stop: int) -> int:
    """Apply the pending items `start <= index < stop` of a chunked batch; returns how many.

    One database transaction for the chunk (see `_run_chunk`). Exactly once per item: the
    item rows are locked and only those still `pending` are applied, in the transaction
    that records their outcome, so a redelivered or duplicated chunk finds them finished.
    The advisory lock `batch:<id>:<start>` makes a duplicate running at the same time skip
    at once instead of waiting on the item locks.
    """
    with worker_exclusive(name=f"batch:{batch_id}:{start}") as acquired:
        if not acquired:
            return 0
        batch = TransferBatch.objects.filter(pk=batch_id).first()
        if batch is None or not _unfinished(batch):
            return 0
        return _run_chunk(batch=batch, start=start, stop=stop)


def resume_stalled_batches(*, older_than: timedelta) -> int:
    """Start again every unfinished batch with no progress for `older_than`; returns the count."""
    cutoff = timezone.now() - older_than
    ids = list(
        TransferBatch.objects.filter(
            status__in=[BatchStatus.PENDING, BatchStatus.PROCESSING], updated_at__lt=cutoff
        )
        .order_by("updated_at")
        .values_list("id", flat=True)[:100]
    )
    for batch_id in ids:
        enqueue(START_BATCH_TASK, batch_id=str(batch_id))
    return len(ids)

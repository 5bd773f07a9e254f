"""Batch transfers: up to 10,000 transfers in one request, processed by the worker pool.

`create_batch` records the batch and its items and queues `start_batch` after commit.

An *atomic* batch is applied by `apply_atomic_batch` in ONE database transaction: every
balance it touches is locked once (one `lock_balances` call, primary-key order), the
items are checked in memory in index order against the locked amounts, and everything is
written with set-based statements (one `plan_postings` over all postings, one insert of
all transactions, one audit insert). If any item is refused, nothing moves: the refused
items carry their own error, the others `batch_aborted`, and the batch ends `failed` with
`succeeded = 0`. Atomic items get no per-item idempotency key: the batch row, locked and
checked for `pending`/`processing` first, makes a second run a no-op.

Other batches are cut into chunks of CHUNK_SIZE items, each a `process_batch_chunk`
task, so several workers share the work. A chunk runs its items in groups of GROUP_SIZE,
one database transaction per group: the group's balances are locked once, in key order,
then every item runs through the same body as a single `transfer` (its checks, limits,
audit events) in its own savepoint, with the idempotency key `batch:<id>:<index>` scoped
to the batch owner; a refused item rolls back to its savepoint and only itself. The
items' outcomes and the batch counters are written in the same transaction as the money,
only for items still pending, so a redelivered chunk counts and pays nothing twice. The
batch is `completed` when the last item is counted.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import PendingEvent, add_events, chain_head
from balances.locks import LockedSet, lock_balances
from balances.services import plan_postings
from transactions import stats
from transactions.idempotency import (
    IdempotencyRequest,
    IdempotentReplay,
    claim_idempotency_key,
    complete_idempotency_key,
    fingerprint,
)
from transactions.models import (
    BatchItemStatus,
    BatchStatus,
    TransactionType,
    TransferBatch,
    TransferBatchItem,
)
from transactions.money import format_amount
from transactions.services.movements import (
    add_transaction_inserts,
    legs_for,
    new_transaction,
    schedule_after_commit,
    transaction_event,
    transfer_in_transaction,
)
from transactions.services.pending import database_now, enqueue_after_commit, worker_exclusive
from transactions.tasks import process_batch_chunk as process_batch_chunk_task
from transactions.tasks import start_batch as start_batch_task
from wallet_project.db import StatementBatch, retry_on_lock_conflict, rows_source
from wallet_project.errors import (
    NotFoundError,
    PermissionDeniedError,
    ValidationFailedError,
    WalletError,
)

logger = logging.getLogger("wallet.batches")

MAX_ITEMS = 10_000
CHUNK_SIZE = 250  # one task: about a second of work, so progress stays fresh
GROUP_SIZE = 5  # items per transaction: few accounts held at once, so workers seldom wait
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


_ITEM_INSERT = (
    "(batch_id, index, from_user_id, to_user_id, amount, currency, description, reference, "
    "status) SELECT %s::uuid, v.*, 'pending'"
)
_ITEM_COLUMNS = [
    ("idx", "integer"),
    ("from_user_id", "bigint"),
    ("to_user_id", "bigint"),
    ("amount", "numeric"),
    ("currency", "varchar"),
    ("description", "varchar"),
    ("reference", "varchar"),
]


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

    Inserts the batch, its items (one statement) and a `batch.created` event, stores the
    idempotency response, and queues `start_batch` after commit. Locks nothing. Raises
    ValidationFailedError (no items, more than MAX_ITEMS), PermissionDeniedError (a
    non-admin naming another sender), IdempotencyKeyReusedError; IdempotentReplay.
    """
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
    statements = StatementBatch()
    source, params = rows_source(
        "v",
        _ITEM_COLUMNS,
        [
            (
                index,
                item.from_user_id or actor.pk,
                item.to_user_id,
                item.amount,
                item.currency,
                item.description or "",
                item.reference,
            )
            for index, item in enumerate(items)
        ],
    )
    statements.add(
        f"INSERT INTO transfer_batch_items {_ITEM_INSERT} FROM {source}",
        [batch.pk, *params],
    )
    event = _batch_event(batch=batch, action="batch.created", actor_id=actor.pk, now=now)
    add_events(statements, events=[event])
    complete_idempotency_key(statements, idempotency=idempotency, result=batch)
    statements.execute()
    enqueue_after_commit(start_batch_task, batch_id=str(batch.pk))
    return batch


def _lock_batch(batch_id: object) -> TransferBatch:
    try:
        return TransferBatch.objects.select_for_update().get(pk=batch_id)
    except (TransferBatch.DoesNotExist, ValueError, TypeError, DjangoValidationError):
        raise NotFoundError("No such batch.") from None


def _unfinished(batch: TransferBatch) -> bool:
    return batch.status in (BatchStatus.PENDING, BatchStatus.PROCESSING)


@transaction.atomic(durable=True)
def _mark_processing(*, batch_id: object) -> TransferBatch:
    """`pending` -> `processing` (with its event); returns the batch as it now is."""
    batch = _lock_batch(batch_id)
    if batch.status == BatchStatus.PENDING:
        batch.status = BatchStatus.PROCESSING
        now = database_now()
        TransferBatch.objects.filter(pk=batch.pk).update(status=batch.status, updated_at=now)
        statements = StatementBatch()
        add_events(
            statements,
            events=[_batch_event(batch=batch, action="batch.started", actor_id=None, now=now)],
        )
        statements.execute()
    return batch


def start_batch(*, batch_id: object) -> TransferBatch:
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
        process_batch_chunk_task.delay(
            batch_id=str(batch.pk), start=start, stop=min(start + CHUNK_SIZE, batch.total)
        )
    return batch


def _pending_chunk_starts(batch_id: object) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT (index / %s::integer) * %s::integer FROM transfer_batch_items "
            "WHERE batch_id = %s::uuid AND status = 'pending' ORDER BY 1",
            [CHUNK_SIZE, CHUNK_SIZE, batch_id],
        )
        return [row[0] for row in cursor.fetchall()]


# ---------------------------------------------------------------- atomic batches


@dataclass
class _Refusal:
    code: str
    message: str


def _check_items(
    items: list[tuple], known_users: set[int], locked: LockedSet
) -> dict[int, _Refusal]:
    """Run the items in index order against the locked amounts; return the refused ones.

    A refused item is not applied, so the later items are checked as if it were absent;
    every refusal found is reported, not only the first.
    """
    running = {key: balance.amount for key, balance in locked.balances.items()}
    refused: dict[int, _Refusal] = {}
    for index, from_id, to_id, amount, currency, *_ in items:
        refusal = None
        parties = [locked.balances.get((from_id, currency)), locked.balances.get((to_id, currency))]
        if to_id not in known_users:
            refusal = _Refusal("not_found", "The recipient does not exist.")
        elif from_id not in known_users:
            refusal = _Refusal("not_found", "The sender does not exist.")
        elif from_id == to_id:
            refusal = _Refusal("same_account", "Sender and recipient must be different.")
        elif any(b is not None and not b.is_active for b in parties):
            refusal = _Refusal("account_inactive", "An account of this transfer is inactive.")
        elif running.get((from_id, currency), Decimal(0)) < amount:
            refusal = _Refusal(
                "insufficient_funds",
                f"The balance is too low for this transfer "
                f"({format_amount(running.get((from_id, currency), Decimal(0)), currency)} "
                f"{currency} available).",
            )
        if refusal is not None:
            refused[index] = refusal
            continue
        running[(from_id, currency)] -= amount
        running[(to_id, currency)] = running.get((to_id, currency), Decimal(0)) + amount
    return refused


_FAILED_SET = (
    "status = 'failed', error_code = coalesce(v.code, %s), error_message = coalesce(v.message, %s)"
)


def _fail_atomic(
    *, batch: TransferBatch, refused: dict[int, _Refusal], now: datetime
) -> tuple[StatementBatch, list[PendingEvent]]:
    statements = StatementBatch()
    source, params = rows_source(
        "v",
        [("idx", "integer"), ("code", "varchar"), ("message", "varchar")],
        [(index, r.code, r.message[:500]) for index, r in sorted(refused.items())],
    )
    first = min(refused)
    statements.add(
        f"UPDATE transfer_batch_items i SET {_FAILED_SET} FROM transfer_batch_items a "  # noqa: S608
        f"LEFT JOIN {source} ON v.idx = a.index WHERE a.id = i.id AND i.batch_id = %s::uuid",
        [
            ABORTED,
            f"Not applied: item {first} of this atomic batch was refused ({refused[first].code}).",
            *params,
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
    return statements, [event]


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def apply_atomic_batch(*, batch_id: object) -> TransferBatch:
    """Apply every item of an atomic batch in this one transaction, or none of them.

    Locks the batch row, then every balance the items touch, once, in primary-key order
    (`lock_balances`); recipients' rows are created on first use. Refusals (unknown or
    inactive account, same account, insufficient funds) fail the whole batch, recorded
    per item; nothing moves then. A finished batch is returned unchanged.
    """
    batch = _lock_batch(batch_id)
    if not _unfinished(batch):
        return batch
    items = list(
        TransferBatchItem.objects.filter(batch_id=batch.pk)
        .order_by("index")
        .values_list(
            "index",
            "from_user_id",
            "to_user_id",
            "amount",
            "currency",
            "description",
            "reference",
        )
    )
    user_ids = {i[1] for i in items} | {i[2] for i in items}
    users = set(User.objects.filter(pk__in=user_ids).values_list("pk", flat=True))
    known = [i for i in items if i[1] in users and i[2] in users]
    locked = lock_balances(
        keys=[(i[1], i[4]) for i in known] + [(i[2], i[4]) for i in known],
        create_missing=[(i[2], i[4]) for i in known],
    )
    now = locked.now
    refused = _check_items(items, users, locked)
    if refused:
        statements, events = _fail_atomic(batch=batch, refused=refused, now=now)
        _finish_batch_row(statements, batch=batch, now=now)
        add_events(statements, events=events)
        statements.execute()
        return batch
    txns = [
        new_transaction(
            kind=TransactionType.TRANSFER,
            actor=batch.owner,
            from_user_id=from_id,
            to_user_id=to_id,
            amount=amount,
            currency=currency,
            description=description,
            reference=reference,
            now=now,
        )
        for _, from_id, to_id, amount, currency, description, reference in items
    ]
    batch.status = BatchStatus.COMPLETED
    batch.processed = batch.succeeded = batch.total
    finished = _batch_event(batch=batch, action="batch.completed", actor_id=None, now=now)
    # Pipeline mode: each statement is sent at once and runs on the server while the next
    # one is computed here, so the database and this process work at the same time. The
    # foreign keys are checked as each statement ends (not all at commit), in that overlap;
    # every statement only references rows written by the ones before it.
    with connection.connection.pipeline():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        rows = StatementBatch()
        add_transaction_inserts(rows, txns=txns)
        _complete_items(rows, batch=batch, indexes=[i[0] for i in items], txns=txns)
        rows.execute()
        postings, result = plan_postings(
            locked=locked,
            postings=[leg for txn in txns for leg in legs_for(txn)],
            actor_id=batch.owner_id,
            now=now,
        )
        add_events(postings, events=result.events)
        postings.execute()
        events = StatementBatch()
        add_events(
            events,
            events=[
                *(
                    transaction_event(
                        txn=txn, action="transaction.completed", actor_id=batch.owner_id, now=now
                    )
                    for txn in txns
                ),
                finished,
            ],
        )
        _finish_batch_row(events, batch=batch, now=now)
        events.execute()
    schedule_after_commit(txns)
    return batch


def _complete_items(
    statements: StatementBatch, *, batch: TransferBatch, indexes: list[int], txns: list
) -> None:
    source, params = rows_source(
        "v",
        [("idx", "integer"), ("txn", "uuid")],
        [(index, txn.pk) for index, txn in zip(indexes, txns, strict=True)],
    )
    statements.add(
        f"UPDATE transfer_batch_items i SET status = 'completed', transaction_id = v.txn FROM {source} "  # noqa: S608
        "WHERE i.batch_id = %s::uuid AND i.index = v.idx",
        [*params, batch.pk],
    )


def _finish_batch_row(statements: StatementBatch, *, batch: TransferBatch, now: datetime) -> None:
    batch.completed_at = batch.updated_at = now
    statements.add(
        "UPDATE transfer_batches SET status = %s, processed = %s, succeeded = %s, failed = %s, "
        "completed_at = %s, updated_at = %s WHERE id = %s::uuid",
        [batch.status, batch.processed, batch.succeeded, batch.failed, now, now, batch.pk],
    )


# ---------------------------------------------------------------- chunked batches

_RECORD_SQL = """
WITH item AS (
    UPDATE transfer_batch_items i
    SET status = v.status, transaction_id = v.txn, error_code = v.code, error_message = v.message
    FROM {source}
    WHERE i.id = v.id AND i.id = ANY(%s::bigint[]) AND i.status = 'pending'
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
_OUTCOME_COLUMNS = [
    ("id", "bigint"),
    ("status", "varchar"),
    ("txn", "uuid"),
    ("code", "varchar"),
    ("message", "varchar"),
]


def _record_outcomes(*, batch: TransferBatch, outcomes: list[tuple]) -> None:
    """Write the items' outcomes and count them, in one statement, only items still pending.

    Runs in the caller's transaction (the one that moved the money), so an outcome is
    recorded exactly when its transfer commits. The statement locks the batch row; the
    one call that counts the last item writes `batch.completed` under that lock.
    """
    source, params = rows_source("v", _OUTCOME_COLUMNS, outcomes)
    with connection.cursor() as cursor:
        cursor.execute(
            _RECORD_SQL.format(source=source),
            [*params, [row[0] for row in outcomes], batch.pk],
        )
        counted, status, processed, total = cursor.fetchone()
    if counted and processed == total and status == BatchStatus.COMPLETED:
        batch.refresh_from_db()
        statements = StatementBatch()
        add_events(
            statements,
            events=[
                _batch_event(
                    batch=batch, action="batch.completed", actor_id=None, now=batch.completed_at
                )
            ],
        )
        statements.execute()


def _item_response(txn) -> tuple[int, dict]:
    return 201, {"id": str(txn.pk), "status": txn.status}


def item_idempotency(*, batch: TransferBatch, item: TransferBatchItem) -> IdempotencyRequest:
    """The deterministic key of a chunked item, `batch:<id>:<index>`, scoped to the owner."""
    key = f"batch:{batch.pk}:{item.index}"
    return IdempotencyRequest(
        user_id=batch.owner_id,
        key=key,
        fingerprint=fingerprint(method="BATCH", path=key, body={"item": item.pk}),
        render=_item_response,
    )


def _run_item(*, batch: TransferBatch, item: TransferBatchItem, users: dict[int, User]) -> tuple:
    """One item as a normal transfer, in its own savepoint; returns its outcome row."""
    sender, recipient = users.get(item.from_user_id), users.get(item.to_user_id)
    try:
        if recipient is None:
            raise NotFoundError("The recipient does not exist.")
        if sender is None:
            raise NotFoundError("The sender does not exist.")
        with transaction.atomic():  # a refused item rolls back to here, and only itself
            txn = transfer_in_transaction(
                actor=batch.owner,
                sender=sender,
                recipient=recipient,
                amount=item.amount,
                currency=item.currency,
                description=item.description,
                reference=item.reference,
                idempotency=item_idempotency(batch=batch, item=item),
            )
        return (item.pk, BatchItemStatus.COMPLETED, txn.pk, None, None)
    except IdempotentReplay as replay:  # applied earlier under this item's key
        return (item.pk, BatchItemStatus.COMPLETED, replay.transaction_id, None, None)
    except WalletError as refusal:
        if refusal.http_status >= 500:  # transient: the whole group is retried
            raise
        return (item.pk, BatchItemStatus.FAILED, None, refusal.code, refusal.message[:500])


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def _run_group(*, batch: TransferBatch, item_ids: list[int], users: dict[int, User]) -> int:
    """Run a group of items in one database transaction, each item in its own savepoint.

    Every balance the group touches is locked first, once, in primary-key order, so the
    items never wait on each other and two groups cannot deadlock; the items then take
    the same path as a single `transfer` (checks, limits, idempotency key, audit), and
    their outcomes and the batch counters are written before the one commit.
    """
    items = list(
        TransferBatchItem.objects.filter(pk__in=item_ids, status=BatchItemStatus.PENDING)
        .select_for_update()
        .order_by("index")
    )
    if not items:
        return 0
    parties = [i for i in items if i.from_user_id in users and i.to_user_id in users]
    lock_balances(
        keys=[(i.from_user_id, i.currency) for i in parties]
        + [(i.to_user_id, i.currency) for i in parties],
        create_missing=[(i.to_user_id, i.currency) for i in parties],
    )
    outcomes = [_run_item(batch=batch, item=item, users=users) for item in items]
    _record_outcomes(batch=batch, outcomes=outcomes)
    return len(items)


def process_batch_chunk(*, batch_id: object, start: int, stop: int) -> int:
    """Run the pending items `start <= index < stop` of a chunked batch; returns how many.

    Holds the advisory lock `batch:<id>:<start>` while it works, so a duplicate message
    skips. Items run in groups of GROUP_SIZE, one database transaction per group (see
    `_run_group`); a redelivered chunk finds finished items no longer pending.
    """
    with worker_exclusive(name=f"batch:{batch_id}:{start}") as acquired:
        if not acquired:
            return 0
        batch = TransferBatch.objects.select_related("owner").filter(pk=batch_id).first()
        if batch is None or not _unfinished(batch):
            return 0
        pending = list(
            TransferBatchItem.objects.filter(
                batch_id=batch.pk,
                index__gte=start,
                index__lt=stop,
                status=BatchItemStatus.PENDING,
            )
            .order_by("index")
            .values_list("pk", "from_user_id", "to_user_id")
        )
        ids = {row[1] for row in pending} | {row[2] for row in pending}
        users = {u.pk: u for u in User.objects.filter(pk__in=ids)}
        done = 0
        with stats.coalesced():  # one counter update per chunk, not one per item
            for first in range(0, len(pending), GROUP_SIZE):
                group = [row[0] for row in pending[first : first + GROUP_SIZE]]
                done += _run_group(batch=batch, item_ids=group, users=users)
        return done


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
        start_batch_task.delay(batch_id=str(batch_id))
    return len(ids)

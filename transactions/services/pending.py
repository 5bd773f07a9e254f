"""Asynchronous movements: a `pending` transaction now, completed or failed by a worker.

`create_pending` records the request (the transaction row in `pending`, its
`transaction.created` event) and queues it after commit; it locks no balance. The worker
runs `process_pending_transaction`, which locks the transaction row first (the global
order: transaction rows, then balance rows), does nothing if the row is no longer
pending, and otherwise completes it exactly like a synchronous movement, or fails it with
the refusal's code as `failure_code`. A message delivered twice is therefore harmless.
"""

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.authorization import ensure_may_change
from accounts.models import User
from audit.services import add_events, chain_head
from transactions.idempotency import (
    IdempotencyRequest,
    claim_idempotency_key,
    complete_idempotency_key,
)
from transactions.locks import lock_transaction
from transactions.models import Transaction, TransactionStatus, TransactionType
from transactions.services.movements import (
    add_transaction_inserts,
    commit_movement,
    lock_parties,
    new_transaction,
    plan_movement,
    schedule_after_commit,
    set_status,
    transaction_event,
    transition,
)
from wallet_project.celery import enqueue
from wallet_project.db import retry_on_lock_conflict
from wallet_project.errors import (
    BusinessRuleError,
    InvalidStateError,
    SameAccountError,
    ValidationFailedError,
)
from wallet_project.statements import WriteStatement

logger = logging.getLogger("wallet.worker")

CANCELLED = "cancelled"  # failure_code of a pending transaction cancelled by an admin

PROCESS_PENDING_TASK = "transactions.process_pending_transaction"  # see transactions.tasks


def database_now() -> datetime:
    """The database clock, the one every ledger timestamp is taken from."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def enqueue_after_commit(task_name: str, **kwargs) -> None:
    """Publish the task `task_name` once the current transaction commits.

    `robust`: a broker outage must not turn a committed request into an error; the work
    stays recorded in the database and `resume_stalled_work` queues it again later.
    """

    def publish() -> None:
        enqueue(task_name, **kwargs)

    publish.__qualname__ = f"publish {task_name}"  # named in the log if the broker is down
    transaction.on_commit(publish, robust=True)


@contextmanager
def worker_exclusive(*, name: str) -> Iterator[bool]:
    """Yield True if this worker holds the session advisory lock `name`, else False.

    Used where a unit of work spans several money transactions (a batch chunk, a scheduled
    run): a duplicate message skips while the first is still running. The lock is released
    at the end, and by PostgreSQL if the worker dies with its connection.
    """
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::bigint)", [key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            # A broken connection has released the lock already.
            with suppress(OperationalError, InterfaceError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::bigint)", [key])


def _parties(
    *, kind: str, from_user: User | None, to_user: User | None
) -> tuple[int | None, int | None]:
    parties: dict[str, tuple[bool, bool]] = {
        TransactionType.CREDIT: (False, True),
        TransactionType.DEBIT: (True, False),
        TransactionType.TRANSFER: (True, True),
    }
    expected = parties.get(kind)
    if expected is None or expected != (from_user is not None, to_user is not None):
        raise ValidationFailedError(details={"type": [f"'{kind}' cannot be queued this way."]})
    if from_user is not None and to_user is not None and from_user.pk == to_user.pk:
        raise SameAccountError(details={"to_user_id": to_user.pk})
    return (from_user.pk if from_user else None, to_user.pk if to_user else None)


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def create_pending(
    *,
    actor: User,
    kind: str,
    from_user: User | None,
    to_user: User | None,
    amount: Decimal,
    currency: str,
    description: str = "",
    reference: str | None = None,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Record a `pending` credit, debit or transfer and queue it for the worker pool.

    Writes the transaction row, its `transaction.created` event (chain `txn:<id>`) and the
    idempotency response in one statement; locks no balance (funds are checked by the
    worker). Raises SameAccountError, ValidationFailedError (parties do not fit `kind`),
    IdempotencyKeyReusedError, PermissionDeniedError (an auditor); IdempotentReplay.
    """
    ensure_may_change(actor)
    from_user_id, to_user_id = _parties(kind=kind, from_user=from_user, to_user=to_user)
    claim_idempotency_key(idempotency=idempotency)
    now = database_now()
    txn = new_transaction(
        kind=kind,
        actor=actor,
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        amount=amount,
        currency=currency,
        description=description,
        reference=reference,
        status=TransactionStatus.PENDING,
        now=now,
    )
    write = WriteStatement()
    add_transaction_inserts(write, txns=[txn])
    created = transaction_event(txn=txn, action="transaction.created", actor_id=actor.pk, now=now)
    add_events(write, events=[created])
    complete_idempotency_key(write, idempotency=idempotency, result=txn)
    write.execute()
    schedule_after_commit([txn])
    enqueue_after_commit(PROCESS_PENDING_TASK, transaction_id=str(txn.pk))
    return txn


def _fail(
    *,
    txn: Transaction,
    code: str,
    message: str,
    actor_id: int | None,
    now: datetime,
    extra: dict | None = None,
) -> Transaction:
    """Fail a locked pending transaction with `code`, in the caller's transaction."""
    prev_hash = chain_head(chain=f"txn:{txn.pk}")
    write = WriteStatement()
    set_status(txn=txn, target=TransactionStatus.FAILED, write=write, now=now, failure_code=code)
    event = transaction_event(
        txn=txn,
        action="transaction.failed",
        actor_id=actor_id,
        now=now,
        prev_hash=prev_hash,
        extra={"error": {"code": code, "message": message}, **(extra or {})},
    )
    add_events(write, events=[event])
    write.execute()
    schedule_after_commit([txn])
    return txn


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def process_pending_transaction(*, transaction_id: uuid.UUID | str) -> Transaction:
    """Complete a pending transaction, or fail it with the refusal's code.

    Locks the transaction row, then the parties' balances in primary-key order. Does
    nothing if the transaction is no longer pending (a redelivered message). A refusal
    (insufficient_funds, account_inactive, ...) is an outcome, not an error: the row
    becomes `failed` with `failure_code`. Raises NotFoundError for an unknown id.
    """
    txn = lock_transaction(transaction_id=transaction_id)
    if txn.status != TransactionStatus.PENDING:
        return txn
    locked = lock_parties(
        from_user_id=txn.from_user_id, to_user_id=txn.to_user_id, currency=txn.currency_id
    )
    actor_id = txn.initiated_by_id
    try:
        write, result = plan_movement(locked=locked, txn=txn, actor_id=actor_id)
    except BusinessRuleError as refusal:
        return _fail(
            txn=txn,
            code=refusal.code,
            message=refusal.message,
            actor_id=actor_id,
            now=locked.now,
            extra={"error_details": refusal.details},
        )
    prev_hash = chain_head(chain=f"txn:{txn.pk}")
    set_status(txn=txn, target=TransactionStatus.COMPLETED, write=write, now=locked.now)
    completed = transaction_event(
        txn=txn,
        action="transaction.completed",
        actor_id=actor_id,
        now=locked.now,
        prev_hash=prev_hash,
    )
    commit_movement(write, events=[completed, *result.events], txns=[txn])
    return txn


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def cancel_pending_transaction(
    *, actor: User, transaction_id: uuid.UUID | str, reason: str
) -> Transaction:
    """Fail a pending transaction with `failure_code` "cancelled" before a worker runs it.

    Locks the transaction row. Raises NotFoundError, InvalidStateError (no longer pending).
    """
    txn = lock_transaction(transaction_id=transaction_id)
    transition(txn=txn, target=TransactionStatus.FAILED)
    return _fail(
        txn=txn,
        code=CANCELLED,
        message="Cancelled before processing.",
        actor_id=actor.pk,
        now=database_now(),
        extra={"reason": reason},
    )


@transaction.atomic(durable=True)
def requeue_pending_transaction(
    *, actor: User, transaction_id: uuid.UUID | str, reason: str = ""
) -> Transaction:
    """Queue a pending transaction again (its message was lost); records who asked.

    Locks the transaction row. Raises NotFoundError, InvalidStateError (not pending).
    Harmless if the first message is still queued: the second run finds it done.
    """
    txn = lock_transaction(transaction_id=transaction_id)
    if txn.status != TransactionStatus.PENDING:
        raise InvalidStateError(
            f"A {txn.status} transaction cannot be queued again.", details={"status": txn.status}
        )
    now = database_now()
    event = transaction_event(
        txn=txn,
        action="transaction.requeued",
        actor_id=actor.pk,
        now=now,
        prev_hash=chain_head(chain=f"txn:{txn.pk}"),
        extra={"reason": reason},
    )
    write = WriteStatement()
    add_events(write, events=[event])
    write.execute()
    enqueue_after_commit(PROCESS_PENDING_TASK, transaction_id=str(txn.pk))
    return txn


REQUEUE_LIMIT = 1000


def requeue_stale_pending(*, older_than: timedelta) -> int:
    """Queue again every transaction pending for longer than `older_than`; returns the count.

    Reads only; the worker re-checks each row under its lock, so a duplicate is harmless.
    """
    cutoff = timezone.now() - older_than
    ids = list(
        Transaction.objects.filter(status=TransactionStatus.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("id", flat=True)[:REQUEUE_LIMIT]
    )
    for transaction_id in ids:
        enqueue(PROCESS_PENDING_TASK, transaction_id=str(transaction_id))
    if ids:
        logger.warning("re-queued stale pending transactions", extra={"count": len(ids)})
    return len(ids)

"""Money movement: credit, debit, transfer, reverse.

Every public service owns one database transaction (`atomic(durable=True)`) wrapped in a
bounded retry on lock conflicts. Credit, debit and transfer (`_move`) make two round trips:
1. `BEGIN`, the idempotency key's claim (only when one is given) and one
   `SELECT ... FOR UPDATE` that locks every balance row involved in primary-key order and
   reads the database clock, pipelined (`lock_parties`),
2. one statement that updates the balances and inserts the transaction, the balance
   entries, the audit events and the idempotency response, sent with `COMMIT` in the
   same round trip (`WriteStatement.execute_and_commit`).
A reversal, and a pending transaction's completion (`pending.py`), read what they need
first (the transaction's row lock, its chain head), then lock, plan and write the same way
(`lock_parties`, `plan_movement`, `commit_movement`).
A balance row created on first use (a recipient's first payment in a currency) adds round
trips between the two: its insert, its `balance.opened` event and the lock again.
Decisions use only values read under the lock. Caches and counters are updated after commit.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import cast

from django.db import transaction

from accounts.authorization import ensure_may_change
from accounts.models import User
from audit.services import PendingEvent, add_events, chain_head
from balances.locks import LockedSet, lock_balances, lock_balances_after
from balances.services import Posting, PostingResult, plan_postings
from money.amounts import format_amount
from transactions.idempotency import (
    IdempotencyRequest,
    claim_idempotency_key,
    claim_statement,
    complete_idempotency_key,
    settle_claim,
)
from transactions.limits import LIMIT_COLUMNS, LimitCheck, is_limited
from transactions.locks import lock_transaction
from transactions.models import Transaction, TransactionStatus, TransactionType, can_transition
from wallet_project.db import retry_on_lock_conflict
from wallet_project.errors import (
    AccountInactiveError,
    ConflictError,
    InsufficientFundsError,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    SameAccountError,
)
from wallet_project.statements import ModelColumns, WriteStatement

_after_commit_hooks: list[Callable[[list[Transaction]], None]] = []


def on_movements_committed(hook: Callable[[list[Transaction]], None]) -> None:
    """Register work to run after a movement commits (counters, caches); never inside the lock."""
    _after_commit_hooks.append(hook)


def schedule_after_commit(txns: list[Transaction]) -> None:
    """Run the registered hooks with `txns` once the current transaction commits."""
    if _after_commit_hooks:
        transaction.on_commit(lambda: [hook(txns) for hook in _after_commit_hooks])


def transaction_details(txn: Transaction) -> dict:
    """What an event stores about a transaction: enough to rebuild it."""
    code = txn.currency_id
    return {
        "type": txn.type,
        "status": txn.status,
        "from_user_id": txn.from_user_id,
        "to_user_id": txn.to_user_id,
        "amount": format_amount(txn.amount, code),
        "currency": code,
        "description": txn.description,
        "reference": txn.reference,
        "reversal_of": str(txn.reversal_of_id) if txn.reversal_of_id else None,
        "failure_code": txn.failure_code,
        "created_at": txn.created_at.isoformat() if txn.created_at else None,
        "completed_at": txn.completed_at.isoformat() if txn.completed_at else None,
    }


def transaction_event(
    *,
    txn: Transaction,
    action: str,
    actor_id: int | None,
    now: datetime,
    prev_hash: str = "",
    extra: dict | None = None,
) -> PendingEvent:
    return PendingEvent(
        entity_type="transaction",
        entity_id=str(txn.pk),
        action=action,
        details={**transaction_details(txn), **(extra or {})},
        actor_id=actor_id,
        created_at=now,
        chain=f"txn:{txn.pk}",
        prev_hash=prev_hash,
    )


# A movement builds the whole row in memory: every column is written.
TRANSACTION_COLUMNS = ModelColumns(Transaction)


def add_transaction_inserts(write: WriteStatement, *, txns: list[Transaction]) -> None:
    """Insert transaction rows (built in memory) as one set-based statement of `write`."""
    write.add(*TRANSACTION_COLUMNS.insert([TRANSACTION_COLUMNS.row(t) for t in txns]))


def legs_for(txn: Transaction) -> list[Posting]:
    """The postings of a transaction: money leaves `from_user` (or the world), enters `to_user`."""
    tid = str(txn.pk)
    return [
        Posting(tid, txn.from_user_id, txn.currency_id, -txn.amount),
        Posting(tid, txn.to_user_id, txn.currency_id, txn.amount),
    ]


def ensure_active(*, locked: LockedSet, user_ids: list[int], currency: str) -> None:
    for user_id in user_ids:
        balance = locked.balances.get((user_id, currency))
        if balance is not None and not balance.is_active:
            raise AccountInactiveError(details={"user_id": user_id})


def new_transaction(
    *,
    kind: str,
    actor: User | None,
    from_user_id: int | None,
    to_user_id: int | None,
    amount: Decimal,
    currency: str,
    description: str = "",
    reference: str | None = None,
    status: str = TransactionStatus.COMPLETED,
    now: datetime | None,
) -> Transaction:
    """A transaction built in memory; with `now` None its caller stamps it later."""
    return Transaction(
        id=uuid.uuid4(),
        type=kind,
        status=status,
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        amount=amount,
        currency_id=currency,
        description=description or "",
        reference=reference,
        initiated_by_id=actor.pk if actor else None,
        # A model takes None for any field until it is saved; django-stubs say it may not.
        created_at=now,  # type: ignore[misc]
        completed_at=now if status == TransactionStatus.COMPLETED else None,
    )


def lock_parties(
    *,
    from_user_id: int | None,
    to_user_id: int | None,
    currency: str,
    idempotency: IdempotencyRequest | None = None,
) -> LockedSet:
    """Lock the balances of a movement's parties; the recipient's row is created on first use.

    The owners' limit rules are read with the lock (`LIMIT_COLUMNS`), for `plan_movement`.

    Raises NotFoundError if the recipient does not exist (checked here, under the locks,
    so a caller may name the recipient by id without reading the user first).

    With `idempotency`, its key is claimed first, in the same round trip as the lock;
    a known key raises IdempotentReplay or a 409 (see `settle_claim`).
    """
    keys = [(u, currency) for u in (from_user_id, to_user_id) if u is not None]
    create = [(to_user_id, currency)] if to_user_id is not None else []
    if idempotency is None:
        locked = lock_balances(keys=keys, create_missing=create, columns=LIMIT_COLUMNS)
    else:
        claimed, locked = lock_balances_after(
            claim_statement(idempotency), keys=keys, create_missing=create, columns=LIMIT_COLUMNS
        )
        settle_claim(idempotency, claimed)
    if to_user_id is not None and (to_user_id, currency) not in locked.balances:
        raise recipient_not_found()
    return locked


def recipient_not_found() -> NotFoundError:
    return NotFoundError("The recipient does not exist.", details={"to_user_id": ["Unknown user."]})


def plan_movement(
    *, locked: LockedSet, txn: Transaction, actor_id: int | None
) -> tuple[WriteStatement, PostingResult]:
    """Check `txn` against its locked balances and plan its postings (nothing written yet).

    Sets `txn.balance_after` for the account the money left (or entered, for a credit).
    Raises AccountInactiveError (not for a reversal), LimitExceededError,
    InsufficientFundsError.
    """
    currency = txn.currency_id
    parties = [u for u in (txn.from_user_id, txn.to_user_id) if u is not None]
    if txn.type != TransactionType.REVERSAL:  # a compliance operation: frozen accounts too
        ensure_active(locked=locked, user_ids=parties, currency=currency)
    if txn.from_user_id is not None and is_limited(
        kind=txn.type, from_user_id=txn.from_user_id, initiated_by_id=txn.initiated_by_id
    ):
        LimitCheck(locked).check(sender_id=txn.from_user_id, currency=currency, amount=txn.amount)
    if txn.from_user_id is not None and (txn.from_user_id, currency) not in locked.balances:
        raise InsufficientFundsError(
            details={"currency": currency, "available": format_amount(Decimal(0), currency)}
        )
    write, result = plan_postings(
        locked=locked, postings=legs_for(txn), actor_id=actor_id, now=locked.now
    )
    # A credit has no sender, but always a recipient.
    shown = txn.from_user_id if txn.from_user_id is not None else cast(int, txn.to_user_id)
    txn.balance_after = result.balance_after[(shown, currency)]
    txn.balance_owner_id = shown
    return write, result


def _move(
    *,
    kind: str,
    actor: User | None,
    from_user_id: int | None,
    to_user_id: int | None,
    amount: Decimal,
    currency: str,
    description: str,
    reference: str | None,
    idempotency: IdempotencyRequest | None,
) -> Transaction:
    """The common body of credit, debit and transfer (inside the caller's atomic block).

    The transaction is built before the locks and stamped with their clock after: what
    needs no locked value is done before the balances are locked, not while they are held.
    Raises PermissionDeniedError for an auditor.
    """
    ensure_may_change(actor)
    txn = new_transaction(
        kind=kind,
        actor=actor,
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        amount=amount,
        currency=currency,
        description=description,
        reference=reference,
        now=None,
    )
    locked = lock_parties(
        from_user_id=from_user_id, to_user_id=to_user_id, currency=currency, idempotency=idempotency
    )
    txn.created_at = txn.completed_at = locked.now
    actor_id = actor.pk if actor else None
    write, result = plan_movement(locked=locked, txn=txn, actor_id=actor_id)
    add_transaction_inserts(write, txns=[txn])
    event = transaction_event(
        txn=txn, action="transaction.completed", actor_id=actor_id, now=locked.now
    )
    commit_movement(
        write,
        events=[event, *result.events],
        txns=[txn],
        idempotency=idempotency,
        response=txn,
    )
    return txn


def commit_movement(
    write: WriteStatement,
    *,
    events: list[PendingEvent],
    txns: list[Transaction],
    idempotency: IdempotencyRequest | None = None,
    response: Transaction | None = None,
) -> None:
    """Finish a planned movement's statement and send it with `COMMIT`, in one round trip.

    Adds the audit `events` and the idempotency key's stored `response` to `write`,
    registers the after-commit hooks for `txns`, then runs it (`execute_and_commit`): the
    last query of the movement's atomic block, which nothing may follow.
    """
    add_events(write, events=events)
    complete_idempotency_key(write, idempotency=idempotency, result=response)
    schedule_after_commit(txns)
    write.execute_and_commit()  # the last statement: nothing may fail after the commit


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def credit(
    *,
    actor: User | None,
    user: User,
    amount: Decimal,
    currency: str,
    description: str = "",
    reference: str | None = None,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Add money to `user` from the world account.

    Locks the user's balance (created on first use). Raises AccountInactiveError,
    IdempotencyKeyReusedError; IdempotentReplay for a repeated key.
    """
    return _move(
        kind=TransactionType.CREDIT,
        actor=actor,
        from_user_id=None,
        to_user_id=user.pk,
        amount=amount,
        currency=currency,
        description=description,
        reference=reference,
        idempotency=idempotency,
    )


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def debit(
    *,
    actor: User | None,
    user: User,
    amount: Decimal,
    currency: str,
    description: str = "",
    reference: str | None = None,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Take money from `user` to the world account.

    Locks the user's balance. Raises InsufficientFundsError, AccountInactiveError,
    IdempotencyKeyReusedError; IdempotentReplay for a repeated key.
    """
    return _move(
        kind=TransactionType.DEBIT,
        actor=actor,
        from_user_id=user.pk,
        to_user_id=None,
        amount=amount,
        currency=currency,
        description=description,
        reference=reference,
        idempotency=idempotency,
    )


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def transfer(
    *,
    actor: User | None,
    sender: User,
    recipient: User,
    amount: Decimal,
    currency: str,
    description: str = "",
    reference: str | None = None,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Move `amount` of `currency` from `sender` to `recipient`.

    Locks both balance rows in primary-key order (the recipient's is created on first use).
    Raises SameAccountError, AccountInactiveError, InsufficientFundsError,
    IdempotencyKeyReusedError; IdempotentReplay for a repeated key.
    """
    if sender.pk == recipient.pk:
        raise SameAccountError(details={"to_user_id": recipient.pk})
    return _move(
        kind=TransactionType.TRANSFER,
        actor=actor,
        from_user_id=sender.pk,
        to_user_id=recipient.pk,
        amount=amount,
        currency=currency,
        description=description,
        reference=reference,
        idempotency=idempotency,
    )


def set_status(
    *,
    txn: Transaction,
    target: str,
    write: WriteStatement,
    now: datetime,
    failure_code: str | None = None,
) -> None:
    """Move `txn` along the state machine and add the row update to `write`.

    The one writer of a transaction's status; the caller holds the transaction's row lock.
    `completed_at` is set when it completes and kept otherwise.
    """
    transition(txn=txn, target=target)
    txn.previous_status = txn.status  # read by the counters after commit
    txn.status = target
    txn.failure_code = failure_code
    if target == TransactionStatus.COMPLETED:
        txn.completed_at = now
    write.add(
        "UPDATE transactions SET status = %s, failure_code = %s, completed_at = %s WHERE id = %s",
        [txn.status, txn.failure_code, txn.completed_at, txn.pk],
    )


def transition(*, txn: Transaction, target: str) -> None:
    """Check a status change against the state machine; raise InvalidStateError if refused."""
    if not can_transition(txn.status, target):
        raise InvalidStateError(
            f"A {txn.status} transaction cannot become {target}.",
            details={"status": txn.status, "target": target},
        )


@retry_on_lock_conflict
@transaction.atomic(durable=True)
def reverse(
    *,
    actor: User,
    transaction_id: uuid.UUID | str,
    reason: str,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Move a completed transaction's money back, in one step, and mark it `reversed`.

    Locks the original transaction row, then the balances in primary-key order. Reversal is
    a compliance operation, so it is allowed on inactive (frozen) accounts.
    Raises NotFoundError, ConflictError (already reversed), InvalidStateError (not completed,
    or a reversal), InsufficientFundsError (the recipient no longer has the money),
    PermissionDeniedError (the actor is not an admin).
    """
    if not actor.is_admin:
        raise PermissionDeniedError("Only an admin may reverse a transaction.")
    claim_idempotency_key(idempotency=idempotency)
    original = lock_transaction(transaction_id=transaction_id)
    if original.status == TransactionStatus.REVERSED:
        raise ConflictError(
            "This transaction has already been reversed.",
            details={"transaction_id": str(original.pk)},
        )
    if original.type == TransactionType.REVERSAL:
        raise InvalidStateError("A reversal cannot be reversed.")
    transition(txn=original, target=TransactionStatus.REVERSED)
    reversal = new_transaction(
        kind=TransactionType.REVERSAL,
        actor=actor,
        from_user_id=original.to_user_id,
        to_user_id=original.from_user_id,
        amount=original.amount,
        currency=original.currency_id,
        description=reason,
        reference=original.reference,
        now=None,
    )
    reversal.reversal_of_id = original.pk
    locked = lock_parties(
        from_user_id=reversal.from_user_id,
        to_user_id=reversal.to_user_id,
        currency=reversal.currency_id,
    )
    now = reversal.created_at = reversal.completed_at = locked.now
    write, result = plan_movement(locked=locked, txn=reversal, actor_id=actor.pk)
    add_transaction_inserts(write, txns=[reversal])
    set_status(txn=original, target=TransactionStatus.REVERSED, write=write, now=now)
    reversed_event = transaction_event(
        txn=original,
        action="transaction.reversed",
        actor_id=actor.pk,
        now=now,
        prev_hash=chain_head(chain=f"txn:{original.pk}"),
        extra={"reversed_by": str(reversal.pk), "reason": reason},
    )
    completed = transaction_event(
        txn=reversal, action="transaction.completed", actor_id=actor.pk, now=now
    )
    commit_movement(
        write,
        events=[reversed_event, completed, *result.events],
        txns=[original, reversal],
        idempotency=idempotency,
        response=reversal,
    )
    return reversal

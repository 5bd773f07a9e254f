"""Posting money to balances: the one writer of balances, balance entries and their events."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection

from audit.services import PendingEvent
from balances.locks import LockedBalance, LockedSet, lock_balances
from balances.models import Balance, BalanceEntry
from money.amounts import format_amount
from wallet_project.errors import InsufficientFundsError
from wallet_project.statements import ModelColumns, WriteStatement


@dataclass
class Posting:
    """One leg of a movement: `delta` on (user, currency), or on the world account (user None)."""

    transaction_id: str
    user_id: int | None
    currency: str
    delta: Decimal


@dataclass
class PostingResult:
    balance_after: dict[tuple[int, str], Decimal] = field(default_factory=dict)
    events: list[PendingEvent] = field(default_factory=list)
    # balance_entries rows (`ENTRY_COLUMNS.row_of`) in posting order (apply_postings)
    entry_rows: list[tuple] = field(default_factory=list)
    touched: dict[int, LockedBalance] = field(default_factory=dict)  # by balance id


# One row per posting; the movement's instant is shared by its entries.
ENTRY_COLUMNS = ModelColumns(BalanceEntry, shared=["created_at"], omitted={"id": "an identity"})

# A posting changes a balance's amount, entry count and chain head; the rest is its identity.
BALANCE_UPDATE_COLUMNS = ModelColumns(
    Balance,
    fields=["id", "amount", "entry_count", "head_hash"],
    shared=["last_updated_at"],
    omitted={
        "user": "fixed when the row is created",
        "currency": "fixed when the row is created",
        "created_at": "fixed when the row is created",
    },
)


def iter_postings(
    *,
    locked: LockedSet,
    postings: Iterable[Posting],
    actor_id: int | None,
    now: datetime,
    result: PostingResult,
) -> Iterator[tuple]:
    """Apply each posting in memory as it is consumed and yield its balance entry row.

    The new amounts, chained `balance.changed` events and touched balances are collected
    in `result`. Every user leg must name a locked balance. Raises InsufficientFundsError
    if a balance would go below zero. Writes nothing: for streaming the entries into COPY
    while the next ones are computed; `apply_postings` collects them instead.
    """
    touched = result.touched
    for posting in postings:
        if posting.user_id is None:
            yield ENTRY_COLUMNS.row_of(
                {
                    "balance_id": None,
                    "user_id": None,
                    "currency_id": posting.currency,
                    "transaction_id": posting.transaction_id,
                    "delta": posting.delta,
                    "balance_after": None,
                }
            )
            continue
        balance = locked.balances[(posting.user_id, posting.currency)]
        new_amount = balance.amount + posting.delta
        if new_amount < 0:
            raise InsufficientFundsError(
                details={
                    "currency": posting.currency,
                    "available": format_amount(balance.amount, posting.currency),
                }
            )
        balance.amount = new_amount
        balance.entry_count += 1
        event = PendingEvent(
            entity_type="balance",
            entity_id=str(balance.id),
            action="balance.changed",
            details={
                "user_id": balance.user_id,
                "currency": balance.currency,
                "delta": format_amount(posting.delta, posting.currency),
                "balance_after": format_amount(new_amount, posting.currency),
                "transaction_id": posting.transaction_id,
                "seq": balance.entry_count,
            },
            actor_id=actor_id,
            created_at=now,
            chain=f"balance:{balance.id}",
            prev_hash=balance.head_hash,
        )
        balance.head_hash = event.hash
        result.events.append(event)
        touched[balance.id] = balance
        result.balance_after[(balance.user_id, balance.currency)] = new_amount
        yield ENTRY_COLUMNS.row_of(
            {
                "balance_id": balance.id,
                "user_id": balance.user_id,
                "currency_id": posting.currency,
                "transaction_id": posting.transaction_id,
                "delta": posting.delta,
                "balance_after": new_amount,
            }
        )


def apply_postings(
    *, locked: LockedSet, postings: Iterable[Posting], actor_id: int | None, now: datetime
) -> PostingResult:
    """Apply `postings` in memory to the locked balances: amounts, entries, chained events.

    Every user leg must name a locked balance. Raises InsufficientFundsError if any balance
    would go below zero (the locked values may then be partly changed: the caller's
    transaction is failing). Writes nothing; see `plan_postings` and `add_balance_updates`.
    """
    result = PostingResult()
    result.entry_rows.extend(
        iter_postings(locked=locked, postings=postings, actor_id=actor_id, now=now, result=result)
    )
    return result


def add_balance_updates(write: WriteStatement, *, result: PostingResult, now: datetime) -> None:
    """Add the update of every balance `result` touched (amount, count, chain head)."""
    if not result.touched:
        return
    # The instant is sent as text: cheaper to encode.
    rows = [BALANCE_UPDATE_COLUMNS.row(b) for b in result.touched.values()]
    write.add(*BALANCE_UPDATE_COLUMNS.update(rows, last_updated_at=now.isoformat()))


def plan_postings(
    *, locked: LockedSet, postings: list[Posting], actor_id: int | None, now: datetime
) -> tuple[WriteStatement, PostingResult]:
    """Apply `postings` in memory to the locked balances and build the writes.

    Every user leg must name a locked balance. Raises InsufficientFundsError if any balance
    would go below zero (nothing has been written then). Returns the batch of statements
    (balance update, entries, balance events) for the caller to extend and execute.
    """
    result = apply_postings(locked=locked, postings=postings, actor_id=actor_id, now=now)
    write = WriteStatement()
    add_balance_updates(write, result=result, now=now)
    write.add(*ENTRY_COLUMNS.insert(result.entry_rows, created_at=now.isoformat()))
    return write, result


def rebuild_balances(*, keys: list[tuple[int, str]]) -> int:
    """Overwrite the live balances that differ from the replayed ones; returns the rows changed.

    The replayed balances are the temporary table `replay_balances` (balance_id, user_id,
    currency, amount, entry_count, head_hash, last_updated_at) that `audit.replay` fills in
    the caller's transaction. Locks the balances of `keys` first (primary-key order), creating
    the missing ones; a live balance with no replayed row is set to zero.
    """
    lock_balances(keys=keys, create_missing=keys)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE balances b SET amount = r.amount, entry_count = r.entry_count, "
            "head_hash = r.head_hash, last_updated_at = r.last_updated_at "
            "FROM replay_balances r WHERE r.user_id = b.user_id AND r.currency = b.currency "
            "AND (b.amount IS DISTINCT FROM r.amount OR b.entry_count IS DISTINCT FROM r.entry_count "
            "OR b.head_hash IS DISTINCT FROM r.head_hash)"
        )
        changed = cursor.rowcount
        cursor.execute(
            "UPDATE balances b SET amount = 0, entry_count = 0, head_hash = '' "
            "WHERE NOT EXISTS (SELECT 1 FROM replay_balances r WHERE r.balance_id = b.id) "
            "AND (b.amount <> 0 OR b.entry_count <> 0)"
        )
        return changed + cursor.rowcount

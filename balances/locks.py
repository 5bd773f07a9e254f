"""The one place that locks balance rows.

Global lock order, for every path that takes more than one kind of lock:
1. transaction rows (`transactions.locks.lock_transaction`),
2. user rows (`audit.services.lock_user_row`),
3. balance rows, here, always sorted by primary key,
so two movements touching the same balances can never wait on each other in a cycle.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from audit.services import PendingEvent, add_events
from balances.models import Balance
from wallet_project.statements import (
    ModelColumns,
    WriteStatement,
    epoch_micros,
    from_epoch_micros,
    run_pipelined,
)


@dataclass
class LockedBalance:
    """A balance row read under `FOR UPDATE`; the values a movement may decide on."""

    id: int
    user_id: int
    currency: str
    amount: Decimal
    entry_count: int
    head_hash: str
    is_active: bool
    # The owner's limits in this currency (`transactions.TransferLimit`), read with the lock.
    max_per_transaction: Decimal | None = None
    max_per_day: Decimal | None = None


@dataclass
class LockedSet:
    balances: dict[tuple[int, str], LockedBalance]
    now: datetime  # the database clock, read after the locks: entries are ordered by it


# The owner's limit rule comes with the lock: their own active rule, else the default one.
# The database clock comes as microseconds since the epoch (`epoch_micros`).
_LOCK_SQL = f"""
SELECT b.id, b.user_id, b.currency, b.amount, b.entry_count, b.head_hash, u.is_active,
       l.max_per_transaction, l.max_per_day,
       {epoch_micros("clock_timestamp()")}
FROM balances b JOIN users u ON u.id = b.user_id
LEFT JOIN LATERAL (
    SELECT t.max_per_transaction, t.max_per_day FROM transfer_limits t
    WHERE t.currency = b.currency AND t.is_active AND (t.user_id = b.user_id OR t.user_id IS NULL)
    ORDER BY t.user_id NULLS LAST LIMIT 1
) l ON true
WHERE (b.user_id, b.currency) IN ({{pairs}})
ORDER BY b.id
FOR UPDATE OF b
"""  # noqa: S608 - the one interpolation is a fixed expression

_CREATE_SQL = f"""
INSERT INTO balances (user_id, currency, amount, entry_count, head_hash, created_at,
                      last_updated_at)
SELECT v.user_id, v.currency, 0, 0, '', now(), now()
FROM (VALUES {{pairs}}) v(user_id, currency) JOIN users u ON u.id = v.user_id
ON CONFLICT (user_id, currency) DO NOTHING
RETURNING id, user_id, currency, {epoch_micros("created_at")}
"""  # noqa: S608 - the one interpolation is a fixed expression


# A new row's chain head, once its `balance.opened` event is computed.
_HEAD_COLUMNS = ModelColumns(
    Balance,
    fields=["id", "head_hash"],
    omitted=dict.fromkeys(
        ("user", "currency", "amount", "entry_count", "created_at", "last_updated_at"),
        "set when the row is created",
    ),
)


def _opened_events(created: list[tuple]) -> None:
    """Write the `balance.opened` event of each balance row just created, and make it the
    head of the row's chain (`balance:<id>`): every balance that exists has an event, so
    replaying the stream finds every live balance, money or not.

    Only for rows this transaction inserted (`RETURNING` names no row another transaction
    created first), which it holds locked until it commits. One statement.
    """
    events = [
        PendingEvent(
            entity_type="balance",
            entity_id=str(balance_id),
            action="balance.opened",
            details={"user_id": user_id, "currency": currency, "seq": 0},
            actor_id=None,
            created_at=from_epoch_micros(created_micros),
            chain=f"balance:{balance_id}",
        )
        for balance_id, user_id, currency, created_micros in created
    ]
    write = WriteStatement()
    add_events(write, events=events)
    heads = [_HEAD_COLUMNS.row_of({"id": int(e.entity_id), "head_hash": e.hash}) for e in events]
    write.add(*_HEAD_COLUMNS.update(heads))
    write.execute()


def _lock_statement(keys: list[tuple[int, str]]) -> tuple[str, list]:
    pairs = ", ".join(["(%s::bigint, %s::varchar)"] * len(keys))
    return _LOCK_SQL.format(pairs=pairs), [v for key in keys for v in key]


def _read_locked(rows: list[tuple]) -> tuple[dict, datetime | None]:
    found: dict[tuple[int, str], LockedBalance] = {}
    now = None
    for row in rows:
        found[(row[1], row[2])] = LockedBalance(*row[:9])
        now = from_epoch_micros(row[9])
    return found, now


def _select(cursor, keys: list[tuple[int, str]]) -> tuple[dict, datetime | None]:
    cursor.execute(*_lock_statement(keys))
    return _read_locked(cursor.fetchall())


def _complete(
    unique: list[tuple[int, str]], create_missing, found: dict, now: datetime | None
) -> LockedSet:
    """Create the missing rows of `create_missing` and lock again; read the clock if needed."""
    missing = [k for k in sorted(set(create_missing or [])) if k not in found]
    if missing or now is None:
        with connection.cursor() as cursor:
            if missing:
                pairs = ", ".join(["(%s::bigint, %s::varchar)"] * len(missing))
                cursor.execute(_CREATE_SQL.format(pairs=pairs), [v for k in missing for v in k])
                created = cursor.fetchall()
                if created:
                    _opened_events(created)
                found, now = _select(cursor, unique)
            if now is None:
                cursor.execute("SELECT clock_timestamp()")
                now = cursor.fetchone()[0]
    return LockedSet(balances=found, now=now)


def lock_balances(
    *, keys: list[tuple[int, str]], create_missing: list[tuple[int, str]] | None = None
) -> LockedSet:
    """Lock the balances of `keys` (user id, currency) in primary-key order, in one statement.

    Rows in `create_missing` that do not exist yet are created first (a recipient's first
    payment in a currency), for users that exist; keys that still have no row (no such
    user, or not in `create_missing`) are simply absent from the result.
    Must run inside the caller's atomic block.
    """
    unique = sorted(set(keys))
    (lock_rows,) = run_pipelined([_lock_statement(unique)])  # with the BEGIN, if first
    found, now = _read_locked(lock_rows)
    return _complete(unique, create_missing, found, now)


def lock_balances_after(
    first: tuple[str, list],
    *,
    keys: list[tuple[int, str]],
    create_missing: list[tuple[int, str]] | None = None,
) -> tuple[list[tuple], LockedSet]:
    """Run the statement `first`, then `lock_balances`, the two sent in one round trip.

    The lock is taken only after `first` finished on the server, as if sent one by one.
    Returns the rows of `first` and the locked set.
    """
    unique = sorted(set(keys))
    first_rows, lock_rows = run_pipelined([first, _lock_statement(unique)])
    found, now = _read_locked(lock_rows)
    return first_rows, _complete(unique, create_missing, found, now)


def lock_user_balances(*, user_id: int) -> list[LockedBalance]:
    """Lock every balance of one user, in primary-key order."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.id, b.user_id, b.currency, b.amount, b.entry_count, b.head_hash, "
            "u.is_active FROM balances b JOIN users u ON u.id = b.user_id "
            "WHERE b.user_id = %s ORDER BY b.id FOR UPDATE OF b",
            [user_id],
        )
        return [LockedBalance(*row) for row in cursor.fetchall()]

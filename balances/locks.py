"""The one place that locks balance rows.

Global lock order, for every path that takes more than one kind of lock:
1. transaction rows (`transactions.locks.lock_transaction`),
2. user rows (`accounts.locks.lock_user_row`),
3. balance rows, here, always sorted by primary key,
so two movements touching the same balances can never wait on each other in a cycle.

The lock is one statement, written as a queryset (`lock_queryset`) and compiled once per
number of keys. A caller reads columns of its own in that statement (`LockColumns`: the
transfer rules of the `transactions` app), so this module knows only balances and owners.
"""

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import BigIntegerField, Expression, F, Func, QuerySet, Subquery

# Django's own `(a, b) IN ((x, y), ...)`, the lookup behind composite keys.
from django.db.models.fields.tuple_lookups import Tuple, TupleIn

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
    # The caller's own columns read with the lock (`LockColumns`), by name.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LockedSet:
    balances: dict[tuple[int, str], LockedBalance]
    now: datetime  # the database clock, read after the locks: entries are ordered by it


class LockColumns:
    """Columns a caller reads with the balance lock, in the same statement (no round trip
    of their own): names and expressions over the balance row (`OuterRef("user")`,
    `OuterRef("currency")`). Their values come in `LockedBalance.extra`.

    One instance per use, made once (a module constant): the lock statement is compiled
    once per instance and reused.
    """

    def __init__(self, **expressions: Expression | Subquery) -> None:
        clash = set(expressions) & {*_LOCKED, "is_active", _CLOCK}
        if clash:
            raise ValueError(f"Names the lock reads already: {sorted(clash)}")
        self.expressions = expressions


_LOCKED = ("id", "user_id", "currency", "amount", "entry_count", "head_hash")
_CLOCK = "clock_micros"
_CLOCK_SQL = epoch_micros("clock_timestamp()")  # read per row, after the row's lock


def lock_queryset(
    keys: list[tuple[int, str]], columns: LockColumns | None = None
) -> QuerySet[Balance, dict[str, Any]]:
    """The lock, as a queryset: the balances of `keys` (user id, currency) in primary-key
    order, `FOR UPDATE` of the balance rows only, with the owner's `is_active`, the
    caller's `columns`, and the database clock read after the locks, as microseconds since
    the epoch (`epoch_micros`).

    The source of the lock statement; `lock_balances` runs it compiled once per number of
    keys (`_compiled`).
    """
    return (
        Balance.objects.filter(TupleIn(Tuple(F("user"), F("currency")), keys))
        .order_by("id")
        .select_for_update(of=("self",))
        .values(
            *_LOCKED,
            is_active=F("user__is_active"),
            **(columns.expressions if columns else {}),
            **{_CLOCK: Func(template=_CLOCK_SQL, output_field=BigIntegerField())},
        )
    )


@dataclass(frozen=True)
class _Lock:
    """A compiled lock statement, and where each value is in its rows."""

    sql: str
    size: int  # the number of keys it takes
    balance: tuple[tuple[str, int], ...]  # (LockedBalance field, index)
    extra: tuple[tuple[str, int], ...]
    clock: int

    def statement(self, keys: list[tuple[int, str]]) -> tuple[str, list]:
        padded = keys + keys[-1:] * (self.size - len(keys))  # a repeated key locks nothing more
        return self.sql, [value for key in padded for value in key]

    def read(self, rows: list[tuple]) -> tuple[dict, datetime | None]:
        found: dict[tuple[int, str], LockedBalance] = {}
        now = None
        for row in rows:
            balance = LockedBalance(
                **{name: row[i] for name, i in self.balance},
                extra={name: row[i] for name, i in self.extra},
            )
            found[(balance.user_id, balance.currency)] = balance
            now = from_epoch_micros(row[self.clock])
        return found, now


def _size(count: int) -> int:
    """How many keys the statement for `count` keys takes: few statements (powers of two,
    then multiples of 4096) serve every count, each compiled once; up to 2 keys, exactly."""
    if count <= 2:
        return count
    if count <= 4096:
        return 1 << (count - 1).bit_length()
    return -(-count // 4096) * 4096


@functools.cache
def _compiled(size: int, columns: LockColumns | None) -> _Lock:
    """`lock_queryset` for `size` keys, compiled (compiling costs more than the lock).

    Its parameters must be exactly the keys' values, in order: checked here with stand-in
    keys, whose values are replaced by the real ones on every run.
    """
    stand_ins = [(-1 - i, f"key {i}") for i in range(size)]
    queryset = lock_queryset(stand_ins, columns)
    sql, params = queryset.query.sql_with_params()
    if list(params) != [value for key in stand_ins for value in key]:
        raise ImproperlyConfigured("The lock's parameters must be its keys' values alone.")
    query = queryset.query
    names = [*query.extra_select, *query.values_select, *query.annotation_select]
    index = {name: i for i, name in enumerate(names)}
    return _Lock(
        sql=sql,
        size=size,
        balance=tuple((name, index[name]) for name in (*_LOCKED, "is_active")),
        extra=tuple((name, index[name]) for name in (columns.expressions if columns else {})),
        clock=index[_CLOCK],
    )


def _lock(keys: list[tuple[int, str]], columns: LockColumns | None) -> _Lock:
    return _compiled(_size(len(keys)), columns)


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


def _complete(
    unique: list[tuple[int, str]],
    create_missing,
    columns: LockColumns | None,
    found: dict,
    now: datetime | None,
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
                if unique:
                    lock = _lock(unique, columns)
                    cursor.execute(*lock.statement(unique))
                    found, now = lock.read(cursor.fetchall())
            if now is None:
                cursor.execute("SELECT clock_timestamp()")
                now = cursor.fetchone()[0]
    return LockedSet(balances=found, now=now)


def lock_balances(
    *,
    keys: list[tuple[int, str]],
    create_missing: list[tuple[int, str]] | None = None,
    columns: LockColumns | None = None,
) -> LockedSet:
    """Lock the balances of `keys` (user id, currency) in primary-key order, in one statement.

    Rows in `create_missing` that do not exist yet are created first (a recipient's first
    payment in a currency), for users that exist; keys that still have no row (no such
    user, or not in `create_missing`) are simply absent from the result. The caller's
    `columns` are read in the same statement. Must run inside the caller's atomic block.
    """
    return lock_balances_after(None, keys=keys, create_missing=create_missing, columns=columns)[1]


def lock_balances_after(
    first: tuple[str, list] | None,
    *,
    keys: list[tuple[int, str]],
    create_missing: list[tuple[int, str]] | None = None,
    columns: LockColumns | None = None,
) -> tuple[list[tuple], LockedSet]:
    """Run the statement `first`, then `lock_balances`, the two sent in one round trip.

    The lock is taken only after `first` finished on the server, as if sent one by one
    (with the transaction's BEGIN, if they are its first statements). Returns the rows of
    `first` and the locked set.
    """
    unique = sorted(set(keys))
    statements = [first] if first is not None else []
    lock = _lock(unique, columns) if unique else None
    if lock is not None:
        statements.append(lock.statement(unique))
    results = run_pipelined(statements) if statements else []
    first_rows = results[0] if first is not None else []
    found, now = lock.read(results[-1]) if lock is not None else ({}, None)
    return first_rows, _complete(unique, create_missing, columns, found, now)


def lock_user_balances(*, user_id: int) -> list[LockedBalance]:
    """Lock every balance of one user, in primary-key order."""
    rows = (
        Balance.objects.filter(user_id=user_id)
        .order_by("id")
        .select_for_update(of=("self",))
        .values(*_LOCKED, is_active=F("user__is_active"))
    )
    return [LockedBalance(**row) for row in rows]

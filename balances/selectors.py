"""Reads of balances: now, as a history, as of any instant, and the ledger's invariants."""

from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Trunc

from balances.models import Balance, BalanceEntry


def has_nonzero_balance(*, user_id: int) -> bool:
    return Balance.objects.filter(user_id=user_id).exclude(amount=0).exists()


def list_current_balances(*, user_id: int, currency: str | None = None) -> QuerySet[Balance]:
    qs = Balance.objects.filter(user_id=user_id)
    if currency:
        qs = qs.filter(currency_id=currency)
    return qs.order_by("currency_id")


def balance_at(*, user_id: int, currency: str, at: datetime) -> Decimal:
    """The balance after the newest entry at or before `at` (zero before the first one).

    One lookup on the `(user_id, currency, created_at DESC, id DESC)` index.
    """
    value = (
        BalanceEntry.objects.filter(user_id=user_id, currency_id=currency, created_at__lte=at)
        .order_by("-created_at", "-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    return value if value is not None else Decimal(0)


def list_balance_history(
    *,
    user_id: int,
    currency: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str | None = None,
) -> QuerySet[BalanceEntry]:
    """The user's balance changes, oldest first; with `interval` (`day`/`hour`) only the last
    change of each bucket, which holds the bucket's closing balance."""
    qs = BalanceEntry.objects.filter(user_id=user_id)
    if currency:
        qs = qs.filter(currency_id=currency)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    if interval:
        later_in_bucket = (
            BalanceEntry.objects.annotate(bucket=Trunc("created_at", interval))
            .filter(
                user_id=OuterRef("user_id"),
                currency_id=OuterRef("currency_id"),
                bucket=OuterRef("bucket"),
            )
            .filter(
                Q(created_at__gt=OuterRef("created_at"))
                | Q(created_at=OuterRef("created_at"), id__gt=OuterRef("id"))
            )
        )
        qs = qs.annotate(bucket=Trunc("created_at", interval)).filter(~Exists(later_in_bucket))
    return qs.order_by("created_at", "id")


_RECENT_POINTS_SQL = """
SELECT b.currency, e.created_at, e.balance_after
FROM balances b
CROSS JOIN LATERAL (
    SELECT created_at, id, balance_after FROM balance_entries e
    WHERE e.user_id = b.user_id AND e.currency = b.currency
    ORDER BY created_at DESC, id DESC
    LIMIT %s
) e
WHERE b.user_id = %s
ORDER BY b.currency, e.created_at, e.id
"""


def list_recent_balance_points(
    *, user_id: int, per_currency: int = 200
) -> dict[str, list[tuple[datetime, Decimal]]]:
    """The newest `per_currency` balance changes of each of the user's currencies, oldest
    first, as `(created_at, balance_after)`: one statement, one index scan per balance."""
    from django.db import connection

    points: dict[str, list[tuple[datetime, Decimal]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_RECENT_POINTS_SQL, [per_currency, user_id])
        for currency, created_at, balance_after in cursor.fetchall():
            points.setdefault(currency, []).append((created_at, balance_after))
    return points


def list_statement_entries(
    *, user_id: int, currency: str, start: datetime, end: datetime
) -> QuerySet[BalanceEntry]:
    """The user's entries in `currency` after `start` up to and including `end`, oldest first.

    The bounds match `balance_at`: opening = `balance_at(start)`, closing = `balance_at(end)`,
    and opening plus these deltas is the closing balance.
    """
    return (
        BalanceEntry.objects.filter(
            user_id=user_id, currency_id=currency, created_at__gt=start, created_at__lte=end
        )
        .select_related("transaction__from_user", "transaction__to_user")
        .order_by("created_at", "id")
    )


# ---------------------------------------------------------------- invariants

# Each ledger invariant of `balances.models`, as a query of the rows that break it.
LEDGER_CHECKS = {
    "zero_sum_per_currency": """
        SELECT c.code,
               coalesce((SELECT sum(amount) FROM balances b WHERE b.currency = c.code), 0)
             + coalesce((SELECT sum(delta) FROM balance_entries e
                         WHERE e.currency = c.code AND e.balance_id IS NULL), 0)
        FROM currencies c
    """,
    "balance_equals_entries": """
        SELECT b.id, b.amount::text, coalesce(e.s, 0)::text FROM balances b
        LEFT JOIN (SELECT balance_id, sum(delta) s, count(*) n FROM balance_entries
                   WHERE balance_id IS NOT NULL GROUP BY balance_id) e ON e.balance_id = b.id
        WHERE b.amount <> coalesce(e.s, 0) OR b.entry_count <> coalesce(e.n, 0)
        LIMIT 50
    """,
    "balance_equals_last_balance_after": """
        SELECT b.id, b.amount::text, last.balance_after::text FROM balances b
        JOIN LATERAL (SELECT balance_after FROM balance_entries e
                      WHERE e.user_id = b.user_id AND e.currency = b.currency
                      ORDER BY created_at DESC, id DESC LIMIT 1) last ON true
        WHERE last.balance_after <> b.amount
        LIMIT 50
    """,
    "no_negative_balance": "SELECT id, amount::text FROM balances WHERE amount < 0 LIMIT 50",
    "transaction_entries_sum_to_zero": """
        SELECT transaction_id::text, sum(delta)::text FROM balance_entries
        GROUP BY transaction_id HAVING sum(delta) <> 0 LIMIT 50
    """,
}


def ledger_invariant_violations() -> dict[str, list[tuple]]:
    """The rows breaking each invariant of `LEDGER_CHECKS`, by name; an empty list where it
    holds. For `zero_sum_per_currency`, `(currency, total)` of the currencies not at zero."""
    violations: dict[str, list[tuple]] = {}
    with connection.cursor() as cursor:
        for name, sql in LEDGER_CHECKS.items():
            cursor.execute(sql)
            rows = cursor.fetchall()
            if name == "zero_sum_per_currency":
                rows = [(code, str(total)) for code, total in rows if total != 0]
            violations[name] = rows
    return violations


_OFF_CHAIN_HEAD_SQL = """
SELECT b.id FROM balances b
LEFT JOIN LATERAL (SELECT hash FROM audit_logs a WHERE a.chain = 'balance:' || b.id
                   ORDER BY a.id DESC LIMIT 1) h ON true
WHERE (b.entry_count > 0 OR b.head_hash <> '') AND h.hash IS DISTINCT FROM b.head_hash
LIMIT 50
"""


def list_balances_off_their_chain_head() -> list[int]:
    """Ids of balances (at most 50) whose `head_hash` is not the hash of their audit chain's
    newest event (`balance:<id>`)."""
    with connection.cursor() as cursor:
        cursor.execute(_OFF_CHAIN_HEAD_SQL)
        return [row[0] for row in cursor.fetchall()]


def list_balance_chain_heads() -> list[tuple[int, str]]:
    """`(id, head_hash)` of every balance whose audit chain has begun, by id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, head_hash FROM balances WHERE entry_count > 0 OR head_hash <> '' "
            "ORDER BY id"
        )
        return cursor.fetchall()

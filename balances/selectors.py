"""Reads of balances: now, as a history, as of any instant, and the ledger's invariants."""

from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, Max, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from balances.models import Balance, BalanceEntry
from wallet_project.errors import ValidationFailedError
from wallet_project.pagination import MergedQuerySets


def has_nonzero_balance(*, user_id: int) -> bool:
    return Balance.objects.filter(user_id=user_id).exclude(amount=0).exists()


def list_current_balances(*, user_id: int, currency: str | None = None) -> QuerySet[Balance]:
    qs = Balance.objects.filter(user_id=user_id)
    if currency:
        qs = qs.filter(currency_id=currency)
    return qs.order_by("currency_id")


def list_current_balances_of(*, user_ids: list[int]) -> QuerySet[Balance]:
    """The current balances of several users at once, by user and currency."""
    return Balance.objects.filter(user_id__in=user_ids).order_by("user_id", "currency_id")


def list_recently_active_user_ids(*, since: datetime, limit: int) -> list[int]:
    """Users whose balances changed since `since`, the most recent first (at most `limit`)."""
    rows = (
        Balance.objects.filter(last_updated_at__gte=since)
        .values("user_id")
        .annotate(last=Max("last_updated_at"))
        .order_by("-last")[:limit]
    )
    return [row["user_id"] for row in rows]


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


# The most buckets one `interval` read may span: a year of days, not a year of hours. Each
# bucket is one index probe per currency, so this bounds the work of every page.
HISTORY_MAX_BUCKETS = 1000
_BUCKET_STEPS = {"day": timedelta(days=1), "hour": timedelta(hours=1)}

# The closing entry of every bucket from the one holding `first` to the one holding `last`
# (buckets of the zone `tz`): for each of the user's balances and each bucket, one probe of
# the `(user_id, currency, created_at DESC, id DESC)` index for the newest entry before the
# bucket's end, kept if it lies in the bucket (an empty bucket has none).
# A bucket ends at the first instant whose wall-clock time is the next bucket's start.
# Where that time occurs twice (a clock set back) `AT TIME ZONE` gives the later instant,
# so the end is the earliest of it and the instants half an hour to two hours before it
# that read the same time; where it never occurs (a clock set forward) `AT TIME ZONE` gives
# the instant the clock jumped, which is the end.
_BUCKET_CLOSES_SQL = """
SELECT probe.id
FROM (SELECT %s::text AS unit, %s::interval AS step, %s::text AS tz,
             %s::timestamptz AS first, %s::timestamptz AS last) AS p
JOIN balances b ON b.user_id = %s {currency}
CROSS JOIN LATERAL generate_series(
    date_trunc(p.unit, p.first AT TIME ZONE p.tz),
    date_trunc(p.unit, p.last AT TIME ZONE p.tz),
    p.step
) AS bucket(starts)
CROSS JOIN LATERAL (
    SELECT coalesce(min(instant), (bucket.starts + p.step) AT TIME ZONE p.tz)
    FROM unnest(ARRAY[interval '0', '30 minutes', '1 hour', '2 hours']) AS back(by)
    CROSS JOIN LATERAL (SELECT ((bucket.starts + p.step) AT TIME ZONE p.tz) - back.by)
        AS candidate(instant)
    WHERE instant AT TIME ZONE p.tz = bucket.starts + p.step
) AS edge(ends)
CROSS JOIN LATERAL (
    SELECT e.id, e.created_at FROM balance_entries e
    WHERE e.user_id = b.user_id AND e.currency = b.currency AND e.created_at < edge.ends
    ORDER BY e.created_at DESC, e.id DESC
    LIMIT 1
) AS probe
WHERE date_trunc(p.unit, probe.created_at AT TIME ZONE p.tz) = bucket.starts
"""

# The first and the last change of the user's balances (two probes of the index per balance).
_SPAN_SQL = """
SELECT min(oldest.created_at), max(newest.created_at)
FROM balances b
CROSS JOIN LATERAL (
    SELECT created_at FROM balance_entries e
    WHERE e.user_id = b.user_id AND e.currency = b.currency
    ORDER BY created_at, id LIMIT 1
) AS oldest
CROSS JOIN LATERAL (
    SELECT created_at FROM balance_entries e
    WHERE e.user_id = b.user_id AND e.currency = b.currency
    ORDER BY created_at DESC, id DESC LIMIT 1
) AS newest
WHERE b.user_id = %s {currency}
"""


def _local_bucket(moment: datetime, *, interval: str, zone: tzinfo) -> datetime:
    """The local start of the bucket holding `moment`, as a naive wall-clock time."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if interval == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(minute=0, second=0, microsecond=0)


def count_buckets(*, first: datetime, last: datetime, interval: str) -> int:
    """How many `interval` buckets of the current time zone hold `first` to `last`."""
    zone = timezone.get_current_timezone()
    low, high = (_local_bucket(m, interval=interval, zone=zone) for m in (first, last))
    return max((high - low) // _BUCKET_STEPS[interval] + 1, 0)


def history_span(*, user_id: int, currency: str | None = None) -> tuple[datetime, datetime] | None:
    """The instants of the user's first and last balance change (in `currency`), or None:
    two probes of the user-time index per balance, however long the history."""
    sql = _SPAN_SQL.format(currency="AND b.currency = %s" if currency else "")
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, currency] if currency else [user_id])
        oldest, newest = cursor.fetchone()
    return None if oldest is None else (oldest, newest)


def list_balance_history(
    *,
    user_id: int,
    currency: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    interval: str | None = None,
) -> QuerySet[BalanceEntry] | MergedQuerySets:
    """The user's balance changes in `[start, end)`, oldest first, paged like a queryset.

    Without `interval` or `currency`, the user's currencies are read first (one more query)
    and each is a range scan of the user-time index, merged in order (`MergedQuerySets`).
    With `interval` (`day`/`hour`, buckets of the current time zone, UTC by default) only
    the last change of each bucket, which holds the bucket's closing balance, listed if it
    falls in the range; a bucket without a change has no row. One index probe per bucket
    and balance (see `_BUCKET_CLOSES_SQL`), so the cost follows the range, not the history.
    An omitted bound is the first or last change, read first (one more query).

    Raises ValidationFailedError if the range spans more than HISTORY_MAX_BUCKETS buckets.
    """
    qs = BalanceEntry.objects.filter(user_id=user_id)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
    if interval:
        if currency:
            qs = qs.filter(currency_id=currency)
        return qs.filter(_closing_entries(user_id, currency, start, end, interval)).order_by(
            "created_at", "id"
        )
    # The index orders time within one currency: each currency is its own range scan, and
    # several are merged in order, rather than every entry of the user sorted for a page.
    codes = [currency] if currency else _currencies_of(user_id)
    parts = [qs.filter(currency_id=code).order_by("created_at", "id") for code in codes]
    if len(parts) > 1:
        return MergedQuerySets(*parts).order_by("created_at", "id")
    return parts[0] if parts else qs.none().order_by("created_at", "id")


def _currencies_of(user_id: int) -> list[str]:
    return list(
        Balance.objects.filter(user_id=user_id)
        .order_by("currency_id")
        .values_list("currency_id", flat=True)
    )


def _closing_entries(
    user_id: int, currency: str | None, start: datetime | None, end: datetime | None, interval: str
) -> RawSQL:
    """`id = ANY(ARRAY(<each bucket's closing entry>))`: the probes run once, then the rows
    are read by primary key, whatever plan the outer query's filters would suggest."""
    first = start
    last = end - timedelta(microseconds=1) if end else None  # `end` itself is outside
    if first is None or last is None:
        span = history_span(user_id=user_id, currency=currency)
        if span is None:
            return RawSQL("false", [], output_field=BooleanField())
        first, last = first or span[0], last or span[1]
    buckets = count_buckets(first=first, last=last, interval=interval)
    if buckets > HISTORY_MAX_BUCKETS:
        raise ValidationFailedError(
            f"The range holds {buckets} {interval} buckets; at most {HISTORY_MAX_BUCKETS} may "
            "be read at once. Narrow it with `from` and `to`, or use a longer interval.",
            details={
                "interval": [f"At most {HISTORY_MAX_BUCKETS} buckets per read."],
                "max_buckets": HISTORY_MAX_BUCKETS,
                "buckets": buckets,
            },
        )
    sql = _BUCKET_CLOSES_SQL.format(currency="AND b.currency = %s" if currency else "")
    zone = timezone.get_current_timezone_name()
    params = [interval, _BUCKET_STEPS[interval], zone, first, last, user_id]
    if currency:
        params.append(currency)
    condition = f"balance_entries.id = ANY(ARRAY({sql}))"
    return RawSQL(condition, params, output_field=BooleanField())  # noqa: S611 - values are params


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

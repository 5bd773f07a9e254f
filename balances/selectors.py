"""Reads of balances: now, as a history, and as of any instant."""

from datetime import datetime
from decimal import Decimal

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

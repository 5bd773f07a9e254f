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

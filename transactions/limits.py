"""Transfer limits: what an account holder may send, per movement and per UTC day.

The rules live in `TransferLimit`; the sender's effective rule (their own active rule, else
the currency's default) is read by the balance lock's own statement (`LIMIT_COLUMNS`, which
movements give to `balances.locks.lock_balances`), so a movement pays no extra query unless
a daily cap applies, and a rule changed in the admin binds the next movement. The day's
total is read under the sender's balance lock, so two movements from one account cannot
both fit under a cap that only one of them fits.

Limited: transfers and debits the sender makes (or that run on the sender's behalf:
async, scheduled and batch transfers). Not limited: credits, reversals, and movements
staff make on someone else's account (manual adjustments, admin-initiated transfers);
only admins can move another account's money, so "initiated by someone other than the
sender" is exactly that case.
"""

from datetime import datetime, time
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import DecimalField, F, Func, OuterRef, Q, Subquery

from balances.locks import LockColumns, LockedBalance, LockedSet
from money.amounts import format_amount
from transactions.models import TransactionType, TransferLimit
from wallet_project.errors import LimitExceededError

LIMITED_TYPES = (TransactionType.TRANSFER, TransactionType.DEBIT)

_SENT_TODAY = """
SELECT coalesce(sum(amount), 0) FROM transactions
WHERE from_user_id = %s AND currency = %s AND created_at >= %s
  AND status = 'completed' AND type IN ('transfer', 'debit')
"""


# The balance owner's rule in the balance's currency: their own active rule, else the default.
_RULE = (
    TransferLimit.objects.filter(currency=OuterRef("currency"), is_active=True)
    .filter(Q(user=OuterRef("user")) | Q(user__isnull=True))
    .order_by(F("user").asc(nulls_last=True))
)

# The caps of each locked balance's rule, read with the lock: lock with these to check
# limits. Both caps come from one lookup of the rule (an array): a subquery per cap would
# look the rule up twice per row, and cost the lock statement about a fifth more.
LIMIT_COLUMNS = LockColumns(
    limit_caps=Subquery(
        _RULE.values(
            caps=Func(
                F("max_per_transaction"),
                F("max_per_day"),
                template="ARRAY[%(expressions)s]",
                output_field=ArrayField(DecimalField(max_digits=24, decimal_places=3)),
            )
        )[:1]
    )
)


def _caps(balance: LockedBalance) -> tuple[Decimal | None, Decimal | None]:
    """The (per movement, per day) caps read with `balance`'s lock (None: no cap, no rule)."""
    try:
        caps = balance.extra["limit_caps"]
    except KeyError:
        raise RuntimeError("Limits are checked on balances locked with LIMIT_COLUMNS.") from None
    if caps is None:
        return None, None
    per_transaction, per_day = caps
    return per_transaction, per_day


def is_limited(*, kind: str, from_user_id: int | None, initiated_by_id: int | None) -> bool:
    """True for a transfer or debit the sender makes (or that runs on their behalf)."""
    if kind not in LIMITED_TYPES or from_user_id is None:
        return False
    return initiated_by_id is None or initiated_by_id == from_user_id


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s day: daily caps count from there."""
    return datetime.combine(moment.date(), time.min, tzinfo=moment.tzinfo)


class LimitCheck:
    """Checks movements against their senders' locked rules, counting what it let through.

    One instance per database transaction: several movements from one sender in it (a
    batch) count against the same daily cap.
    """

    def __init__(self, locked: LockedSet):
        self.locked = locked
        self.since = day_start(locked.now)
        self.sent: dict[tuple[int, str], Decimal] = {}

    def _sent_today(self, key: tuple[int, str]) -> Decimal:
        if key not in self.sent:
            with connection.cursor() as cursor:
                cursor.execute(_SENT_TODAY, [key[0], key[1], self.since])
                self.sent[key] = cursor.fetchone()[0]
        return self.sent[key]

    def check(self, *, sender_id: int, currency: str, amount: Decimal, count: bool = True) -> None:
        """Raise LimitExceededError if `amount` breaks the sender's rule; else count it.

        With `count=False` the amount is only checked; `count` it once it is sure to move.
        """
        balance = self.locked.balances.get((sender_id, currency))
        if balance is None:
            return
        cap, daily = _caps(balance)
        if cap is not None and amount > cap:
            raise LimitExceededError(
                f"The most one movement may send is {format_amount(cap, currency)} {currency}.",
                details={"limit": "per_transaction", "max": format_amount(cap, currency)},
            )
        if daily is None:
            return
        key = (sender_id, currency)
        sent = self._sent_today(key)
        if sent + amount > daily:
            left = max(daily - sent, Decimal(0))
            raise LimitExceededError(
                f"This would pass the daily limit of {format_amount(daily, currency)} "
                f"{currency}; {format_amount(left, currency)} {currency} left today.",
                details={
                    "limit": "per_day",
                    "max": format_amount(daily, currency),
                    "remaining": format_amount(left, currency),
                },
            )
        if count:
            self.sent[key] = sent + amount

    def count(self, *, sender_id: int, currency: str, amount: Decimal) -> None:
        """Add a checked amount to the sender's total for today (if a daily cap applies)."""
        key = (sender_id, currency)
        if key in self.sent:
            self.sent[key] += amount

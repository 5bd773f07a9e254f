"""Bucketed balance history answers what a brute-force reading of every entry answers.

`list_balance_history(interval=...)` probes the index once per bucket. Here random
histories (several currencies, equal timestamps, gaps that leave buckets empty) are read
through it with both intervals, in time zones with and without daylight saving (clocks set
back and forward by an hour, by half an hour, at midnight), and with windows whose edges
fall on, just before and just after changes and bucket boundaries. Every answer must be
the one the oracle computes from all the user's entries, and the one the `NOT EXISTS`
query the selector replaced gave.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Trunc
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balances import selectors
from balances.models import BalanceEntry
from tests.accounts.factories import UserFactory
from tests.transactions.services.ledger_state import backdate
from transactions import services

pytestmark = pytest.mark.django_db

ONE_MICROSECOND = timedelta(microseconds=1)
CURRENCIES = ("USD", "JPY")
# Instants near a change of the clock in a zone (and a plain one): histories are drawn
# around them, so buckets next to the change are full, empty, or cut by a window edge.
ANCHORS = {
    "UTC": datetime(2026, 3, 10, 12, tzinfo=UTC),
    "Asia/Kathmandu": datetime(2026, 3, 10, 18, 15, tzinfo=UTC),  # +05:45, no change
    "America/New_York": datetime(2024, 11, 3, 6, tzinfo=UTC),  # 02:00 EDT back to 01:00 EST
    "Europe/London": datetime(2024, 3, 31, 1, tzinfo=UTC),  # 01:00 GMT forward to 02:00 BST
    "Australia/Lord_Howe": datetime(2024, 4, 6, 15, tzinfo=UTC),  # back by half an hour
    "America/Havana": datetime(2024, 11, 3, 5, tzinfo=UTC),  # 01:00 back to 00:00: midnight twice
}

next_to_the_change = st.builds(  # seconds into the half-hours around the anchor
    lambda slot, second: slot * 1800 + second, st.integers(-6, 5), st.integers(0, 1799)
)
offsets = st.one_of(
    st.integers(-36 * 3600, 36 * 3600),  # seconds around the anchor: days apart
    next_to_the_change,
    next_to_the_change,
    st.sampled_from([-3600, -1800, 0, 1800, 3600]),  # on the change itself, and equal times
)
movements = st.lists(
    st.tuples(offsets, st.sampled_from(CURRENCIES), st.integers(1, 50), st.booleans()),
    min_size=1,
    max_size=12,
)


def _local_bucket(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone).replace(tzinfo=None)
    if interval == "day":
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return local.replace(minute=0, second=0, microsecond=0)


def oracle(entries, *, interval, zone, currency=None, start=None, end=None) -> list[int]:
    """Each bucket's last entry (every entry read, grouped by currency and local bucket),
    kept if it lies in `[start, end)`, oldest first."""
    closing = {}
    for entry in sorted(entries, key=lambda e: (e.created_at, e.id)):
        if currency is None or entry.currency_id == currency:
            closing[(entry.currency_id, _local_bucket(entry.created_at, interval, zone))] = entry
    kept = [
        e
        for e in closing.values()
        if (start is None or e.created_at >= start) and (end is None or e.created_at < end)
    ]
    return [e.id for e in sorted(kept, key=lambda e: (e.created_at, e.id))]


def replaced_query(*, user_id, interval, currency=None, start=None, end=None) -> list[int]:
    """The selector's query before it probed per bucket: an entry with no later entry in
    its bucket (`NOT EXISTS`), over the whole history."""
    qs = BalanceEntry.objects.filter(user_id=user_id)
    if currency:
        qs = qs.filter(currency_id=currency)
    if start:
        qs = qs.filter(created_at__gte=start)
    if end:
        qs = qs.filter(created_at__lt=end)
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
    return list(qs.order_by("created_at", "id").values_list("id", flat=True))


def live_history(user, plan, anchor) -> list[BalanceEntry]:
    """Run `plan` through the services (a debit the balance cannot pay is a credit), then
    move each movement onto its instant, in the order it was made: running balances stay
    in time order, and equal instants are ordered by id, as the ledger orders them."""
    held = dict.fromkeys(CURRENCIES, Decimal(0))
    made = []
    for _, currency, units, is_debit in plan:
        amount = Decimal(units)
        if is_debit and held[currency] >= amount:
            made.append(services.debit(actor=user, user=user, amount=amount, currency=currency))
            held[currency] -= amount
        else:
            made.append(services.credit(actor=user, user=user, amount=amount, currency=currency))
            held[currency] += amount
    instants = sorted(anchor + timedelta(seconds=offset) for offset, *_ in plan)
    for txn, instant in zip(made, instants, strict=True):
        backdate(txn, to=instant)
    return list(BalanceEntry.objects.filter(user_id=user.pk))


def edges(entries, zone: ZoneInfo, anchor: datetime) -> st.SearchStrategy:
    """A window edge: none, a change's instant (or a microsecond either side), a local
    midnight or hour boundary near the history, or any instant around it."""
    moments = sorted({e.created_at for e in entries})
    near = [anchor + timedelta(hours=h) for h in range(-40, 41, 4)]
    boundaries = sorted(
        {
            datetime.combine(m.astimezone(zone).date(), datetime.min.time(), zone).astimezone(UTC)
            for m in near
        }
        | {m.astimezone(zone).replace(minute=0, second=0, microsecond=0) for m in moments}
    )
    return st.one_of(
        st.none(),
        st.sampled_from(moments),
        st.sampled_from(moments).map(lambda m: m - ONE_MICROSECOND),
        st.sampled_from(moments).map(lambda m: m + ONE_MICROSECOND),
        st.sampled_from(boundaries),
        st.integers(-40 * 3600, 40 * 3600).map(lambda s: anchor + timedelta(seconds=s)),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(zone_name=st.sampled_from(sorted(ANCHORS)), plan=movements, data=st.data())
def test_bucketed_history_is_each_buckets_last_change_in_the_window(db, zone_name, plan, data):
    # given a random history around a change of the clock
    user = UserFactory()
    anchor, zone = ANCHORS[zone_name], ZoneInfo(zone_name)
    entries = live_history(user, plan, anchor)
    windows = [{}] + [
        {
            "start": data.draw(edges(entries, zone, anchor), label="from"),
            "end": data.draw(edges(entries, zone, anchor), label="to"),
        }
        for _ in range(2)
    ]
    for interval in ("day", "hour"):
        for currency in (None, data.draw(st.sampled_from(CURRENCIES), label="currency")):
            for window in windows:
                query = {"interval": interval, "currency": currency, **window}
                # when
                with timezone.override(zone):
                    found = [e.id for e in selectors.list_balance_history(user_id=user.pk, **query)]
                    before = replaced_query(user_id=user.pk, **query)
                # then
                assert found == oracle(entries, zone=zone, **query), query
                assert found == before, query

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from balances import selectors
from tests.transactions.services.ledger_state import backdate
from transactions import services

pytestmark = pytest.mark.django_db


def credit(user, amount: str, currency: str = "USD"):
    return services.credit(actor=user, user=user, amount=Decimal(amount), currency=currency)


def test_balance_at_is_one_query_and_zero_before_any_entry(user, django_assert_num_queries):
    # given
    txns = [credit(user, "1.00") for _ in range(10)]
    # when / then
    with django_assert_num_queries(1):
        middle = selectors.balance_at(user_id=user.pk, currency="USD", at=txns[4].created_at)
    with django_assert_num_queries(1):
        before = selectors.balance_at(
            user_id=user.pk, currency="USD", at=txns[0].created_at - timedelta(microseconds=1)
        )
    assert middle == Decimal("5.00")
    assert before == Decimal(0)


def test_balance_at_ignores_other_currencies_and_users(user, other_user):
    # given
    credit(user, "1.00")
    credit(other_user, "50.00")
    yen = credit(user, "300", "JPY")
    # when / then
    assert selectors.balance_at(user_id=user.pk, currency="USD", at=yen.created_at) == Decimal(
        "1.00"
    )
    assert selectors.balance_at(user_id=user.pk, currency="JPY", at=yen.created_at) == Decimal(
        "300"
    )
    assert selectors.balance_at(user_id=user.pk, currency="EUR", at=yen.created_at) == Decimal(0)


def test_list_current_balances_orders_by_currency(user):
    # given
    credit(user, "1.00", "USD")
    credit(user, "1.00", "EUR")
    credit(user, "1", "JPY")
    # when
    found = list(selectors.list_current_balances(user_id=user.pk))
    # then
    assert [b.currency_id for b in found] == ["EUR", "JPY", "USD"]


def test_has_nonzero_balance(user, other_user):
    # given
    credit(user, "1.00")
    services.debit(actor=user, user=user, amount=Decimal("1.00"), currency="USD")
    credit(other_user, "1", "JPY")
    # when / then
    assert selectors.has_nonzero_balance(user_id=user.pk) is False
    assert selectors.has_nonzero_balance(user_id=other_user.pk) is True


@pytest.mark.parametrize("interval", [None, "hour", "day"])
def test_list_balance_history_is_one_query(user, interval, django_assert_num_queries):
    # given changes spread over two days, three per hour
    start = datetime(2026, 5, 1, 22, tzinfo=UTC)
    for i in range(9):
        backdate(credit(user, "1.00"), to=start + timedelta(minutes=20 * i))
    window = {"start": start, "end": start + timedelta(days=2), "currency": "USD"}
    # when
    with django_assert_num_queries(1):
        rows = list(selectors.list_balance_history(user_id=user.pk, interval=interval, **window))
    # then
    expected = {None: 9, "hour": 3, "day": 2}[interval]
    assert len(rows) == expected
    assert rows[-1].balance_after == Decimal("9.00")


@pytest.mark.parametrize("bounds", [{}, {"start"}, {"end"}])
def test_list_balance_history_reads_an_omitted_bound_first(user, bounds, django_assert_num_queries):
    # given
    start = datetime(2026, 5, 1, 22, tzinfo=UTC)
    for i in range(9):
        backdate(credit(user, "1.00"), to=start + timedelta(minutes=20 * i))
    window = {"start": start, "end": start + timedelta(days=2)}
    given = {name: window[name] for name in bounds}
    # when / then: the first or last change, then the buckets
    with django_assert_num_queries(2):
        rows = list(selectors.list_balance_history(user_id=user.pk, interval="hour", **given))
    assert len(rows) == 3


def test_list_balance_history_merges_the_currencies_in_time_order(user, django_assert_num_queries):
    # given changes in three currencies, interleaved in time, two of them at one instant
    start = datetime(2026, 5, 1, 22, tzinfo=UTC)
    made = []
    for i, code in enumerate(["USD", "EUR", "JPY", "USD", "JPY", "EUR", "EUR", "USD"]):
        txn = credit(user, "1" if code == "JPY" else "1.00", code)
        backdate(txn, to=start + timedelta(minutes=10 * (i // 2 * 2)))
        made.append(txn.pk)
    # when
    with django_assert_num_queries(2):  # the user's currencies, then the merged page
        rows = list(selectors.list_balance_history(user_id=user.pk)[0:20])
    later = list(selectors.list_balance_history(user_id=user.pk).filter(created_at__gt=start)[0:20])
    # then every change once, by time then id, whatever its currency
    assert [row.transaction_id for row in rows] == made
    assert [row.transaction_id for row in later] == made[2:]

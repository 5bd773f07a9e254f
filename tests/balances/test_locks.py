"""The balance lock: an ORM queryset compiled once, read by column name, knowing no limits."""

import inspect
from decimal import Decimal

import pytest
from django.db import transaction

import balances.locks
from balances.locks import LockColumns, _compiled, _lock, _size, lock_balances, lock_queryset
from balances.models import Balance
from transactions.limits import LIMIT_COLUMNS
from transactions.models import TransferLimit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [1, 2, 3, 5, 17, 4097])
@pytest.mark.parametrize("columns", [None, LIMIT_COLUMNS], ids=["plain", "with limits"])
def test_the_lock_runs_its_querysets_compiled_sql(count, columns):
    # given
    keys = [(1000 + i, "USD") for i in range(count)]
    with transaction.atomic():  # select_for_update compiles only in a transaction
        # when
        ran = _lock(keys, columns).statement(keys)
        # then: the cached statement is the queryset's, for the keys padded with the last
        padded = keys + [keys[-1]] * (_size(count) - count)
        sql, params = lock_queryset(padded, columns).query.sql_with_params()
        assert ran == (sql, list(params))
    assert _size(count) >= count


def test_a_few_statements_serve_every_number_of_keys():
    # then: exact up to two keys, then powers of two, then multiples of 4096
    assert [_size(n) for n in (1, 2, 3, 4, 5, 1000, 4096, 4097, 20_000)] == [
        1,
        2,
        4,
        4,
        8,
        1024,
        4096,
        8192,
        20_480,
    ]
    assert 2 * _size(20_000) < 65_535  # PostgreSQL's limit on parameters


def test_a_lock_reads_each_value_by_its_column_name(funded_user):
    # given
    user = funded_user("12.50")
    TransferLimit.objects.create(
        currency_id="USD", max_per_transaction=Decimal("5.00"), reason="default rule"
    )
    TransferLimit.objects.create(
        currency_id="USD", user=user, max_per_day=Decimal("7.00"), reason="own rule"
    )
    stored = Balance.objects.get(user=user, currency_id="USD")
    # when
    with transaction.atomic():
        locked = lock_balances(keys=[(user.pk, "USD")], columns=LIMIT_COLUMNS)
    # then: the row's values, the owner's state, and the own rule over the default one
    balance = locked.balances[(user.pk, "USD")]
    assert (balance.id, balance.user_id, balance.currency) == (stored.pk, user.pk, "USD")
    assert (balance.amount, balance.entry_count, balance.head_hash) == (
        stored.amount,
        stored.entry_count,
        stored.head_hash,
    )
    assert balance.is_active is True
    assert balance.extra == {"limit_caps": [None, Decimal("7.000")]}
    assert locked.now is not None


def test_the_limits_come_in_the_locks_one_statement(funded_user, django_assert_num_queries):
    # given
    user = funded_user("1.00")
    # when / then
    with transaction.atomic(), django_assert_num_queries(1) as captured:
        lock_balances(keys=[(user.pk, "USD")], columns=LIMIT_COLUMNS)
    assert "FOR UPDATE" in captured.captured_queries[0]["sql"]
    assert "transfer_limits" in captured.captured_queries[0]["sql"]


def test_balances_know_nothing_of_limits():
    # then: the plain lock reads no limit, and the module never names one
    with transaction.atomic():
        assert "transfer_limits" not in _compiled(2, None).sql
    assert "limit" not in inspect.getsource(balances.locks).lower()


def test_extra_columns_may_not_hide_the_locks_own():
    with pytest.raises(ValueError, match="amount"):
        LockColumns(amount=None)

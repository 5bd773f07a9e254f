"""The database is the last word: it refuses what the application must never write."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from transactions.models import Transaction

pytestmark = pytest.mark.django_db


def run_sql(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_balance_cannot_be_set_below_zero(funded_user):
    # given
    owner = funded_user("10.00")
    balance = Balance.objects.get(user=owner)
    # when / then
    with pytest.raises(IntegrityError, match="balance_amount_non_negative"), transaction.atomic():
        run_sql("UPDATE balances SET amount = -1 WHERE id = %s", [balance.pk])
    assert Balance.objects.get(pk=balance.pk).amount == Decimal("10.00")


def test_a_transaction_amount_must_be_positive(funded_user):
    # given
    owner = funded_user("10.00")
    txn = Transaction.objects.get(to_user=owner)
    # when / then
    with pytest.raises(IntegrityError, match="transaction_amount_positive"), transaction.atomic():
        run_sql("UPDATE transactions SET amount = 0 WHERE id = %s", [txn.pk])


def test_a_second_balance_for_the_same_user_and_currency_is_refused(funded_user):
    # given
    owner = funded_user("10.00")
    # when / then
    with pytest.raises(IntegrityError, match="balance_unique_user_currency"), transaction.atomic():
        Balance.objects.create(user=owner, currency_id="USD")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE balance_entries SET delta = delta + 1 WHERE id = %s",
        "UPDATE balance_entries SET created_at = now() WHERE id = %s",
        "DELETE FROM balance_entries WHERE id = %s",
    ],
)
def test_balance_entries_are_append_only(funded_user, sql):
    # given
    owner = funded_user("10.00")
    entry = BalanceEntry.objects.get(user=owner)
    # when / then
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        run_sql(sql, [entry.pk])
    assert BalanceEntry.objects.get(pk=entry.pk).delta == Decimal("10.00")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_logs SET details = '{}'::jsonb WHERE id = %s",
        "UPDATE audit_logs SET hash = 'forged' WHERE id = %s",
        "DELETE FROM audit_logs WHERE id = %s",
    ],
)
def test_audit_log_rows_are_append_only(funded_user, sql):
    # given
    owner = funded_user("10.00")
    event = AuditLog.objects.filter(action="balance.changed", details__user_id=owner.pk).get()
    # when / then
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        run_sql(sql, [event.pk])
    assert AuditLog.objects.get(pk=event.pk).hash == event.hash


def test_the_orm_cannot_delete_an_entry_either(funded_user):
    # given
    owner = funded_user("10.00")
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        BalanceEntry.objects.filter(user=owner).delete()
    assert BalanceEntry.objects.filter(user=owner).count() == 1

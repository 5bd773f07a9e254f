from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from tests.transactions.services.ledger_state import (
    assert_chain_intact,
    assert_unchanged,
    ledger_snapshot,
)
from transactions import services
from transactions.models import TransactionStatus, TransactionType
from wallet_project.errors import AccountInactiveError, InsufficientFundsError

pytestmark = pytest.mark.django_db


def test_debit_takes_money_to_the_world_account(funded_user):
    # given
    owner = funded_user("100.00")
    # when
    txn = services.debit(
        actor=owner, user=owner, amount=Decimal("30.25"), currency="USD", reference="w-1"
    )
    # then
    txn.refresh_from_db()
    assert (txn.type, txn.status) == (TransactionType.DEBIT, TransactionStatus.COMPLETED)
    assert (txn.from_user_id, txn.to_user_id) == (owner.pk, None)
    assert txn.balance_after == Decimal("69.75")
    assert Balance.objects.get(user=owner).amount == Decimal("69.75")
    legs = {
        (e.user_id, e.delta, e.balance_after) for e in BalanceEntry.objects.filter(transaction=txn)
    }
    assert legs == {(owner.pk, Decimal("-30.25"), Decimal("69.75")), (None, Decimal("30.25"), None)}


def test_debit_may_empty_the_balance(funded_user):
    # given
    owner = funded_user("12.34")
    # when
    txn = services.debit(actor=owner, user=owner, amount=Decimal("12.34"), currency="USD")
    # then
    assert txn.balance_after == Decimal(0)
    assert Balance.objects.get(user=owner).amount == Decimal(0)


def test_debit_extends_the_balance_chain(funded_user):
    # given
    owner = funded_user("10.00")
    # when
    txn = services.debit(actor=owner, user=owner, amount=Decimal("4.00"), currency="USD")
    # then
    balance = Balance.objects.get(user=owner)
    events = assert_chain_intact(f"balance:{balance.pk}")
    assert events[0].action == "balance.opened"
    assert [e.details["delta"] for e in events[1:]] == ["10.00", "-4.00"]
    assert events[-1].details["transaction_id"] == str(txn.pk)
    assert balance.head_hash == events[-1].hash
    assert AuditLog.objects.filter(action="transaction.completed", entity_id=str(txn.pk)).exists()


def test_debit_refuses_more_than_the_balance_and_changes_nothing(funded_user):
    # given
    owner = funded_user("10.00")
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientFundsError) as refused:
        services.debit(actor=owner, user=owner, amount=Decimal("10.01"), currency="USD")
    # then
    assert refused.value.code == "insufficient_funds"
    assert refused.value.http_status == 422
    assert refused.value.details["currency"] == "USD"
    assert refused.value.details["available"] == "10.00"
    assert_unchanged(before)


def test_debit_refuses_a_user_without_a_balance(user):
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientFundsError) as refused:
        services.debit(actor=user, user=user, amount=Decimal("0.01"), currency="USD")
    # then
    assert refused.value.details == {"currency": "USD", "available": "0.00"}
    assert_unchanged(before)


def test_debit_does_not_spend_another_currency(funded_user):
    # given
    owner = funded_user("100.00", "USD")
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientFundsError):
        services.debit(actor=owner, user=owner, amount=Decimal("1.00"), currency="EUR")
    # then
    assert_unchanged(before)


def test_debit_refuses_an_inactive_account_and_changes_nothing(funded_user):
    # given
    owner = funded_user("10.00")
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    before = ledger_snapshot()
    # when
    with pytest.raises(AccountInactiveError) as refused:
        services.debit(actor=owner, user=owner, amount=Decimal("1.00"), currency="USD")
    # then
    assert refused.value.code == "account_inactive"
    assert_unchanged(before)

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from tests.accounts.factories import UserFactory
from tests.transactions.services.ledger_state import (
    assert_chain_intact,
    assert_unchanged,
    ledger_snapshot,
)
from transactions import services
from transactions.models import TransactionStatus, TransactionType
from wallet_project.errors import AccountInactiveError

pytestmark = pytest.mark.django_db


def test_credit_adds_money_from_the_world_account(user, admin_user):
    # when
    txn = services.credit(
        actor=admin_user,
        user=user,
        amount=Decimal("25.50"),
        currency="USD",
        description="deposit",
        reference="dep-1",
    )
    # then
    txn.refresh_from_db()
    assert txn.type == TransactionType.CREDIT
    assert txn.status == TransactionStatus.COMPLETED
    assert (txn.from_user_id, txn.to_user_id) == (None, user.pk)
    assert txn.amount == Decimal("25.50")
    assert (txn.description, txn.reference) == ("deposit", "dep-1")
    assert txn.initiated_by_id == admin_user.pk
    assert txn.completed_at == txn.created_at
    balance = Balance.objects.get(user=user, currency="USD")
    assert balance.amount == Decimal("25.50")
    assert balance.entry_count == 1


def test_credit_posts_one_user_leg_and_one_world_leg(user):
    # when
    txn = services.credit(actor=user, user=user, amount=Decimal("10.00"), currency="EUR")
    # then
    legs = {
        (e.user_id, e.delta, e.balance_after) for e in BalanceEntry.objects.filter(transaction=txn)
    }
    assert legs == {(user.pk, Decimal("10.00"), Decimal("10.00")), (None, Decimal("-10.00"), None)}
    world = BalanceEntry.objects.get(transaction=txn, user__isnull=True)
    assert world.balance_id is None
    assert world.currency_id == "EUR"
    assert world.created_at == txn.created_at


def test_successive_credits_carry_the_running_balance(user):
    # when
    for amount in ("1.00", "2.50", "0.25"):
        services.credit(actor=user, user=user, amount=Decimal(amount), currency="USD")
    # then
    entries = BalanceEntry.objects.filter(user=user).order_by("created_at", "id")
    assert [(e.delta, e.balance_after) for e in entries] == [
        (Decimal("1.00"), Decimal("1.00")),
        (Decimal("2.50"), Decimal("3.50")),
        (Decimal("0.25"), Decimal("3.75")),
    ]


def test_credit_balance_after_is_the_new_balance(funded_user):
    # given
    owner = funded_user("40.00")
    # when
    txn = services.credit(actor=owner, user=owner, amount=Decimal("2.00"), currency="USD")
    # then
    assert txn.balance_after == Decimal("42.00")
    assert txn.balance_owner_id == owner.pk


def test_credit_records_transaction_and_balance_events(user, admin_user):
    # when
    txn = services.credit(actor=admin_user, user=user, amount=Decimal("5.00"), currency="USD")
    # then
    balance = Balance.objects.get(user=user, currency="USD")
    completed = AuditLog.objects.get(action="transaction.completed", entity_id=str(txn.pk))
    assert completed.entity_type == "transaction"
    assert completed.chain == f"txn:{txn.pk}"
    assert completed.prev_hash == ""
    assert completed.actor_id == admin_user.pk
    assert completed.details["amount"] == "5.00"
    assert completed.details["to_user_id"] == user.pk
    changed = AuditLog.objects.get(action="balance.changed", entity_id=str(balance.pk))
    assert changed.chain == f"balance:{balance.pk}"
    assert changed.details == {
        "user_id": user.pk,
        "currency": "USD",
        "delta": "5.00",
        "balance_after": "5.00",
        "transaction_id": str(txn.pk),
        "seq": 1,
    }
    assert balance.head_hash == changed.hash
    assert_chain_intact(f"txn:{txn.pk}")


def test_balance_events_form_one_chain_per_balance(user):
    # given
    for amount in ("1.00", "2.00", "3.00"):
        services.credit(actor=user, user=user, amount=Decimal(amount), currency="USD")
    services.credit(actor=user, user=user, amount=Decimal("7"), currency="JPY")
    usd = Balance.objects.get(user=user, currency="USD")
    jpy = Balance.objects.get(user=user, currency="JPY")
    # when
    usd_events = assert_chain_intact(f"balance:{usd.pk}")
    jpy_events = assert_chain_intact(f"balance:{jpy.pk}")
    # then
    assert [e.details["seq"] for e in usd_events] == [0, 1, 2, 3]
    assert [e.action for e in usd_events[:2]] == ["balance.opened", "balance.changed"]
    assert [e.details["balance_after"] for e in usd_events[1:]] == ["1.00", "3.00", "6.00"]
    assert usd.head_hash == usd_events[-1].hash
    assert [e.details["balance_after"] for e in jpy_events[1:]] == ["7"]
    assert jpy.head_hash == jpy_events[-1].hash


def test_credit_refuses_an_inactive_account_and_changes_nothing(funded_user):
    # given
    owner = funded_user("10.00")
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    before = ledger_snapshot()
    # when
    with pytest.raises(AccountInactiveError) as refused:
        services.credit(actor=owner, user=owner, amount=Decimal("1.00"), currency="USD")
    # then
    assert refused.value.code == "account_inactive"
    assert refused.value.http_status == 422
    assert_unchanged(before)


def test_credit_refuses_an_inactive_account_without_a_balance():
    # given
    owner = UserFactory(is_active=False)
    before = ledger_snapshot()
    # when
    with pytest.raises(AccountInactiveError):
        services.credit(actor=owner, user=owner, amount=Decimal("1.00"), currency="USD")
    # then
    assert_unchanged(before)
    assert not Balance.objects.filter(user=owner).exists()

from decimal import Decimal

import pytest

from accounts.selectors import user_reference
from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from tests.transactions.services.ledger_state import (
    assert_chain_intact,
    assert_unchanged,
    ledger_snapshot,
)
from transactions import services
from transactions.models import TransactionStatus, TransactionType
from wallet_project.errors import (
    AccountInactiveError,
    InsufficientFundsError,
    NotFoundError,
    SameAccountError,
)

pytestmark = pytest.mark.django_db


def test_transfer_moves_money_between_two_users(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    # when
    txn = services.transfer(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal("20.00"),
        currency="USD",
        description="rent",
    )
    # then
    txn.refresh_from_db()
    assert (txn.type, txn.status) == (TransactionType.TRANSFER, TransactionStatus.COMPLETED)
    assert (txn.from_user_id, txn.to_user_id) == (sender.pk, other_user.pk)
    assert Balance.objects.get(user=sender).amount == Decimal("30.00")
    assert Balance.objects.get(user=other_user).amount == Decimal("20.00")
    assert txn.balance_after == Decimal("30.00")
    assert txn.balance_owner_id == sender.pk


def test_transfer_posts_two_user_legs_and_no_world_leg(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    services.credit(actor=other_user, user=other_user, amount=Decimal("5.00"), currency="USD")
    # when
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("20.00"), currency="USD"
    )
    # then
    legs = {
        (e.user_id, e.delta, e.balance_after) for e in BalanceEntry.objects.filter(transaction=txn)
    }
    assert legs == {
        (sender.pk, Decimal("-20.00"), Decimal("30.00")),
        (other_user.pk, Decimal("20.00"), Decimal("25.00")),
    }
    assert not BalanceEntry.objects.filter(transaction=txn, user__isnull=True).exists()


def test_transfer_writes_one_event_per_balance_and_one_for_the_transaction(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    # when
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("1.00"), currency="USD"
    )
    # then
    assert (
        AuditLog.objects.filter(action="transaction.completed", entity_id=str(txn.pk)).count() == 1
    )
    changed = AuditLog.objects.filter(action="balance.changed", details__transaction_id=str(txn.pk))
    assert sorted(e.details["user_id"] for e in changed) == sorted([sender.pk, other_user.pk])
    for balance in Balance.objects.filter(user__in=[sender, other_user]):
        events = assert_chain_intact(f"balance:{balance.pk}")
        assert balance.head_hash == events[-1].hash
    assert_chain_intact(f"txn:{txn.pk}")


def test_transfer_creates_the_recipients_balance_in_that_currency(funded_user, other_user):
    # given
    sender = funded_user("1000", "JPY")
    # when
    services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("300"), currency="JPY"
    )
    # then
    assert Balance.objects.get(user=other_user, currency="JPY").amount == Decimal("300")
    assert not Balance.objects.filter(user=other_user, currency="USD").exists()


def test_transfer_refuses_more_than_the_balance_and_changes_nothing(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientFundsError) as refused:
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=other_user,
            amount=Decimal("10.01"),
            currency="USD",
        )
    # then
    assert refused.value.code == "insufficient_funds"
    assert_unchanged(before)
    assert not Balance.objects.filter(user=other_user).exists()


def test_transfer_refuses_the_same_account_and_changes_nothing(funded_user):
    # given
    owner = funded_user("10.00")
    before = ledger_snapshot()
    # when
    with pytest.raises(SameAccountError) as refused:
        services.transfer(
            actor=owner, sender=owner, recipient=owner, amount=Decimal("1.00"), currency="USD"
        )
    # then
    assert refused.value.code == "same_account"
    assert refused.value.http_status == 422
    assert_unchanged(before)


def test_transfer_refuses_an_inactive_sender_and_changes_nothing(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    sender.is_active = False
    sender.save(update_fields=["is_active"])
    before = ledger_snapshot()
    # when
    with pytest.raises(AccountInactiveError) as refused:
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=other_user,
            amount=Decimal("1.00"),
            currency="USD",
        )
    # then
    assert refused.value.code == "account_inactive"
    assert_unchanged(before)


def test_transfer_refuses_an_inactive_recipient_and_changes_nothing(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    other_user.is_active = False
    other_user.save(update_fields=["is_active"])
    before = ledger_snapshot()
    # when
    with pytest.raises(AccountInactiveError) as refused:
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=other_user,
            amount=Decimal("1.00"),
            currency="USD",
        )
    # then
    assert refused.value.code == "account_inactive"
    assert refused.value.details == {"user_id": other_user.pk}
    assert_unchanged(before)
    assert not Balance.objects.filter(user=other_user).exists()


def test_opposite_transfers_in_sequence_net_out(funded_user):
    # given
    alice = funded_user("10.00")
    bob = funded_user("10.00")
    # when
    services.transfer(
        actor=alice, sender=alice, recipient=bob, amount=Decimal("3.00"), currency="USD"
    )
    services.transfer(
        actor=bob, sender=bob, recipient=alice, amount=Decimal("3.00"), currency="USD"
    )
    # then
    assert Balance.objects.get(user=alice).amount == Decimal("10.00")
    assert Balance.objects.get(user=bob).amount == Decimal("10.00")
    assert Balance.objects.get(user=alice).entry_count == 3


def test_a_transfer_to_a_user_that_does_not_exist_is_not_found_and_writes_nothing(funded_user):
    # given: the recipient named by id only, as the API names it
    sender = funded_user("50.00")
    before = ledger_snapshot()
    # when
    with pytest.raises(NotFoundError) as refused:
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=user_reference(user_id=987654321),
            amount=Decimal("1.00"),
            currency="USD",
        )
    # then: no balance row was created for it, nothing moved
    assert refused.value.details == {"to_user_id": ["Unknown user."]}
    assert not Balance.objects.filter(user_id=987654321).exists()
    assert_unchanged(before)


def test_a_transfer_to_a_user_named_by_id_reaches_them(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    # when
    txn = services.transfer(
        actor=sender,
        sender=sender,
        recipient=user_reference(user_id=other_user.pk),
        amount=Decimal("7.00"),
        currency="USD",
    )
    # then
    assert txn.to_user_id == other_user.pk
    assert Balance.objects.get(user=other_user, currency_id="USD").amount == Decimal("7.00")

import uuid
from decimal import Decimal

import pytest

from accounts.models import User
from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from tests.transactions.services.ledger_state import (
    assert_chain_intact,
    assert_unchanged,
    ledger_snapshot,
)
from transactions import services
from transactions.models import Transaction, TransactionStatus, TransactionType
from wallet_project.errors import (
    ConflictError,
    InsufficientFundsError,
    InvalidStateError,
    NotFoundError,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(funded_user, other_user):
    """A completed transfer of 20.00 from a sender holding 50.00 to `other_user`."""
    sender = funded_user("50.00")
    return services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("20.00"), currency="USD"
    )


def amount_of(user_id: int, currency: str = "USD") -> Decimal:
    return Balance.objects.get(user_id=user_id, currency=currency).amount


def test_reverse_moves_a_transfer_back_and_marks_it_reversed(paid, admin_user):
    # when
    reversal = services.reverse(actor=admin_user, transaction_id=paid.pk, reason="fraud")
    # then
    paid.refresh_from_db()
    reversal.refresh_from_db()
    assert paid.status == TransactionStatus.REVERSED
    assert (reversal.type, reversal.status) == (
        TransactionType.REVERSAL,
        TransactionStatus.COMPLETED,
    )
    assert reversal.reversal_of_id == paid.pk
    assert (reversal.from_user_id, reversal.to_user_id) == (paid.to_user_id, paid.from_user_id)
    assert reversal.amount == paid.amount
    assert reversal.description == "fraud"
    assert reversal.initiated_by_id == admin_user.pk
    assert amount_of(paid.from_user_id) == Decimal("50.00")
    assert amount_of(paid.to_user_id) == Decimal("0.00")
    assert paid.reversed_by == reversal


def test_reversal_entries_mirror_the_original(paid, admin_user):
    # when
    reversal = services.reverse(actor=admin_user, transaction_id=paid.pk, reason="error")
    # then
    original = {(e.user_id, e.delta) for e in BalanceEntry.objects.filter(transaction=paid)}
    mirrored = {(e.user_id, -e.delta) for e in BalanceEntry.objects.filter(transaction=reversal)}
    assert original == mirrored
    assert reversal.balance_after == Decimal("0.00")
    assert reversal.balance_owner_id == paid.to_user_id


def test_reverse_extends_the_original_transactions_chain(paid, admin_user):
    # when
    reversal = services.reverse(actor=admin_user, transaction_id=paid.pk, reason="chargeback")
    # then
    events = assert_chain_intact(f"txn:{paid.pk}")
    assert [e.action for e in events] == ["transaction.completed", "transaction.reversed"]
    assert events[-1].details["reversed_by"] == str(reversal.pk)
    assert events[-1].details["reason"] == "chargeback"
    assert events[-1].details["status"] == "reversed"
    assert events[-1].actor_id == admin_user.pk
    assert_chain_intact(f"txn:{reversal.pk}")
    for balance in Balance.objects.filter(user_id__in=[paid.from_user_id, paid.to_user_id]):
        chain = assert_chain_intact(f"balance:{balance.pk}")
        assert chain[-1].details["transaction_id"] == str(reversal.pk)
        assert balance.head_hash == chain[-1].hash


def test_reverse_a_credit_takes_the_money_back_to_the_world(user, admin_user):
    # given
    credit = services.credit(actor=admin_user, user=user, amount=Decimal("9.00"), currency="USD")
    # when
    reversal = services.reverse(actor=admin_user, transaction_id=credit.pk, reason="bounced")
    # then
    assert (reversal.from_user_id, reversal.to_user_id) == (user.pk, None)
    assert amount_of(user.pk) == Decimal(0)
    world = BalanceEntry.objects.get(transaction=reversal, user__isnull=True)
    assert world.delta == Decimal("9.00")


def test_reverse_a_debit_returns_the_money_from_the_world(funded_user, admin_user):
    # given
    owner = funded_user("9.00")
    debit = services.debit(actor=owner, user=owner, amount=Decimal("4.00"), currency="USD")
    # when
    reversal = services.reverse(actor=admin_user, transaction_id=debit.pk, reason="refund")
    # then
    assert (reversal.from_user_id, reversal.to_user_id) == (None, owner.pk)
    assert reversal.balance_after == Decimal("9.00")
    assert amount_of(owner.pk) == Decimal("9.00")


def test_reverse_is_allowed_on_a_frozen_account(paid, admin_user):
    # given
    User.objects.filter(pk=paid.to_user_id).update(is_active=False)
    # when
    services.reverse(actor=admin_user, transaction_id=paid.pk, reason="frozen")
    # then
    assert amount_of(paid.to_user_id) == Decimal(0)


def test_reverse_twice_is_a_conflict_and_changes_nothing(paid, admin_user):
    # given
    services.reverse(actor=admin_user, transaction_id=paid.pk, reason="first")
    before = ledger_snapshot()
    # when
    with pytest.raises(ConflictError) as refused:
        services.reverse(actor=admin_user, transaction_id=paid.pk, reason="second")
    # then
    assert refused.value.code == "conflict"
    assert refused.value.http_status == 409
    assert_unchanged(before)


def test_a_reversal_cannot_be_reversed(paid, admin_user):
    # given
    reversal = services.reverse(actor=admin_user, transaction_id=paid.pk, reason="first")
    before = ledger_snapshot()
    # when
    with pytest.raises(InvalidStateError) as refused:
        services.reverse(actor=admin_user, transaction_id=reversal.pk, reason="undo")
    # then
    assert refused.value.code == "invalid_state"
    assert refused.value.http_status == 422
    assert_unchanged(before)


@pytest.mark.parametrize("status", [TransactionStatus.PENDING, TransactionStatus.FAILED])
def test_only_a_completed_transaction_can_be_reversed(funded_user, other_user, admin_user, status):
    # given an asynchronous transfer that is still queued, or that the worker failed
    sender = funded_user("5.00")
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("50.00"),
        currency="USD",
    )
    if status == TransactionStatus.FAILED:
        services.process_pending_transaction(transaction_id=txn.pk)
    txn.refresh_from_db()
    assert txn.status == status
    before = ledger_snapshot()
    # when
    with pytest.raises(InvalidStateError) as refused:
        services.reverse(actor=admin_user, transaction_id=txn.pk, reason="nope")
    # then
    assert refused.value.code == "invalid_state"
    assert_unchanged(before)


def test_reverse_refuses_when_the_recipient_spent_the_money(paid, admin_user):
    # given
    recipient = paid.to_user
    services.debit(actor=recipient, user=recipient, amount=Decimal("15.00"), currency="USD")
    before = ledger_snapshot()
    # when
    with pytest.raises(InsufficientFundsError) as refused:
        services.reverse(actor=admin_user, transaction_id=paid.pk, reason="late")
    # then
    assert refused.value.code == "insufficient_funds"
    assert_unchanged(before)
    assert Transaction.objects.get(pk=paid.pk).status == TransactionStatus.COMPLETED


@pytest.mark.parametrize(
    "transaction_id",
    [
        uuid.uuid4(),
        None,
        12,
        "not-a-uuid",
        "",
    ],
)
def test_reverse_an_unknown_transaction_is_not_found(admin_user, transaction_id):
    # given
    before = ledger_snapshot()
    # when
    with pytest.raises(NotFoundError) as refused:
        services.reverse(actor=admin_user, transaction_id=transaction_id, reason="x")
    # then
    assert refused.value.code == "not_found"
    assert_unchanged(before)


def test_reverse_records_who_reversed_and_why(paid, admin_user):
    # when
    services.reverse(actor=admin_user, transaction_id=paid.pk, reason="customer complaint")
    # then
    event = AuditLog.objects.get(action="transaction.reversed", entity_id=str(paid.pk))
    assert event.actor_id == admin_user.pk
    assert event.details["reason"] == "customer complaint"


def test_a_reversed_transaction_keeps_its_completion_time(funded_user, other_user, admin_user):
    # given
    sender = funded_user("40.00")
    original = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("10.00"), currency="USD"
    )
    completed_at = Transaction.objects.get(pk=original.pk).completed_at
    # when
    services.reverse(actor=admin_user, transaction_id=original.pk, reason="duplicate")
    # then
    reversed_row = Transaction.objects.get(pk=original.pk)
    assert reversed_row.status == "reversed"
    assert reversed_row.completed_at == completed_at
    assert reversed_row.failure_code is None

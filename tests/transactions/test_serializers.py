"""The transaction's rendered shape equals what DRF's declared fields would build, in every state."""

from decimal import Decimal

import pytest

from tests.accounts.factories import UserFactory
from transactions import services
from transactions.models import Transaction, TransactionType
from transactions.serializers import TransactionSerializer

pytestmark = pytest.mark.django_db


def both(txn: Transaction, viewer) -> tuple[dict, dict]:
    serializer = TransactionSerializer(txn, context={"viewer": viewer})
    return serializer.to_representation(txn), serializer.field_representation(txn)


def test_a_fresh_transfer_renders_as_the_declared_fields_do_for_every_viewer(funded_user):
    # given
    sender = funded_user("100.00")
    recipient, admin = UserFactory(), UserFactory(role="admin")
    # when
    txn = services.transfer(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal("12.30"),
        currency="USD",
        description="rent",
        reference="inv-7",
    )
    # then
    for viewer in (sender, recipient, admin, None):
        fast, fields = both(txn, viewer)
        assert fast == fields
        assert list(fast) == list(fields)
    assert both(txn, sender)[0]["balance_after"] == "87.70"
    assert both(txn, recipient)[0]["balance_after"] is None
    assert both(txn, sender)[0]["created_at"].endswith("Z")


@pytest.mark.parametrize(("currency", "amount"), [("JPY", "1500"), ("KWD", "1.250")])
def test_amounts_keep_their_currency_digits(funded_user, currency, amount):
    # given
    user = funded_user(amount, currency)
    # when
    txn = Transaction.objects.get(to_user=user, currency_id=currency)
    # then
    fast, fields = both(txn, user)
    assert fast == fields
    assert fast["amount"] == amount


def test_a_reversed_transfer_and_its_reversal_render_their_links(funded_user):
    # given
    sender = funded_user("50.00")
    recipient, admin = UserFactory(), UserFactory(role="admin")
    original = services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal("5"), currency="USD"
    )
    reversal = services.reverse(actor=admin, transaction_id=original.pk, reason="mistake")
    # when
    stored_original = Transaction.objects.get(pk=original.pk)
    stored_reversal = Transaction.objects.get(pk=reversal.pk)
    # then
    for txn in (stored_original, stored_reversal, reversal):
        fast, fields = both(txn, admin)
        assert fast == fields
    assert both(stored_original, admin)[0]["reversed_by"] == str(reversal.pk)
    assert both(stored_reversal, admin)[0]["reversal_of"] == str(original.pk)
    assert both(stored_original, admin)[0]["status"] == "reversed"


def test_a_failed_pending_transaction_renders_its_failure_code(user, other_user):
    # given
    txn = services.create_pending(
        actor=user,
        kind=TransactionType.TRANSFER,
        from_user=user,
        to_user=other_user,
        amount=Decimal("9.99"),
        currency="USD",
    )
    # when
    services.process_pending_transaction(transaction_id=txn.pk)
    failed = Transaction.objects.get(pk=txn.pk)
    # then
    fast, fields = both(failed, user)
    assert fast == fields
    assert fast["failure_code"] == "insufficient_funds"
    assert fast["completed_at"] is None or fast["completed_at"].endswith("Z")


def test_a_list_renders_each_item_the_same_way(funded_user):
    # given
    user = funded_user("10.00")
    other = UserFactory()
    services.transfer(actor=user, sender=user, recipient=other, amount=Decimal(1), currency="USD")
    txns = list(Transaction.objects.order_by("created_at"))
    # when
    rendered = TransactionSerializer(txns, many=True, context={"viewer": None}).data
    # then
    assert rendered == [TransactionSerializer(t).field_representation(t) for t in txns]


def test_movement_inputs_bind_their_own_copies_of_the_declared_fields():
    # given
    from transactions.serializers import TransferInputSerializer

    first = TransferInputSerializer(data={"to_user_id": 7, "amount": "1.50"})
    second = TransferInputSerializer(data={"to_user_id": "x", "amount": "1.505"})
    # when
    first_ok, second_ok = first.is_valid(), second.is_valid()
    # then: each instance validated with its own bound fields
    assert first_ok
    assert not second_ok
    assert first.validated_data["amount"] == Decimal("1.50")
    assert set(second.errors) == {"to_user_id"}
    assert first.fields["amount"] is not second.fields["amount"]
    assert first.fields["amount"].parent is first
    assert second.fields["amount"].parent is second
    declared = TransferInputSerializer._declared_fields["amount"]
    assert declared is not first.fields["amount"]
    assert declared.parent is None

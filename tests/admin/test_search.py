"""Console search: a pasted UUID finds exactly its record, or the rows that belong to it."""

from decimal import Decimal

import pytest

from tests.accounts.factories import UserFactory
from transactions import services

pytestmark = pytest.mark.django_db


def shown(response) -> list:
    return list(response.context["cl"].result_list)


def test_a_transaction_id_finds_that_transaction_only(admin_console, paid):
    # given
    sender, recipient, txn = paid
    other = services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal(1), currency="USD"
    )
    # when
    response = admin_console.get("/admin/transactions/transaction/", {"q": str(txn.pk)})
    # then
    assert response.status_code == 200
    assert [t.pk for t in shown(response)] == [txn.pk]
    assert other.pk != txn.pk


def test_a_transaction_id_finds_its_balance_entries(admin_console, paid):
    # given
    _, _, txn = paid
    # when
    response = admin_console.get("/admin/balances/balanceentry/", {"q": f"  {txn.pk} "})
    # then
    entries = shown(response)
    assert len(entries) == 2
    assert {e.transaction_id for e in entries} == {txn.pk}
    assert sum(e.delta for e in entries) == 0


def test_a_batch_id_finds_its_items(admin_console, funded_user):
    # given
    sender = funded_user("100.00")
    recipients = UserFactory.create_batch(2)
    items = [
        services.BatchItemInput(to_user_id=r.pk, amount=Decimal(1), currency="USD")
        for r in recipients
    ]
    batch = services.create_batch(actor=sender, items=items, atomic=True)
    services.create_batch(actor=sender, items=items[:1], atomic=True)
    # when
    response = admin_console.get("/admin/transactions/transferbatchitem/", {"q": str(batch.pk)})
    # then
    assert sorted(i.index for i in shown(response)) == [0, 1]
    assert {i.batch_id for i in shown(response)} == {batch.pk}


def test_text_that_is_not_a_uuid_searches_as_usual(admin_console, paid):
    # when
    response = admin_console.get("/admin/transactions/transaction/", {"q": "no-such-thing"})
    # then
    assert response.status_code == 200
    assert shown(response) == []

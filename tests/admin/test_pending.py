"""Queued (pending) transactions: cancel or requeue them from the console."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import BalanceEntry
from transactions import services as money_services
from transactions.models import Transaction, TransactionStatus, TransactionType

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(funded_user, other_user):
    """A transfer accepted for the worker pool and not processed yet."""
    sender = funded_user("50.00")
    return money_services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("10.00"),
        currency="USD",
    )


def test_a_pending_transaction_page_offers_cancel_and_requeue(admin_console, queued):
    # when
    page = admin_console.get(f"/admin/transactions/transaction/{queued.pk}/change/")
    # then
    body = page.content.decode()
    assert f"/admin/transactions/transaction/{queued.pk}/cancel/" in body
    assert f"/admin/transactions/transaction/{queued.pk}/requeue/" in body
    assert f"/admin/transactions/transaction/{queued.pk}/reverse/" not in body


def test_cancel_needs_a_reason(admin_console, queued):
    # when
    response = admin_console.post(
        f"/admin/transactions/transaction/{queued.pk}/cancel/", {"confirm": "yes", "reason": ""}
    )
    # then
    assert response.status_code == 200
    queued.refresh_from_db()
    assert queued.status == TransactionStatus.PENDING


def test_cancel_fails_the_transaction_without_moving_money(admin_console, admin_user, queued):
    # when
    response = admin_console.post(
        f"/admin/transactions/transaction/{queued.pk}/cancel/",
        {"confirm": "yes", "reason": "Customer asked to stop it"},
    )
    # then
    assert response.status_code == 302
    queued.refresh_from_db()
    assert (queued.status, queued.failure_code) == (TransactionStatus.FAILED, "cancelled")
    assert not BalanceEntry.objects.filter(transaction=queued).exists()
    event = AuditLog.objects.get(entity_id=str(queued.pk), action="transaction.failed")
    assert event.actor_id == admin_user.pk
    assert event.details["reason"] == "Customer asked to stop it"


def test_requeue_records_who_asked(admin_console, admin_user, queued):
    # when
    response = admin_console.post(
        f"/admin/transactions/transaction/{queued.pk}/requeue/",
        {"confirm": "yes", "reason": "The worker lost the message"},
        follow=True,
    )
    # then
    assert [m.message for m in response.context["messages"]] == [
        f"Transaction {str(queued.pk)[:8]} sent to the worker pool again."
    ]
    event = AuditLog.objects.get(entity_id=str(queued.pk), action="transaction.requeued")
    assert event.actor_id == admin_user.pk
    queued.refresh_from_db()
    assert queued.status == TransactionStatus.PENDING


def test_cancel_of_a_completed_transaction_is_refused(admin_console, paid):
    # given
    _, _, txn = paid
    # when
    response = admin_console.post(
        f"/admin/transactions/transaction/{txn.pk}/cancel/",
        {"confirm": "yes", "reason": "nope"},
        follow=True,
    )
    # then
    assert [m.message for m in response.context["messages"]] == [
        f"Cancel does not apply to transaction {str(txn.pk)[:8]}."
    ]
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED


def test_the_list_action_cancels_every_selected_pending_transaction(admin_console, queued):
    # when
    admin_console.post(
        "/admin/transactions/transaction/",
        {
            "action": "cancel_selected",
            "_selected_action": [str(queued.pk)],
            "confirm": "yes",
            "reason": "Duplicate submission",
        },
    )
    # then
    assert Transaction.objects.get(pk=queued.pk).failure_code == "cancelled"


def test_auditor_cannot_cancel(auditor_console, queued):
    # when
    response = auditor_console.post(
        f"/admin/transactions/transaction/{queued.pk}/cancel/",
        {"confirm": "yes", "reason": "no"},
    )
    # then
    assert response.status_code == 403
    queued.refresh_from_db()
    assert queued.status == TransactionStatus.PENDING

"""Reversing transactions from the console: a confirmation page, a required reason, the service."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance
from transactions import services as money_services
from transactions.models import Transaction, TransactionStatus

pytestmark = pytest.mark.django_db


def reverse_url(txn) -> str:
    return f"/admin/transactions/transaction/{txn.pk}/reverse/"


def amounts(*users) -> list[Decimal]:
    return [Balance.objects.get(user=u, currency="USD").amount for u in users]


def test_the_transaction_page_offers_reversal_to_admins_only(admin_console, auditor_console, paid):
    # given
    _, _, txn = paid
    url = f"/admin/transactions/transaction/{txn.pk}/change/"
    # when
    as_admin = admin_console.get(url).content.decode()
    as_auditor = auditor_console.get(url).content.decode()
    # then
    assert reverse_url(txn) in as_admin
    assert reverse_url(txn) not in as_auditor


def test_confirmation_page_shows_the_transaction_and_asks_for_a_reason(admin_console, paid):
    # given
    _, _, txn = paid
    # when
    response = admin_console.get(reverse_url(txn))
    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert str(txn.pk) in page
    assert "30.00 USD back from" in page
    assert 'name="reason"' in page
    assert 'value="yes"' in page


@pytest.mark.parametrize("reason", ["", "   "])
def test_reversal_without_a_reason_changes_nothing(admin_console, paid, reason):
    # given
    sender, recipient, txn = paid
    # when
    response = admin_console.post(reverse_url(txn), {"confirm": "yes", "reason": reason})
    # then the page comes back with the error, and nothing moved
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED
    assert not Transaction.objects.filter(reversal_of=txn).exists()
    assert amounts(sender, recipient) == [Decimal("70.00"), Decimal("30.00")]


def test_reversal_with_a_reason_moves_the_money_back_and_is_audited(
    admin_console, admin_user, paid
):
    # given
    sender, recipient, txn = paid
    # when
    response = admin_console.post(
        reverse_url(txn), {"confirm": "yes", "reason": "Chargeback from the card issuer"}
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == f"/admin/transactions/transaction/{txn.pk}/change/"
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.REVERSED
    reversal = Transaction.objects.get(reversal_of=txn)
    assert reversal.initiated_by_id == admin_user.pk
    assert reversal.description == "Chargeback from the card issuer"
    assert amounts(sender, recipient) == [Decimal("100.00"), Decimal("0.00")]
    event = AuditLog.objects.get(entity_id=str(txn.pk), action="transaction.reversed")
    assert event.actor_id == admin_user.pk
    assert event.details["reason"] == "Chargeback from the card issuer"
    # and the success message names the reversal
    page = admin_console.get(response["Location"]).content.decode()
    assert "reversed by" in page
    assert str(reversal.pk)[:8] in page


def test_a_refused_reversal_is_shown_as_an_error_and_changes_nothing(admin_console, paid):
    # given the recipient has spent the money
    sender, recipient, txn = paid
    money_services.debit(actor=recipient, user=recipient, amount=Decimal("25.00"), currency="USD")
    # when
    response = admin_console.post(
        reverse_url(txn), {"confirm": "yes", "reason": "Customer dispute"}, follow=True
    )
    # then
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages == [
        (
            "error",
            "Could not reverse transaction "
            f"{str(txn.pk)[:8]}: The balance is too low for this operation. (insufficient_funds)",
        )
    ]
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED
    assert amounts(sender, recipient) == [Decimal("70.00"), Decimal("5.00")]


def test_a_reversed_transaction_cannot_be_reversed_again(admin_console, admin_user, paid):
    # given
    _, _, txn = paid
    money_services.reverse(actor=admin_user, transaction_id=txn.pk, reason="first")
    # when
    response = admin_console.post(
        reverse_url(txn), {"confirm": "yes", "reason": "again"}, follow=True
    )
    # then
    messages = [m.message for m in response.context["messages"]]
    assert messages == [f"Reverse does not apply to transaction {str(txn.pk)[:8]}."]
    assert Transaction.objects.filter(reversal_of=txn).count() == 1


def test_list_action_confirms_then_reverses_the_selection(admin_console, admin_user, funded_user):
    # given two completed credits
    first = funded_user("10.00")
    second = funded_user("20.00")
    credits = list(Transaction.objects.filter(to_user__in=[first, second]))
    selection = [str(t.pk) for t in credits]
    # when the action is chosen
    page = admin_console.post(
        "/admin/transactions/transaction/",
        {"action": "reverse_selected", "_selected_action": selection, "index": "0"},
    )
    # then a confirmation page lists them and asks for a reason
    assert page.status_code == 200
    body = page.content.decode()
    assert "Reverse transactions" in body
    assert all(pk in body for pk in selection)
    assert Transaction.objects.filter(reversal_of__in=credits).count() == 0
    # when confirmed with a reason
    done = admin_console.post(
        "/admin/transactions/transaction/",
        {
            "action": "reverse_selected",
            "_selected_action": selection,
            "confirm": "yes",
            "reason": "Deposits sent by mistake",
        },
    )
    # then both are reversed, by the admin
    assert done.status_code == 302
    reversals = Transaction.objects.filter(reversal_of__in=credits)
    assert reversals.count() == 2
    assert set(reversals.values_list("initiated_by_id", flat=True)) == {admin_user.pk}
    assert Balance.objects.get(user=first).amount == Decimal("0.00")
    assert Balance.objects.get(user=second).amount == Decimal("0.00")


def test_list_action_without_a_reason_changes_nothing(admin_console, paid):
    # given
    _, _, txn = paid
    # when
    response = admin_console.post(
        "/admin/transactions/transaction/",
        {
            "action": "reverse_selected",
            "_selected_action": [str(txn.pk)],
            "confirm": "yes",
            "reason": "",
        },
    )
    # then
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED


def test_list_action_refuses_a_selection_holding_a_reversal(admin_console, admin_user, paid):
    # given
    _, _, txn = paid
    reversal = money_services.reverse(actor=admin_user, transaction_id=txn.pk, reason="first")
    # when
    response = admin_console.post(
        "/admin/transactions/transaction/",
        {"action": "reverse_selected", "_selected_action": [str(reversal.pk)], "index": "0"},
        follow=True,
    )
    # then
    messages = [m.message for m in response.context["messages"]]
    assert messages == [f"Reverse does not apply to: transaction {str(reversal.pk)[:8]}"]
    assert not Transaction.objects.filter(reversal_of=reversal).exists()

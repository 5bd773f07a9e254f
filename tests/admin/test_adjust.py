"""Manual adjustments: enter, review, apply; recorded as normal credits and debits."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from transactions.models import Transaction, TransactionType
from transactions.services.adjustments import adjust_balance
from wallet_project.errors import PermissionDeniedError, ValidationFailedError

pytestmark = pytest.mark.django_db

TOKEN = "0123456789abcdef0123456789abcdef"


def adjust_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/adjust/"


def form(**overrides) -> dict:
    data = {
        "direction": "debit",
        "currency": "USD",
        "amount": "15.00",
        "kind": "chargeback",
        "reason": "Card chargeback, case 9001",
        "token": TOKEN,
    }
    return {**data, **overrides}


def test_the_form_page_shows_the_current_balances(admin_console, funded_user):
    # given
    owner = funded_user("40.00")
    # when
    response = admin_console.get(adjust_url(owner))
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "40.00" in body
    assert 'name="reason"' in body
    assert 'name="review"' in body


def test_review_shows_the_balance_before_and_after_and_moves_nothing(admin_console, funded_user):
    # given
    owner = funded_user("40.00")
    # when
    response = admin_console.post(adjust_url(owner), {"review": "yes", **form()})
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Confirm the adjustment" in body
    assert "40.00 USD" in body
    assert "25.00 USD" in body
    assert 'name="confirm"' in body
    assert Balance.objects.get(user=owner).amount == Decimal("40.00")


@pytest.mark.parametrize(
    ("field", "value"),
    [("reason", ""), ("reason", "  "), ("amount", "0"), ("amount", "1.001"), ("amount", "ten")],
)
def test_an_invalid_adjustment_is_refused_with_nothing_moved(
    admin_console, funded_user, field, value
):
    # given
    owner = funded_user("40.00")
    # when confirmed directly with a bad field
    response = admin_console.post(adjust_url(owner), {"confirm": "yes", **form(**{field: value})})
    # then
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert Balance.objects.get(user=owner).amount == Decimal("40.00")
    assert Transaction.objects.filter(to_user=owner).count() == 1
    assert not Transaction.objects.filter(from_user=owner).exists()


def test_a_confirmed_chargeback_debits_the_user_as_the_admin(
    admin_console, admin_user, funded_user
):
    # given
    owner = funded_user("40.00")
    # when
    response = admin_console.post(adjust_url(owner), {"confirm": "yes", **form()})
    # then
    assert response.status_code == 302
    assert Balance.objects.get(user=owner).amount == Decimal("25.00")
    txn = Transaction.objects.get(from_user=owner)
    assert txn.type == TransactionType.DEBIT
    assert txn.initiated_by_id == admin_user.pk
    assert txn.description == "Manual adjustment (chargeback): Card chargeback, case 9001"
    event = AuditLog.objects.get(entity_id=str(txn.pk), action="transaction.completed")
    assert event.actor_id == admin_user.pk
    assert "Card chargeback, case 9001" in event.details["description"]


def test_a_goodwill_credit_adds_money(admin_console, user):
    # when
    admin_console.post(
        adjust_url(user),
        {"confirm": "yes", **form(direction="credit", kind="goodwill", amount="5", currency="EUR")},
    )
    # then
    assert Balance.objects.get(user=user, currency="EUR").amount == Decimal("5.00")


def test_a_debit_beyond_the_balance_is_shown_as_an_error(admin_console, funded_user):
    # given
    owner = funded_user("10.00")
    # when
    response = admin_console.post(
        adjust_url(owner), {"confirm": "yes", **form(amount="10.01")}, follow=True
    )
    # then
    messages = [(m.level_tag, m.message) for m in response.context["messages"]]
    assert messages == [
        (
            "error",
            f"Could not adjust the balance of {owner}: The balance is too low for this "
            "operation. (insufficient_funds)",
        )
    ]
    assert Balance.objects.get(user=owner).amount == Decimal("10.00")


def test_submitting_the_same_confirmation_twice_moves_money_once(admin_console, funded_user):
    # given
    owner = funded_user("40.00")
    # when the confirmation is sent twice (a double click, a resent form)
    first = admin_console.post(adjust_url(owner), {"confirm": "yes", **form()}, follow=True)
    second = admin_console.post(adjust_url(owner), {"confirm": "yes", **form()}, follow=True)
    # then
    assert Balance.objects.get(user=owner).amount == Decimal("25.00")
    assert Transaction.objects.filter(from_user=owner).count() == 1
    assert "Adjustment applied" in next(m.message for m in first.context["messages"])
    assert "already applied" in next(m.message for m in second.context["messages"])


def test_adjust_balance_refuses_an_actor_who_is_not_an_admin(auditor, user):
    # when / then
    with pytest.raises(PermissionDeniedError):
        adjust_balance(
            actor=auditor,
            user=user,
            direction="credit",
            amount=Decimal("5.00"),
            currency="USD",
            kind="goodwill",
            reason="nice",
        )
    assert not Balance.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"reason": " "}, "reason"), ({"kind": "gift"}, "kind"), ({"direction": "up"}, "direction")],
)
def test_adjust_balance_refuses_bad_input(admin_user, user, overrides, field):
    # given
    arguments = {
        "actor": admin_user,
        "user": user,
        "direction": "credit",
        "amount": Decimal("5.00"),
        "currency": "USD",
        "kind": "goodwill",
        "reason": "nice",
        **overrides,
    }
    # when / then
    with pytest.raises(ValidationFailedError) as refused:
        adjust_balance(**arguments)
    assert field in refused.value.details
    assert not Balance.objects.filter(user=user).exists()


def test_adjusting_a_frozen_account_is_refused(admin_user, admin_console):
    # given
    frozen = UserFactory(role="user", is_active=False)
    # when
    response = admin_console.post(
        adjust_url(frozen), {"confirm": "yes", **form(direction="credit")}, follow=True
    )
    # then
    assert "account_inactive" in next(m.message for m in response.context["messages"])
    assert not Balance.objects.filter(user=frozen, amount__gt=0).exists()

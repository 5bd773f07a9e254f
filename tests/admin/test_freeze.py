"""Freezing and unfreezing accounts from the console, with a reason."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_freeze_page_asks_for_a_reason(admin_console, user):
    # when
    response = admin_console.get(f"/admin/accounts/user/{user.pk}/freeze/")
    # then
    assert response.status_code == 200
    assert "cannot log in" in response.content.decode()


def test_freeze_without_a_reason_changes_nothing(admin_console, user):
    # when
    response = admin_console.post(
        f"/admin/accounts/user/{user.pk}/freeze/", {"confirm": "yes", "reason": ""}
    )
    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.is_active


def test_freeze_with_a_reason_freezes_and_is_audited(admin_console, admin_user, funded_user):
    # given
    owner = funded_user("20.00")
    # when
    response = admin_console.post(
        f"/admin/accounts/user/{owner.pk}/freeze/",
        {"confirm": "yes", "reason": "Suspected account takeover"},
    )
    # then
    assert response.status_code == 302
    owner.refresh_from_db()
    assert not owner.is_active
    assert Balance.objects.get(user=owner).amount == Decimal("20.00")
    event = AuditLog.objects.get(entity_id=str(owner.pk), action="user.frozen")
    assert event.actor_id == admin_user.pk
    assert event.details["reason"] == "Suspected account takeover"


def test_unfreeze_reactivates_and_is_audited(admin_console, admin_user):
    # given
    frozen = UserFactory(role="user", is_active=False)
    # when
    admin_console.post(
        f"/admin/accounts/user/{frozen.pk}/unfreeze/",
        {"confirm": "yes", "reason": "Identity confirmed by phone"},
    )
    # then
    frozen.refresh_from_db()
    assert frozen.is_active
    event = AuditLog.objects.get(entity_id=str(frozen.pk), action="user.unfrozen")
    assert (event.actor_id, event.details["reason"]) == (
        admin_user.pk,
        "Identity confirmed by phone",
    )


def test_an_admin_cannot_freeze_their_own_account(admin_console, admin_user):
    # when
    response = admin_console.post(
        f"/admin/accounts/user/{admin_user.pk}/freeze/",
        {"confirm": "yes", "reason": "oops"},
        follow=True,
    )
    # then
    messages = [m.message for m in response.context["messages"]]
    assert messages == [
        f"Could not freeze {admin_user}: You cannot freeze your own account. (permission_denied)"
    ]
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_the_list_action_freezes_the_selected_users(admin_console):
    # given
    first, second = UserFactory(role="user"), UserFactory(role="user")
    # when the action is chosen, then confirmed
    page = admin_console.post(
        "/admin/accounts/user/",
        {"action": "freeze_selected", "_selected_action": [first.pk, second.pk], "index": "0"},
    )
    admin_console.post(
        "/admin/accounts/user/",
        {
            "action": "freeze_selected",
            "_selected_action": [first.pk, second.pk],
            "confirm": "yes",
            "reason": "Fraud ring",
        },
    )
    # then
    assert "Freeze users" in page.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert not first.is_active
    assert not second.is_active
    assert AuditLog.objects.filter(action="user.frozen", details__reason="Fraud ring").count() == 2

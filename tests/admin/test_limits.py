"""Transfer limits in the console: admins add and change rules with a reason; auditors read."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from transactions.models import TransferLimit

pytestmark = pytest.mark.django_db

ADD = "/admin/transactions/transferlimit/add/"
LIST = "/admin/transactions/transferlimit/"


def form(**overrides) -> dict:
    data = {
        "currency": "USD",
        "user": "",
        "max_per_transaction": "250.00",
        "max_per_day": "",
        "is_active": "on",
        "change_reason": "Card fraud wave",
    }
    data.update(overrides)
    return data


def test_an_admin_adds_a_default_rule_with_a_reason(admin_console, admin_user):
    # when
    response = admin_console.post(ADD, form())
    # then
    assert response.status_code == 302
    limit = TransferLimit.objects.get()
    assert limit.max_per_transaction == Decimal("250.00")
    assert limit.user_id is None
    assert limit.updated_by == admin_user
    assert limit.reason == "Card fraud wave"
    assert AuditLog.objects.filter(entity_type="transfer_limit", action="limit.created").exists()
    listing = admin_console.get(LIST)
    assert listing.status_code == 200
    assert b"everyone (default)" in listing.content
    assert b"250.00 USD" in listing.content


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"change_reason": ""}, b"This field is required"),
        ({"max_per_transaction": ""}, b"Set at least one cap"),
        ({"max_per_transaction": "0"}, b"more than zero"),
        ({"max_per_transaction": "", "max_per_day": "-5"}, b"more than zero"),
    ],
)
def test_a_bad_rule_is_shown_on_the_form_and_not_saved(admin_console, overrides, message):
    # when
    response = admin_console.post(ADD, form(**overrides))
    # then
    assert response.status_code == 200
    assert message in response.content
    assert b"Constraint" not in response.content
    assert not TransferLimit.objects.exists()


def test_a_second_active_default_is_refused_on_the_form(admin_console):
    # given
    admin_console.post(ADD, form())
    # when
    response = admin_console.post(ADD, form(max_per_transaction="10.00"))
    # then
    assert response.status_code == 200
    assert b"already has an active limit rule" in response.content
    assert TransferLimit.objects.count() == 1


def test_auditors_read_rules_but_cannot_add_or_change_them(admin_console, auditor_console):
    # given
    admin_console.post(ADD, form())
    limit = TransferLimit.objects.get()
    # when
    listing = auditor_console.get(LIST)
    add = auditor_console.post(ADD, form(max_per_transaction="1.00"))
    change = auditor_console.post(f"{LIST}{limit.pk}/change/", form(max_per_transaction="1.00"))
    # then
    assert listing.status_code == 200
    assert add.status_code == 403
    assert change.status_code in (302, 403)
    limit.refresh_from_db()
    assert limit.max_per_transaction == Decimal("250.00")

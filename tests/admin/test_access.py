"""Who may enter the console, who may act, and what no form can change."""

from decimal import Decimal

import pytest
from django.test import Client

from balances.models import Balance, BalanceEntry
from tests.accounts.factories import PASSWORD, UserFactory
from tests.admin.conftest import console_for
from transactions.models import Transaction, TransactionStatus

pytestmark = pytest.mark.django_db

LIST_PAGES = [
    "/admin/",
    "/admin/dashboard/",
    "/admin/accounts/user/",
    "/admin/transactions/transaction/",
    "/admin/money/currency/",
    "/admin/transactions/idempotencykey/",
    "/admin/balances/balance/",
    "/admin/balances/balanceentry/",
    "/admin/audit/auditlog/",
    "/admin/audit/auditseal/",
    "/admin/audit/reconciliationrun/",
]

LEDGER_MODELS = [
    "balances/balance",
    "balances/balanceentry",
    "transactions/transaction",
    "audit/auditlog",
]


def test_anonymous_visitor_is_sent_to_the_login_page():
    # when
    response = Client().get("/admin/")
    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_ordinary_user_cannot_log_in_to_the_console(user):
    # given
    client = Client()
    # when
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    # then the form refuses, and the console stays closed
    assert response.status_code == 200
    assert "back-office account" in response.content.decode()
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("url", LIST_PAGES)
def test_ordinary_user_with_a_session_cannot_open_any_console_page(user_console, url):
    # when
    response = user_console.get(url)
    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_admins_and_auditors_log_in_with_the_form(role):
    # given
    staff = UserFactory(role=role, is_staff=True)
    client = Client()
    # when
    response = client.post(
        "/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD}
    )
    # then
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_entry_follows_the_role_not_the_staff_flag():
    # given an auditor without the staff flag, and a plain user who has it
    auditor = UserFactory(role="auditor", is_staff=False)
    staff_flagged_user = UserFactory(role="user", is_staff=True)
    # when / then
    assert console_for(auditor).get("/admin/").status_code == 200
    assert console_for(staff_flagged_user).get("/admin/").status_code == 302


def test_a_superuser_enters_whatever_the_role():
    # given
    superuser = UserFactory(role="user", is_superuser=True)
    # when
    response = console_for(superuser).get("/admin/transactions/transaction/")
    # then
    assert response.status_code == 200
    assert 'name="action"' in response.content.decode()


def test_a_frozen_admin_is_logged_out_of_the_console():
    # given
    staff = UserFactory(role="admin", is_staff=True)
    client = console_for(staff)
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    # when
    response = client.get("/admin/")
    # then
    assert response.status_code == 302


@pytest.mark.parametrize("url", LIST_PAGES)
def test_admin_and_auditor_open_every_list_page(admin_console, auditor_console, paid, url):
    # when / then
    assert admin_console.get(url).status_code == 200
    assert auditor_console.get(url).status_code == 200


def test_auditor_sees_no_actions_and_admin_does(admin_console, auditor_console, paid):
    # when
    as_auditor = auditor_console.get("/admin/transactions/transaction/").content.decode()
    as_admin = admin_console.get("/admin/transactions/transaction/").content.decode()
    # then
    assert 'name="action"' not in as_auditor
    assert "reverse_selected" not in as_auditor
    assert "reverse_selected" in as_admin


def test_auditor_posting_an_action_changes_nothing(auditor_console, paid):
    # given
    _, recipient, txn = paid
    # when the auditor forges the action's confirmation
    auditor_console.post(
        "/admin/transactions/transaction/",
        {
            "action": "reverse_selected",
            "_selected_action": [str(txn.pk)],
            "confirm": "yes",
            "reason": "I should not be able to",
        },
    )
    # then
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED
    assert not Transaction.objects.filter(reversal_of=txn).exists()
    assert Balance.objects.get(user=recipient).amount == Decimal("30.00")


@pytest.mark.parametrize(
    "path",
    [
        "transactions/transaction/{txn}/reverse/",
        "accounts/user/{sender}/adjust/",
        "accounts/user/{sender}/freeze/",
        "accounts/user/{sender}/unfreeze/",
    ],
)
def test_auditor_cannot_open_or_post_any_change_page(auditor_console, paid, path):
    # given
    sender, _, txn = paid
    url = "/admin/" + path.format(txn=txn.pk, sender=sender.pk)
    # when
    opened = auditor_console.get(url)
    posted = auditor_console.post(url, {"confirm": "yes", "reason": "no"})
    # then
    assert opened.status_code == 403
    assert posted.status_code == 403
    sender.refresh_from_db()
    assert sender.is_active
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED


def test_auditor_may_read_a_user_page_and_download_a_statement(auditor_console, paid):
    # given
    sender, _, _ = paid
    # when
    page = auditor_console.get(f"/admin/accounts/user/{sender.pk}/change/")
    statement = auditor_console.get(
        f"/admin/accounts/user/{sender.pk}/statement/",
        {"currency": "USD", "start": "2000-01-01", "end": "2100-01-01"},
    )
    # then
    assert page.status_code == 200
    assert "Adjust balance" not in page.content.decode()
    assert statement.status_code == 200
    assert statement["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize("model", LEDGER_MODELS)
def test_no_one_can_add_to_the_ledger_from_a_form(admin_console, model):
    # when
    response = admin_console.get(f"/admin/{model}/add/")
    # then
    assert response.status_code == 403


def test_a_form_cannot_edit_a_balance(admin_console, funded_user):
    # given
    owner = funded_user("50.00")
    balance = Balance.objects.get(user=owner)
    url = f"/admin/balances/balance/{balance.pk}/change/"
    # when
    page = admin_console.get(url)
    posted = admin_console.post(url, {"amount": "1000000.00", "entry_count": "1"})
    # then the page is view-only, the post is refused, the balance unchanged
    assert page.status_code == 200
    assert 'name="amount"' not in page.content.decode()
    assert posted.status_code == 403
    balance.refresh_from_db()
    assert balance.amount == Decimal("50.00")


def test_a_form_cannot_edit_a_transaction(admin_console, paid):
    # given
    _, _, txn = paid
    # when
    posted = admin_console.post(
        f"/admin/transactions/transaction/{txn.pk}/change/",
        {"status": "failed", "amount": "1.00"},
    )
    # then
    assert posted.status_code == 403
    txn.refresh_from_db()
    assert (txn.status, txn.amount) == (TransactionStatus.COMPLETED, Decimal("30.00"))


@pytest.mark.parametrize("model", LEDGER_MODELS)
def test_no_one_can_delete_ledger_rows(admin_console, paid, model):
    # given
    _, _, txn = paid
    entry = BalanceEntry.objects.filter(transaction=txn).first()
    balance = Balance.objects.get(pk=entry.balance_id)
    from audit.models import AuditLog

    pk = {
        "balances/balance": balance.pk,
        "balances/balanceentry": entry.pk,
        "transactions/transaction": txn.pk,
        "audit/auditlog": AuditLog.objects.order_by("id").first().pk,
    }[model]
    # when
    response = admin_console.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"})
    # then
    assert response.status_code == 403
    assert Transaction.objects.filter(pk=txn.pk).exists()


def test_users_are_never_edited_from_a_form(admin_console, user):
    # when
    add = admin_console.get("/admin/accounts/user/add/")
    change = admin_console.post(
        f"/admin/accounts/user/{user.pk}/change/", {"role": "admin", "is_active": "on"}
    )
    # then
    assert add.status_code == 403
    assert change.status_code == 403
    user.refresh_from_db()
    assert user.role == "user"


def test_the_delete_selected_action_is_not_offered(admin_console, paid):
    # when
    page = admin_console.get("/admin/accounts/user/").content.decode()
    # then
    assert "delete_selected" not in page
    assert "freeze_selected" in page


def test_changing_ones_password_goes_through_the_service_and_is_audited(admin_user):
    # given
    from audit.models import AuditLog

    client = Client()
    client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})
    # when
    response = client.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Another-Horse-77",
            "new_password2": "Another-Horse-77",
        },
    )
    # then
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.check_password("Another-Horse-77")
    event = AuditLog.objects.filter(entity_id=str(admin_user.pk), action="user.updated").get()
    assert event.details["changes"]["password"] == {"changed": True}
    assert client.get("/admin/").status_code == 200  # this session stays open


def test_a_wrong_current_password_changes_nothing(admin_console, admin_user):
    # when
    response = admin_console.post(
        "/admin/password_change/",
        {
            "old_password": "not-it",
            "new_password1": "Another-Horse-77",
            "new_password2": "Another-Horse-77",
        },
    )
    # then
    assert response.status_code == 200
    admin_user.refresh_from_db()
    assert admin_user.check_password(PASSWORD)

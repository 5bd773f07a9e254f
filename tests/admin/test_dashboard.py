"""The operations dashboard: the day's activity, the queue, reconciliation and the audit chain."""

from decimal import Decimal

import pytest

from audit.models import ReconciliationRun
from audit.reconciliation import reconcile
from transactions import services as money_services
from transactions.models import TransactionType

pytestmark = pytest.mark.django_db


def test_counts_and_volume_of_the_day(admin_console, paid, admin_user):
    # given a credit of 100.00, a transfer of 30.00 (paid) and a reversed 10.00 credit
    sender, _, _ = paid
    refund = money_services.credit(
        actor=admin_user, user=sender, amount=Decimal("10.00"), currency="USD"
    )
    money_services.reverse(actor=admin_user, transaction_id=refund.pk, reason="duplicate")
    # when
    response = admin_console.get("/admin/dashboard/")
    # then
    activity = response.context["activity"]
    by_type = {row["type"]: row for row in activity["by_type"]}
    statuses = activity["statuses"]
    assert by_type["credit"]["cells"][statuses.index("completed")] == 1
    assert by_type["credit"]["cells"][statuses.index("reversed")] == 1
    assert by_type["transfer"]["total"] == 1
    assert by_type["reversal"]["total"] == 1
    assert activity["grand_total"] == 4
    [usd] = activity["by_currency"]
    types = activity["types"]
    assert usd["currency"] == "USD"
    assert usd["cells"][types.index("credit")] == "110.00"
    assert usd["cells"][types.index("transfer")] == "30.00"
    assert usd["total"] == "150.00"


def test_pending_transactions_are_listed_oldest_first(admin_console, funded_user, other_user):
    # given two queued transfers
    sender = funded_user("50.00")
    queued = [
        money_services.create_pending(
            actor=sender,
            kind=TransactionType.TRANSFER,
            from_user=sender,
            to_user=other_user,
            amount=Decimal(amount),
            currency="USD",
        )
        for amount in ("1.00", "2.00")
    ]
    # when
    response = admin_console.get("/admin/dashboard/")
    # then
    assert response.context["pending_count"] == 2
    assert [row["txn"].pk for row in response.context["pending"]] == [t.pk for t in queued]
    assert "Open the queue" in response.content.decode()


def test_the_last_reconciliation_and_the_audit_chain_are_shown(admin_console, paid):
    # given
    run = reconcile()
    # when
    response = admin_console.get("/admin/dashboard/")
    # then
    assert response.context["reconciliation"]["ok"] is run.ok is True
    assert response.context["audit_chain"] == "ok"
    body = response.content.decode()
    assert "Reconciled" in body


def test_without_reconciliation_the_dashboard_says_so(admin_console):
    # when
    body = admin_console.get("/admin/dashboard/").content.decode()
    # then
    assert "No reconciliation has run yet." in body
    assert "Not checked yet" in body


def test_an_admin_can_run_the_reconciliation_from_the_dashboard(admin_console, paid):
    # when
    response = admin_console.post("/admin/dashboard/reconcile/", follow=True)
    # then
    run = ReconciliationRun.objects.get()
    assert run.ok
    assert [m.message for m in response.context["messages"]] == [
        f"Reconciliation #{run.pk}: the ledger reconciles."
    ]


def test_an_auditor_cannot_run_the_reconciliation(auditor_console):
    # when
    response = auditor_console.post("/admin/dashboard/reconcile/")
    # then
    assert response.status_code == 403
    assert not ReconciliationRun.objects.exists()


def test_another_day_can_be_shown(admin_console, paid):
    # when
    response = admin_console.get("/admin/dashboard/", {"day": "2000-01-01"})
    # then
    assert response.context["activity"]["grand_total"] == 0
    assert "No money moved on this day." in response.content.decode()


def test_the_index_links_to_the_dashboard(admin_console, auditor_console):
    # when / then
    for console in (admin_console, auditor_console):
        body = console.get("/admin/").content.decode()
        assert "/admin/dashboard/" in body
        assert "Pending transactions" in body

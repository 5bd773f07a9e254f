"""CSV exports: the filtered transaction list, and a user's statement for a period."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditLog
from transactions import services as money_services

pytestmark = pytest.mark.django_db


def rows_of(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_the_export_honours_the_changelist_filters(admin_console, admin_user, paid):
    # given a credit (funding), a transfer (paid)
    sender, recipient, txn = paid
    # when
    response = admin_console.get(
        "/admin/transactions/transaction/export/", {"type__exact": "transfer"}
    )
    # then
    header, *rows = rows_of(response)
    assert header[:7] == [
        "id",
        "created_at",
        "completed_at",
        "type",
        "status",
        "amount",
        "currency",
    ]
    assert [(r[0], r[3], r[5], r[8], r[10]) for r in rows] == [
        (str(txn.pk), "transfer", "30.00", sender.username, recipient.username)
    ]
    event = AuditLog.objects.get(action="admin.transactions_exported")
    assert event.actor_id == admin_user.pk
    assert event.details["filters"] == {"type__exact": "transfer"}


def test_the_export_honours_search_and_the_party_filter(admin_console, paid, funded_user):
    # given someone else's money too
    sender, _, _ = paid
    funded_user("5.00")
    # when
    by_party = rows_of(
        admin_console.get("/admin/transactions/transaction/export/", {"party": sender.pk})
    )
    by_search = rows_of(
        admin_console.get("/admin/transactions/transaction/export/", {"q": sender.username})
    )
    # then
    assert sorted(r[3] for r in by_party[1:]) == ["credit", "transfer"]
    assert sorted(r[3] for r in by_search[1:]) == ["credit", "transfer"]


def test_the_changelist_links_its_filters_to_the_export(admin_console, paid):
    # when
    body = admin_console.get("/admin/transactions/transaction/", {"status__exact": "completed"})
    # then
    assert (
        "/admin/transactions/transaction/export/?status__exact=completed" in body.content.decode()
    )


def test_text_cells_cannot_run_as_spreadsheet_formulas(admin_console, funded_user):
    # given
    owner = funded_user("1.00")
    money_services.credit(
        actor=owner, user=owner, amount=Decimal("1.00"), currency="USD", description="=HYPERLINK(1)"
    )
    # when
    rows = rows_of(admin_console.get("/admin/transactions/transaction/export/"))
    # then
    descriptions = {r[11] for r in rows[1:]}
    assert "'=HYPERLINK(1)" in descriptions
    assert "=HYPERLINK(1)" not in descriptions


def test_an_auditor_may_export(auditor_console, paid):
    # when
    response = auditor_console.get("/admin/transactions/transaction/export/")
    # then
    header, *rows = rows_of(response)
    assert header[0] == "id"
    assert sorted(r[3] for r in rows) == ["credit", "transfer"]


def test_invalid_filters_redirect_with_an_error(admin_console):
    # when
    response = admin_console.get("/admin/transactions/transaction/export/", {"nope__gt": "1"})
    # then
    assert response.status_code == 302


def statement(console, user, **params):
    return console.get(f"/admin/accounts/user/{user.pk}/statement/", params)


def test_a_statement_of_today_opens_at_zero_and_lists_every_entry(admin_console, paid):
    # given the sender: +100.00, then -30.00, today
    sender, recipient, txn = paid
    today = timezone.localdate().isoformat()
    # when
    rows = rows_of(statement(admin_console, sender, currency="USD", start=today, end=today))
    # then
    header, opening, *entries, closing = rows
    assert header == [
        "row",
        "date",
        "transaction_id",
        "type",
        "description",
        "counterparty",
        "amount",
        "balance",
    ]
    assert (opening[0], opening[7]) == ("opening", "0.00")
    assert [(e[3], e[5], e[6], e[7]) for e in entries] == [
        ("credit", "external", "100.00", "100.00"),
        ("transfer", recipient.username, "-30.00", "70.00"),
    ]
    assert entries[1][2] == str(txn.pk)
    assert (closing[0], closing[6], closing[7]) == ("closing", "70.00", "70.00")


def test_a_statement_opens_with_the_balance_at_the_start_of_the_range(admin_console, paid):
    # given a period that starts after every entry
    sender, _, _ = paid
    later = (timezone.localdate() + timedelta(days=1)).isoformat()
    # when
    rows = rows_of(statement(admin_console, sender, currency="USD", start=later, end=later))
    # then the opening balance is the balance then, and no entry is listed
    _, opening, closing = rows
    assert (opening[0], opening[7]) == ("opening", "70.00")
    assert (closing[0], closing[6], closing[7]) == ("closing", "0.00", "70.00")


def test_a_statement_request_is_audited(auditor_console, auditor, paid):
    # given
    sender, _, _ = paid
    today = timezone.localdate().isoformat()
    # when
    rows_of(statement(auditor_console, sender, currency="USD", start=today, end=today))
    # then
    event = AuditLog.objects.get(action="admin.statement_exported")
    assert (event.actor_id, event.entity_id) == (auditor.pk, str(sender.pk))


def test_a_statement_with_the_end_before_the_start_shows_the_form_again(admin_console, paid):
    # given
    sender, _, _ = paid
    # when
    response = statement(
        admin_console, sender, currency="USD", start="2026-02-01", end="2026-01-01"
    )
    # then
    assert response.status_code == 200
    assert "The end date must not be before the start date." in response.content.decode()

"""The user page: balances per currency, recent transactions, the balance chart."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.accounts.factories import UserFactory
from transactions import services as money_services

pytestmark = pytest.mark.django_db


def user_url(user) -> str:
    return f"/admin/accounts/user/{user.pk}/change/"


def test_the_page_shows_each_balance_and_the_recent_transactions(admin_console, paid):
    # given
    sender, recipient, txn = paid
    money_services.credit(actor=sender, user=sender, amount=Decimal("1200"), currency="JPY")
    # when
    response = admin_console.get(user_url(sender))
    # then
    context = response.context
    assert [(b["currency"], b["amount"]) for b in context["wallet_balances"]] == [
        ("JPY", "1200"),
        ("USD", "70.00"),
    ]
    rows = context["wallet_recent"]
    assert [(r["txn"].type, r["sign"], r["amount"]) for r in rows] == [
        ("credit", "+", "1200"),
        ("transfer", "-", "30.00"),
        ("credit", "+", "100.00"),
    ]
    body = response.content.decode()
    assert f"/admin/transactions/transaction/{txn.pk}/change/" in body
    assert f"/admin/accounts/user/{recipient.pk}/change/" in body


def test_the_chart_is_inline_svg_with_one_step_line_per_currency(admin_console, paid):
    # given
    sender, _, _ = paid
    # when
    response = admin_console.get(user_url(sender))
    # then
    [chart] = response.context["wallet_charts"]
    assert chart.currency == "USD"
    assert chart.changes == 2
    assert chart.latest == "70.00"
    assert chart.path.startswith("M")
    assert chart.path.count("V") == 1  # one change after the first point
    body = response.content.decode()
    assert "<svg" in body
    assert 'class="line"' in body
    assert "cdn" not in body.lower()


def test_a_user_without_money_has_an_empty_page_not_an_error(admin_console, user):
    # when
    response = admin_console.get(user_url(user))
    # then
    assert response.status_code == 200
    assert "never held money" in response.content.decode()
    assert response.context["wallet_charts"] == []


def test_admins_see_the_action_buttons_and_auditors_do_not(admin_console, auditor_console, paid):
    # given
    sender, _, _ = paid
    # when
    as_admin = admin_console.get(user_url(sender)).content.decode()
    as_auditor = auditor_console.get(user_url(sender)).content.decode()
    # then
    for link in ("/freeze/", "/adjust/"):
        assert link in as_admin
        assert link not in as_auditor
    assert "/statement/" in as_auditor


def _queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_page_makes_the_same_queries_however_much_history(admin_console, funded_user):
    # given a user with a short history, and one with a longer one in more currencies
    short = funded_user("10.00")
    long = funded_user("10.00")
    other = UserFactory(role="user")
    for currency in ("EUR", "GBP"):
        money_services.credit(actor=long, user=long, amount=Decimal("50.00"), currency=currency)
    for _ in range(12):
        money_services.transfer(
            actor=long, sender=long, recipient=other, amount=Decimal("1.00"), currency="EUR"
        )
    # when / then
    assert _queries_for(admin_console, user_url(short)) == _queries_for(
        admin_console, user_url(long)
    )

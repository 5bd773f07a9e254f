"""Console fixtures: logged-in browsers (Django test clients) by role, and money that moved."""

from decimal import Decimal

import pytest
from django.test import Client

from tests.accounts.factories import UserFactory
from transactions import services as money_services


def console_for(user) -> Client:
    """A test client logged in (session) as `user`."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_console(admin_user) -> Client:
    return console_for(admin_user)


@pytest.fixture
def auditor_console(auditor) -> Client:
    return console_for(auditor)


@pytest.fixture
def user_console(user) -> Client:
    return console_for(user)


@pytest.fixture
def paid(funded_user):
    """A completed transfer of 30.00 USD from a sender funded with 100.00 to a recipient."""
    sender = funded_user("100.00")
    recipient = UserFactory(role="user")
    txn = money_services.transfer(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal("30.00"),
        currency="USD",
        description="dinner",
    )
    return sender, recipient, txn

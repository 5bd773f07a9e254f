"""Shared fixtures: clients, users by role, funded users, and the ledger check after each test."""

import contextlib
from decimal import Decimal

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from money import amounts
from money.currencies import seed_default_currencies
from money.models import Currency
from tests.accounts.factories import UserFactory
from tests.ledger import assert_ledger_holds
from transactions import services as money_services

# The statements of an API read's own transaction in a test (`ReadTimeoutMiddleware`): its
# savepoint, the limits (`SET LOCAL`), and the rollback to and release of the savepoint. In
# production the limits go with `BEGIN` in one round trip, and the read ends with `ROLLBACK`.
READ_TRANSACTION_QUERIES = 4


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    """Test-only speed-ups: a fast password hasher, eager Celery, an empty cache."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    from wallet_project.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    with contextlib.suppress(Exception):  # a Redis-outage test may have stopped it
        cache.clear()
    from balances import cache as balance_cache

    balance_cache.breaker.close()
    balance_cache._state["missed"] = False
    amounts.forget_currencies()


def _uses_database(request) -> bool:
    return request.node.get_closest_marker("django_db") is not None or bool(
        {"db", "transactional_db", "live_server"} & set(request.fixturenames)
    )


@pytest.fixture(autouse=True)
def _ledger_holds_after_each_test(request):
    """Default currencies exist in every database test (a transactional test's flush removes
    migration data), and after every database test the ledger invariants hold."""
    if not _uses_database(request):
        yield
        return
    for name in ("db", "transactional_db"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
    seed_default_currencies(Currency)
    amounts.forget_currencies()
    yield
    assert_ledger_holds()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def user(db):
    return UserFactory(role="user")


@pytest.fixture
def other_user(db):
    return UserFactory(role="user")


@pytest.fixture
def admin_user(db):
    return UserFactory(role="admin", is_staff=True)


@pytest.fixture
def auditor(db):
    return UserFactory(role="auditor", is_staff=True)


@pytest.fixture
def user_client(user) -> APIClient:
    return client_for(user)


@pytest.fixture
def admin_client(admin_user) -> APIClient:
    return client_for(admin_user)


@pytest.fixture
def auditor_client(auditor) -> APIClient:
    return client_for(auditor)


@pytest.fixture
def funded_user(db):
    """Make a user holding `amount` of `currency`, funded through `services.credit`."""

    def make(amount: str = "100.00", currency: str = "USD", user=None):
        user = user or UserFactory(role="user")
        money_services.credit(
            actor=user, user=user, amount=Decimal(amount), currency=currency, description="fund"
        )
        return user

    return make

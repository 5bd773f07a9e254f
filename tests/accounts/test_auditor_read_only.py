"""Auditors read everything and change nothing: every write route, service and console action."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.db.models import Max
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from accounts import services as account_services
from tests.conftest import client_for
from transactions import services
from transactions.models import ScheduledTransfer, TransferBatch
from transactions.services.batches import BatchItemInput
from wallet_project.errors import PermissionDeniedError

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")
# Signing in and out is not a change to the ledger or to anyone's data: every role may.
AUTH_ROUTES = {"auth-login", "auth-register", "auth-refresh", "auth-logout"}


def _api_routes() -> list[tuple[str, str, type]]:
    """(name, regex, view class) of every DRF route under /api/v1/, from the URL conf."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            regex = prefix + str(pattern.pattern.regex.pattern).lstrip("^").rstrip("$")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, regex)
            elif isinstance(pattern, URLPattern) and regex.startswith("api/v1/"):
                view_class = getattr(pattern.callback, "cls", None)
                if view_class is not None:
                    found.append((pattern.name, regex, pattern.callback))

    walk(get_resolver().url_patterns, "")
    return found


def _write_methods(callback) -> list[str]:
    actions = getattr(callback, "actions", None)  # a viewset route: method -> action
    if actions is not None:
        return [m for m in actions if m in WRITE_METHODS]
    return [m for m in WRITE_METHODS if hasattr(callback.cls, m)]


def _snapshot() -> dict[str, tuple]:
    """Row count and newest change of every table of the project's apps."""
    state = {}
    for model in apps.get_models():
        if model._meta.app_label not in {"money", "accounts", "transactions", "balances", "audit"}:
            continue
        qs = model._default_manager.all()
        stamps = {f.name for f in model._meta.fields} & {"updated_at", "last_updated_at"}
        newest = qs.aggregate(m=Max(next(iter(stamps))))["m"] if stamps else None
        state[model._meta.label] = (qs.count(), newest)
    return state


@pytest.fixture
def world(funded_user, auditor, admin_user):
    """Something of every kind an auditor could try to change, the auditor holding money."""
    sender = funded_user(amount="500.00")
    recipient = funded_user(amount="10.00")
    account_services.update_user(actor=admin_user, user=auditor, email="audit@example.com")
    services.credit(actor=admin_user, user=auditor, amount=Decimal("50.00"), currency="USD")
    txn = services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal("5.00"), currency="USD"
    )
    schedule = services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal("1.00"),
        currency="USD",
        run_at=timezone.now() + timedelta(days=1),
    )
    batch = services.create_batch(
        actor=sender,
        items=[BatchItemInput(to_user_id=recipient.pk, amount=Decimal("1.00"), currency="USD")],
        atomic=True,
    )
    services.create_pending(
        actor=sender,
        kind="transfer",
        from_user=sender,
        to_user=recipient,
        amount=Decimal("1.00"),
        currency="USD",
    )
    return {
        "sender": sender,
        "recipient": recipient,
        "txn": txn,
        "schedule": schedule,
        "batch": batch,
    }


def _path(regex: str, world) -> str:
    """A concrete path for a route: `{pk}` filled with an object of the route's kind."""
    path = regex.replace("/?", "/")
    if "(?P<pk>" not in path:
        return "/" + path
    if "users" in path:
        pk = world["sender"].pk
    elif "scheduled" in path:
        pk = world["schedule"].pk
    elif "batch" in path:
        pk = world["batch"].pk
    else:
        pk = world["txn"].pk
    head, _, rest = path.partition("(?P<pk>")
    return "/" + head + str(pk) + rest.partition(")")[2]


def test_the_walk_finds_the_write_routes():
    # when
    names = {name for name, _, callback in _api_routes() if _write_methods(callback)}
    # then a route added to a router is in the walk without being named here
    expected = {"transaction-credit", "transaction-debit", "transaction-transfer"}
    assert expected | {"transaction-reverse", "transaction-batch-list"} <= names
    assert {"scheduled-transfer-list", "scheduled-transfer-detail", "user-detail"} <= names


def test_an_auditor_is_refused_every_write_route_and_nothing_changes(world, auditor):
    # given
    client = client_for(auditor)
    before = _snapshot()
    body = {
        "amount": "1.00",
        "to_user_id": world["recipient"].pk,
        "user_id": auditor.pk,
        "reason": "no",
        "items": [{"to_user_id": world["recipient"].pk, "amount": "1.00"}],
        "run_at": (timezone.now() + timedelta(days=1)).isoformat(),
        "email": "changed@example.com",
        "username": "changed",
    }
    tried = []
    # when every write method of every API route is sent by the auditor
    for name, regex, callback in _api_routes():
        if name in AUTH_ROUTES:
            continue
        for method in _write_methods(callback):
            paths = [_path(regex, world)]
            if "users" in regex and "(?P<pk>" in regex:
                paths.append(f"/api/v1/users/{auditor.pk}/")  # their own profile too
            for path in paths:
                response = getattr(client, method)(path, body, format="json")
                tried.append((method, path))
                # then
                assert response.status_code == 403, (method, path, response.content)
                assert response.json()["error"]["code"] == "permission_denied"
    assert len(tried) >= 10
    assert _snapshot() == before


def test_an_auditor_is_refused_by_the_services_themselves(world, auditor):
    # given
    recipient = world["recipient"]
    before = _snapshot()
    attempts = [
        lambda: services.credit(actor=auditor, user=auditor, amount=Decimal(1), currency="USD"),
        lambda: services.debit(actor=auditor, user=auditor, amount=Decimal(1), currency="USD"),
        lambda: services.transfer(
            actor=auditor, sender=auditor, recipient=recipient, amount=Decimal(1), currency="USD"
        ),
        lambda: services.create_pending(
            actor=auditor,
            kind="transfer",
            from_user=auditor,
            to_user=recipient,
            amount=Decimal(1),
            currency="USD",
        ),
        lambda: services.reverse(actor=auditor, transaction_id=world["txn"].pk, reason="no"),
        lambda: services.create_batch(
            actor=auditor,
            items=[BatchItemInput(to_user_id=recipient.pk, amount=Decimal(1), currency="USD")],
            atomic=False,
        ),
        lambda: services.create_schedule(
            actor=auditor,
            sender=auditor,
            recipient=recipient,
            amount=Decimal(1),
            currency="USD",
            run_at=timezone.now() + timedelta(days=1),
        ),
        lambda: services.cancel_schedule(actor=auditor, schedule_id=world["schedule"].pk),
        lambda: account_services.update_user(actor=auditor, user=auditor, email="x@example.com"),
        lambda: account_services.deactivate_user(actor=auditor, user=recipient),
    ]
    # when / then
    for attempt in attempts:
        with pytest.raises(PermissionDeniedError):
            attempt()
    assert _snapshot() == before
    assert ScheduledTransfer.objects.get(pk=world["schedule"].pk).status == "active"
    assert TransferBatch.objects.count() == 1

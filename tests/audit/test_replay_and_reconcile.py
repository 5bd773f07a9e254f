"""Event sourcing and reconciliation: the ledger rebuilt from events alone, drift detected."""

import random
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.models import ReconciliationRun
from audit.reconciliation import reconcile
from audit.replay import replay_balances
from balances.models import Balance
from balances.selectors import balance_at
from tests.accounts.factories import UserFactory
from transactions import services
from wallet_project.errors import WalletError

pytestmark = pytest.mark.django_db


def _random_ledger(*, operations: int, users: int = 8, seed: int = 7) -> tuple[list, list]:
    """Run random credits, debits, transfers and reversals; return users and checkpoints."""
    rng = random.Random(seed)
    people = [UserFactory() for _ in range(users)]
    admin = UserFactory(role="admin")
    checkpoints = []
    done = []
    for i in range(operations):
        kind = rng.choice(["credit", "credit", "debit", "transfer", "transfer", "transfer", "rev"])
        currency = rng.choice(["USD", "USD", "JPY", "KWD"])
        amount = Decimal(rng.randint(1, 5000)).scaleb(-{"USD": 2, "JPY": 0, "KWD": 3}[currency])
        a, b = rng.sample(people, 2)
        try:
            if kind == "credit":
                done.append(services.credit(actor=a, user=a, amount=amount, currency=currency))
            elif kind == "debit":
                done.append(services.debit(actor=a, user=a, amount=amount, currency=currency))
            elif kind == "transfer":
                done.append(
                    services.transfer(
                        actor=a, sender=a, recipient=b, amount=amount, currency=currency
                    )
                )
            elif done:
                victim = rng.choice(done)
                services.reverse(actor=admin, transaction_id=victim.pk, reason="test")
        except WalletError:
            pass
        if i % 97 == 0:
            checkpoints.append(timezone.now())
    return people, checkpoints


@pytest.mark.slow
def test_replay_after_thousands_of_operations_reproduces_balances_and_history():
    # given
    _random_ledger(operations=1200)
    # when
    report = replay_balances()
    # then
    assert report.ok, (report.balance_differences, report.history_differences)
    assert report.balances == Balance.objects.filter(entry_count__gt=0).count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM balance_entries WHERE balance_id IS NOT NULL")
        assert report.events == cursor.fetchone()[0]


@pytest.mark.slow
def test_replay_until_matches_at_time_for_every_user():
    # given
    people, checkpoints = _random_ledger(operations=500, seed=11)
    for moment in checkpoints[1::3]:
        # when
        report = replay_balances(until=moment, collect=True)
        # then: the replay as of T equals balances/at-time(T) for every user and currency
        assert report.ok, report.balance_differences
        for person in people:
            for currency in ("USD", "JPY", "KWD"):
                expected = balance_at(user_id=person.pk, currency=currency, at=moment)
                assert report.replayed.get((person.pk, currency), Decimal(0)) == expected


def test_replay_until_reports_the_balance_as_of_that_instant(funded_user, other_user):
    # given
    sender = funded_user("100.00")
    services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("30.00"), currency="USD"
    )
    moment = timezone.now()
    services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("5.00"), currency="USD"
    )
    # when
    report = replay_balances(until=moment)
    # then
    assert report.ok
    assert report.events == 3
    assert balance_at(user_id=sender.pk, currency="USD", at=moment) == Decimal("70.00")


def _drift(balance: Balance, delta: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE balances SET amount = amount + %s WHERE id = %s", [Decimal(delta), balance.pk]
        )


def test_reconciliation_detects_injected_drift_and_replay_rebuild_repairs_it(funded_user, capsys):
    # given
    user = funded_user("40.00")
    assert reconcile().ok
    balance = Balance.objects.get(user=user)
    _drift(balance, "5.00")
    # when
    run = reconcile()
    # then
    assert not run.ok
    failed = {p["check"] for p in run.problems}
    assert {"zero_sum_per_currency", "balance_equals_entries"} <= failed
    assert run.checks["balance_equals_last_balance_after"] == "drift"
    with pytest.raises(CommandError, match="drift"):
        call_command("reconcile")
    with pytest.raises(CommandError, match="differs"):
        call_command("replay_events", "--no-progress")
    # when the live balances are rebuilt from the event stream
    call_command("replay_events", "--rebuild", "--no-progress")
    # then
    balance.refresh_from_db()
    assert balance.amount == Decimal("40.00")
    assert reconcile().ok
    assert ReconciliationRun.objects.filter(ok=False).exists()


def test_reconciliation_result_shows_in_health_and_metrics(funded_user, client):
    # given
    funded_user("1.00")
    reconcile()
    # when
    ready = client.get("/health/ready")
    metrics = client.get("/metrics")
    # then
    assert ready.json()["details"]["reconciliation"]["ok"] is True
    assert "wallet_ledger_reconciliation_ok 1.0" in metrics.content.decode()


def test_reconciliation_logs_an_alert_on_drift(funded_user, caplog):
    # given
    user = funded_user("3.00")
    _drift(Balance.objects.get(user=user), "-1.00")
    # when
    with caplog.at_level("ERROR", logger="wallet.reconciliation"):
        run = reconcile()
    # then
    assert not run.ok
    assert any("drift" in r.getMessage() for r in caplog.records)
    _drift(Balance.objects.get(user=user), "1.00")

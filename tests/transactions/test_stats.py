"""Transaction counters: exact Redis counters after commit, the database as the fallback."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Count
from django_redis import get_redis_connection

from tests.conftest import client_for
from transactions import services, stats
from transactions.models import Transaction, TransactionType

pytestmark = pytest.mark.django_db

STATS = "/api/v1/stats"


@pytest.fixture(autouse=True)
def _healthy_counters():
    stats._health.update(down_until=0.0, missed=False)
    yield
    stats._health.update(down_until=0.0, missed=False)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a block with its after-commit work (counters, queued tasks) executed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def database_counts() -> dict:
    by_status = dict(Transaction.objects.values_list("status").annotate(n=Count("id")))
    by_type = dict(Transaction.objects.values_list("type").annotate(n=Count("id")))
    return {"by_type": by_type, "by_status": by_status}


def some_movements(user, other, admin, committed) -> None:
    """Credits, a transfer, a reversal, an async transfer that completes and one that fails."""
    with committed():
        services.credit(actor=user, user=user, amount=Decimal("100.00"), currency="USD")
        services.credit(actor=user, user=user, amount=Decimal(1200), currency="JPY")
        original = services.transfer(
            actor=user, sender=user, recipient=other, amount=Decimal("30.00"), currency="USD"
        )
        services.reverse(actor=admin, transaction_id=original.pk, reason="duplicate")
        for amount in ("10.00", "500.00"):  # the second is refused for funds
            services.create_pending(
                actor=user,
                kind=TransactionType.TRANSFER,
                from_user=user,
                to_user=other,
                amount=Decimal(amount),
                currency="USD",
            )


def test_the_counters_follow_every_committed_change_exactly(
    user, other_user, admin_user, auditor, committed
):
    # given: ready counters (rebuilt from an empty ledger)
    stats.rebuild_counters()
    # when
    some_movements(user, other_user, admin_user, committed)
    response = client_for(auditor).get(STATS)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["source"] == "redis"
    assert body["transactions"]["by_type"] == {
        "credit": 2,
        "debit": 0,
        "transfer": 3,
        "reversal": 1,
    }
    assert body["transactions"]["by_status"] == {
        "pending": 0,
        "completed": 4,
        "failed": 1,
        "reversed": 1,
    }
    expected = database_counts()
    assert {k: v for k, v in body["transactions"]["by_status"].items() if v} == expected[
        "by_status"
    ]
    # USD: credit 100 + transfer 30 + reversal 30 + async 10; JPY: credit 1200
    assert body["volume"] == {"JPY": "1200", "USD": "170.00"}
    assert body["as_of"]


def test_counters_still_count_after_redis_forgets_its_scripts(user, auditor, committed):
    # given: ready counters, and a Redis that lost its script cache (a restart, a flush)
    stats.rebuild_counters()
    get_redis_connection("default").script_flush()
    # when
    with committed():
        services.credit(actor=user, user=user, amount=Decimal("7.00"), currency="USD")
    body = client_for(auditor).get(STATS).json()
    # then
    assert body["source"] == "redis"
    assert body["transactions"]["by_type"]["credit"] == 1
    assert body["volume"] == {"USD": "7.00"}


def test_without_ready_counters_the_database_answers(user, other_user, admin_user, committed):
    # given: Redis has nothing (it was flushed)
    some_movements(user, other_user, admin_user, committed)
    # when
    body = client_for(admin_user).get(STATS).json()
    # then
    assert body["source"] == "database"
    assert body["transactions"]["by_status"]["completed"] == 4
    assert body["volume"] == {"JPY": "1200", "USD": "170.00"}
    assert not get_redis_connection("default").exists(stats.BY_TYPE)


def test_rebuild_stats_recomputes_the_counters_from_the_database(
    user, other_user, admin_user, committed
):
    # given: counters that missed everything, then were marked ready by hand
    some_movements(user, other_user, admin_user, committed)
    redis = get_redis_connection("default")
    redis.set(stats.READY, "1")
    # when
    call_command("rebuild_stats")
    # then
    body = stats.transaction_stats()
    assert body["source"] == "redis"
    assert body["transactions"]["by_type"]["transfer"] == 3
    assert body["volume"] == {"JPY": "1200", "USD": "170.00"}


def test_a_movement_committed_during_a_rebuild_is_counted_once(
    user, admin_user, committed, monkeypatch
):
    # given: a credit commits after the rebuild read the database, before it finished
    with committed():
        services.credit(actor=user, user=user, amount=Decimal("5.00"), currency="USD")
    read = stats.counts_from_database

    def read_then_a_credit_commits() -> dict:
        counts = read()
        with committed():
            services.credit(actor=user, user=user, amount=Decimal("2.50"), currency="USD")
        return counts

    monkeypatch.setattr(stats, "counts_from_database", read_then_a_credit_commits)
    # when
    stats.rebuild_counters()
    # then
    body = stats.transaction_stats()
    assert body["source"] == "redis"
    assert body["transactions"]["by_type"]["credit"] == 2
    assert body["volume"] == {"USD": "7.50"}


def test_the_volume_is_kept_in_minor_units_for_every_currency(user, committed):
    # given
    stats.rebuild_counters()
    # when
    with committed():
        for amount, currency in (("0.10", "USD"), ("0.20", "USD"), ("1.234", "KWD"), ("7", "JPY")):
            services.credit(actor=user, user=user, amount=Decimal(amount), currency=currency)
    # then
    redis = get_redis_connection("default")
    assert redis.hgetall(stats.VOLUME) == {b"USD": b"30", b"KWD": b"1234", b"JPY": b"7"}
    assert stats.transaction_stats()["volume"] == {"JPY": "7", "KWD": "1.234", "USD": "0.30"}


def test_a_redis_outage_never_breaks_a_request(funded_user, other_user, settings, committed):
    # given: ready counters, then Redis becomes unreachable
    sender = funded_user("50.00")
    stats.rebuild_counters()
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    # when
    with committed():
        response = client_for(sender).post(
            "/api/v1/transactions/transfer",
            {"to_user_id": other_user.pk, "amount": "5.00"},
            format="json",
        )
    # then
    assert response.status_code == 201
    assert stats._health["missed"] is True
    body = stats.transaction_stats()
    assert body["source"] == "database"
    assert body["transactions"]["by_type"]["transfer"] == 1


def test_counters_that_missed_an_increment_are_not_trusted_again(
    funded_user, other_user, committed
):
    # given: ready counters, and an increment lost while Redis was down
    sender = funded_user("50.00")
    stats.rebuild_counters()
    stats._health.update(down_until=0.0, missed=True)
    # when: the next movement reaches Redis again
    with committed():
        services.transfer(
            actor=sender, sender=sender, recipient=other_user, amount=Decimal(1), currency="USD"
        )
    # then: the counters are set aside until rebuilt, and the database answers meanwhile
    assert stats.transaction_stats()["source"] == "database"
    assert stats.rebuild_counters(only_if_missing=True) is True
    assert stats.transaction_stats()["transactions"]["by_type"]["transfer"] == 1


@pytest.mark.parametrize(("who", "status"), [("user", 403), ("anonymous", 401)])
def test_only_admins_and_auditors_read_the_stats(user, api_client, who, status):
    # when
    client = client_for(user) if who == "user" else api_client
    response = client.get(STATS)
    # then
    assert response.status_code == status

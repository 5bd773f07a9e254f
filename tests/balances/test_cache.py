"""The balance cache: hits, misses, invalidation by every movement, the compare-and-set, the
breaker's fallback to PostgreSQL while Redis is unreachable, and no stale value after."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import override_settings
from django_redis import get_redis_connection

from balances import cache
from tests.conftest import client_for
from transactions import services

CURRENT = "/api/v1/balances/current"
UNREACHABLE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def results() -> dict[str, float]:
    return {name: series._value.get() for name, series in cache._results.items()}


def read(user) -> list[dict]:
    response = client_for(user).get(CURRENT)
    assert response.status_code == 200
    return response.json()["balances"]


def test_a_second_read_is_a_hit_and_equals_the_database(funded_user, committed):
    with committed():
        user = funded_user("100.00")
    before = results()
    first, second = read(user), read(user)
    after = results()
    assert (
        first
        == second
        == [{"currency": "USD", "amount": "100.00", "last_updated_at": first[0]["last_updated_at"]}]
    )
    assert after["miss"] - before["miss"] == 1
    assert after["hit"] - before["hit"] == 1


def test_transfers_and_reversals_invalidate_both_sides(
    funded_user, other_user, admin_user, committed
):
    with committed():
        user = funded_user("100.00")
    assert read(user)[0]["amount"] == "100.00"
    assert read(other_user) == []
    with committed():
        txn = services.transfer(
            actor=user, sender=user, recipient=other_user, amount=Decimal("30.00"), currency="USD"
        )
    assert read(user)[0]["amount"] == "70.00"
    assert read(other_user)[0]["amount"] == "30.00"
    with committed():
        services.reverse(actor=admin_user, transaction_id=txn.pk, reason="duplicate")
    assert read(user)[0]["amount"] == "100.00"
    assert read(other_user)[0]["amount"] == "0.00"


def test_an_older_version_never_overwrites_a_newer_one(funded_user, committed):
    with committed():
        user = funded_user("100.00")
    read(user)  # stored at version 1
    _, epoch, generation = cache._contact(lambda c, e: cache._lookup(c, e, user.pk))
    stale = [{"currency": "USD", "amount": "1.00", "last_updated_at": "x"}]
    assert not cache._store(user.pk, epoch=epoch, generation=generation, version=1, rows=stale)
    assert not cache._store(user.pk, epoch=epoch, generation=generation, version=0, rows=stale)
    assert read(user)[0]["amount"] == "100.00"


def test_a_read_that_raced_an_invalidation_is_not_stored(funded_user, committed):
    with committed():
        user = funded_user("100.00")
    _, epoch, generation = cache._contact(lambda c, e: cache._lookup(c, e, user.pk))
    cache.invalidate_users([user.pk])  # a movement committed after the reader's lookup
    rows = [{"currency": "USD", "amount": "1.00", "last_updated_at": "x"}]
    assert not cache._store(user.pk, epoch=epoch, generation=generation, version=99, rows=rows)
    assert read(user)[0]["amount"] == "100.00"


def test_redis_unreachable_reads_and_transfers_answer_then_no_stale_value(
    funded_user, other_user, committed
):
    with committed():
        user = funded_user("100.00")
    assert read(user)[0]["amount"] == "100.00"  # cached
    with override_settings(CACHES=UNREACHABLE):
        before = results()
        for _ in range(5):
            assert read(user)[0]["amount"] == "100.00"
        assert cache.breaker.current_state == "open"
        with committed():  # the invalidation cannot reach Redis: it is remembered
            response = client_for(user).post(
                "/api/v1/transactions/transfer",
                {"to_user_id": other_user.pk, "amount": "25.00", "currency": "USD"},
                format="json",
                headers={"Idempotency-Key": "cache-outage-1"},
            )
        assert response.status_code == 201, response.content
        assert read(user)[0]["amount"] == "75.00"  # from PostgreSQL
        assert results()["bypass"] - before["bypass"] >= 5
    cache.breaker.close()  # as after its reset timeout, Redis back
    assert cache._state["missed"]
    assert read(user)[0]["amount"] == "75.00"  # the old entry (100.00) is never served
    assert not cache._state["missed"]
    assert read(user)[0]["amount"] == "75.00"


def test_warm_cache_writes_the_recently_active_accounts(funded_user, other_user, committed, capsys):
    with committed():
        user = funded_user("100.00")
    call_command("warm_cache")
    assert "1 accounts written" in capsys.readouterr().out
    before = results()
    assert read(user)[0]["amount"] == "100.00"
    assert results()["hit"] - before["hit"] == 1
    assert get_redis_connection("default").exists(cache.EPOCH) in (0, 1)


def test_warm_reads_several_accounts_in_one_query(
    funded_user, other_user, committed, django_assert_num_queries
):
    with committed():
        user = funded_user("100.00")
        services.transfer(
            actor=user, sender=user, recipient=other_user, amount=Decimal("40.00"), currency="USD"
        )
    with django_assert_num_queries(1):
        assert cache.warm([user.pk, other_user.pk]) == 2
    before = results()
    assert read(user)[0]["amount"] == "60.00"
    assert read(other_user)[0]["amount"] == "40.00"
    assert results()["hit"] - before["hit"] == 2

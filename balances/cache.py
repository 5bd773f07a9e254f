"""The balance cache: a user's current balances in Redis, PostgreSQL the truth.

One hash a user, `wallet:balcache:<epoch>:<user>`, holds the balances as the API shows them
(`d`, JSON) and their version (`v`): the sum of the user's balances' `entry_count`, which
only grows. A read that misses reads PostgreSQL and writes what it read with one Lua
compare-and-set (`_STORE`) that refuses to write when

- the stored version is newer or the same (a late write of an older read never overwrites a
  newer one), or
- the user's *generation* (`wallet:balcache:gen:<user>`) is not the one the reader saw
  before reading PostgreSQL: a movement committed and invalidated the entry meanwhile.

Every movement, batch and reversal invalidates its users after commit (`invalidate_users`:
bump the generation and delete the entry, one script). Since the generation is read before
PostgreSQL and the invalidation runs after the commit, a read that saw the old balances
can never store them over the invalidation.

Redis down or slow: every call goes through a pybreaker breaker (`breaker`), and the reads
fall back to PostgreSQL; no request fails. An invalidation that could not reach Redis is
remembered, and the next successful contact bumps the epoch (every entry is then unseen),
so no value older than a movement is served once Redis returns.
"""

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pybreaker
from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection
from prometheus_client import Counter
from redis.exceptions import RedisError

from balances import selectors
from balances.models import Balance
from wallet_project.redis_scripts import run_script

logger = logging.getLogger("wallet.balance_cache")

PREFIX = "wallet:balcache:"
EPOCH = PREFIX + "epoch"

CACHE_REQUESTS = Counter(
    "wallet_cache_requests",
    "Balance cache reads by result: hit, miss (read PostgreSQL), bypass (Redis unavailable)",
    ["result"],
)
_results = {name: CACHE_REQUESTS.labels(result=name) for name in ("hit", "miss", "bypass")}

breaker = pybreaker.CircuitBreaker(
    fail_max=settings.BALANCE_CACHE_BREAKER_FAILURES,
    reset_timeout=settings.BALANCE_CACHE_BREAKER_RESET_SECONDS,
    name="balance_cache",
)

# KEYS: entry, generation. ARGV: generation seen before reading PostgreSQL, version, data, ttl.
_STORE = """
local gen = redis.call('GET', KEYS[2]) or '0'
if gen ~= ARGV[1] then return 0 end
local stored = redis.call('HGET', KEYS[1], 'v')
if stored and tonumber(stored) >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""

# KEYS: pairs (entry, generation) of each user.
_INVALIDATE = """
for i = 1, #KEYS, 2 do
    redis.call('INCR', KEYS[i + 1])
    redis.call('DEL', KEYS[i])
end
return 1
"""

_state: dict[str, Any] = {"missed": False}


@dataclass(frozen=True)
class CachedBalance:
    """A balance as read from the cache: what the API's balance item shows of a `Balance`."""

    currency_id: str
    amount: Decimal
    last_updated_at: datetime


def _redis() -> Any:
    return get_redis_connection("default")


def _contact(work: Any) -> Any:
    """Run `work(client, epoch)` through the breaker, first clearing a missed invalidation."""

    def call() -> Any:
        client = _redis()
        if _state["missed"]:
            client.incr(EPOCH)  # an invalidation was lost: every entry is now unseen
            _state["missed"] = False
        epoch = client.get(EPOCH)
        return work(client, epoch.decode() if epoch else "0")

    return breaker.call(call)


def _keys(epoch: str, user_id: int) -> tuple[str, str]:
    return f"{PREFIX}{epoch}:{user_id}", f"{PREFIX}gen:{user_id}"


def _rows(balances: Iterable[Balance]) -> tuple[int, list[dict[str, str]]]:
    """The version (sum of `entry_count`) and the stored form of a user's balances."""
    version, rows = 0, []
    for balance in balances:
        version += balance.entry_count
        rows.append(
            {
                "currency": balance.currency_id,
                "amount": str(balance.amount),
                "last_updated_at": balance.last_updated_at.isoformat(),
            }
        )
    return version, rows


def _balances(rows: list[dict[str, str]], currency: str | None) -> list[CachedBalance]:
    return [
        CachedBalance(
            currency_id=row["currency"],
            amount=Decimal(row["amount"]),
            last_updated_at=datetime.fromisoformat(row["last_updated_at"]),
        )
        for row in rows
        if not currency or row["currency"] == currency
    ]


def current_balances(*, user_id: int, currency: str | None = None) -> list[Any]:
    """The user's current balances (`Balance` rows, or their cached copies), from Redis when
    it holds them, else from PostgreSQL (then stored for the next read)."""
    if not settings.BALANCE_CACHE_ENABLED:
        return list(selectors.list_current_balances(user_id=user_id, currency=currency))
    try:
        found = _contact(lambda client, epoch: _lookup(client, epoch, user_id))
    except (RedisError, pybreaker.CircuitBreakerError) as error:
        logger.debug("balance cache unavailable: %s", error)
        _results["bypass"].inc()
        return list(selectors.list_current_balances(user_id=user_id, currency=currency))
    cached, epoch, generation = found
    if cached is not None:
        _results["hit"].inc()
        return _balances(json.loads(cached), currency)
    _results["miss"].inc()
    balances = list(selectors.list_current_balances(user_id=user_id))
    version, rows = _rows(balances)
    _store(user_id, epoch=epoch, generation=generation, version=version, rows=rows)
    return [b for b in balances if not currency or b.currency_id == currency]


def _lookup(client: Any, epoch: str, user_id: int) -> tuple[bytes | None, str, str]:
    entry, gen = _keys(epoch, user_id)
    cached, generation = client.pipeline(transaction=False).hget(entry, "d").get(gen).execute()
    return cached, epoch, generation.decode() if generation else "0"


def _store(
    user_id: int, *, epoch: str, generation: str, version: int, rows: list[dict[str, str]]
) -> bool:
    """Compare-and-set the entry; False when refused or when Redis is unavailable."""
    entry, gen = _keys(epoch, user_id)
    args = [generation, version, json.dumps(rows), settings.BALANCE_CACHE_TTL_SECONDS]
    try:
        return bool(
            breaker.call(lambda: run_script(_redis(), _STORE, keys=[entry, gen], args=args))
        )
    except (RedisError, pybreaker.CircuitBreakerError):
        return False


def invalidate_users(user_ids: Iterable[int | None]) -> None:
    """Forget the cached balances of `user_ids` (None: the world account). Never raises."""
    users = sorted({user_id for user_id in user_ids if user_id is not None})
    if not users or not settings.BALANCE_CACHE_ENABLED:
        return

    def work(client: Any, epoch: str) -> Any:
        keys = [key for user_id in users for key in _keys(epoch, user_id)]
        return run_script(client, _INVALIDATE, keys=keys, args=[])

    try:
        _contact(work)
    except (RedisError, pybreaker.CircuitBreakerError) as error:
        logger.warning("balance cache invalidation missed, the epoch moves on: %s", error)
        _state["missed"] = True


def invalidate_for_transactions(txns: Iterable[Any]) -> None:
    """After-commit hook of every movement: forget the balances of both sides."""
    invalidate_users(user_id for txn in txns for user_id in (txn.from_user_id, txn.to_user_id))


def warm(user_ids: Iterable[int]) -> int:
    """Read the balances of `user_ids` into the cache (one query); how many entries were written.

    Every user's generation is read before PostgreSQL, as a miss does, so a movement that
    commits meanwhile refuses the store of what was read before it.
    """
    users = sorted(set(user_ids))
    if not users:
        return 0
    try:
        seen = _contact(lambda client, epoch: [_lookup(client, epoch, u) for u in users])
    except (RedisError, pybreaker.CircuitBreakerError):
        return 0
    by_user: dict[int, list[Balance]] = defaultdict(list)
    for balance in selectors.list_current_balances_of(user_ids=users):
        by_user[balance.user_id].append(balance)
    written = 0
    for user_id, (_, epoch, generation) in zip(users, seen, strict=True):
        version, rows = _rows(by_user[user_id])
        written += _store(user_id, epoch=epoch, generation=generation, version=version, rows=rows)
    return written


def warm_recent() -> int:
    """Warm the accounts whose balances changed in the last BALANCE_CACHE_WARM_WINDOW_SECONDS."""
    since = timezone.now() - timedelta(seconds=settings.BALANCE_CACHE_WARM_WINDOW_SECONDS)
    return warm(
        selectors.list_recently_active_user_ids(
            since=since, limit=settings.BALANCE_CACHE_WARM_LIMIT
        )
    )

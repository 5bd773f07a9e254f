"""Transaction counters: exact Redis counters updated after commit, the database as the truth.

Three Redis hashes hold the counts by type, the counts by status, and the volume by
currency in integer minor units (`HINCRBY` only: no float ever). The volume is the sum of
the amounts of transactions that completed (a later reversal is a transaction of its own).

The counters are trusted only while the *ready* key exists. It is written by
`rebuild_counters` together with values computed from the database; increments are applied
by one Lua script only while it exists, so counters are never partial. While a rebuild
runs, increments go to delta hashes that the rebuild folds in, so movements committing
during a rebuild are not lost. Reads fall back to the database while counters are not
ready. A Redis failure never breaks a request: the increment is dropped, the ready key is
deleted at the next successful contact (the counters missed something), and the
`maintenance.rebuild_stats` task rebuilds them.
"""

import logging
import time
from collections import Counter
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone
from django_redis import get_redis_connection

from money.amounts import exponent_of, format_amount
from transactions.models import Transaction, TransactionStatus, TransactionType
from wallet_project.redis_scripts import run_script

logger = logging.getLogger("wallet.stats")

PREFIX = "wallet:stats:"
READY = PREFIX + "ready"  # "1" when ready, "building" during a rebuild
BY_TYPE, BY_STATUS, VOLUME = PREFIX + "by_type", PREFIX + "by_status", PREFIX + "volume"
DELTA = {name: name + ":delta" for name in (BY_TYPE, BY_STATUS, VOLUME)}
BACKOFF_SECONDS = 5.0  # after a Redis failure, skip it for this long

# KEYS: ready, by_type, by_status, volume, and their three delta hashes.
# ARGV: triples (hash number 1-3, field, increment).
_INCREMENT = """
local state = redis.call('GET', KEYS[1])
local offset
if state == '1' then offset = 1 elseif state == 'building' then offset = 4 else return 0 end
for i = 1, #ARGV, 3 do
    redis.call('HINCRBY', KEYS[offset + tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
return 1
"""

_INCREMENT_KEYS = [READY, BY_TYPE, BY_STATUS, VOLUME, *DELTA.values()]

_health = {"down_until": 0.0, "missed": False}


def _redis():
    return get_redis_connection("default")


def minor_units(amount: Decimal, currency: str) -> int:
    """`amount` as an exact integer of the currency's minor unit (10.50 USD -> 1050)."""
    return int(Decimal(amount).scaleb(exponent_of(currency)).to_integral_value())


def _changes(txns: list[Transaction]) -> Counter:
    """The counter increments for transactions just committed: (hash, field) -> delta."""
    changes: Counter = Counter()
    for txn in txns:
        previous = getattr(txn, "previous_status", None)
        if previous is None:
            changes[(1, txn.type)] += 1
        else:
            changes[(2, previous)] -= 1
        changes[(2, txn.status)] += 1
        if txn.status == TransactionStatus.COMPLETED:
            changes[(3, txn.currency_id)] += minor_units(txn.amount, txn.currency_id)
    return changes


def record_committed(txns: list[Transaction]) -> None:
    """After-commit hook: count committed transactions. Never raises."""
    _send(_changes(txns))


def _send(changes: Counter) -> None:
    if not changes or time.monotonic() < _health["down_until"]:
        _health["missed"] = _health["missed"] or bool(changes)
        return
    args = [
        part for (slot, field), delta in changes.items() if delta for part in (slot, field, delta)
    ]
    try:
        client = _redis()
        if _health["missed"]:
            client.delete(READY)  # counters missed increments: read from the database
            _health["missed"] = False
        if args:
            run_script(client, _INCREMENT, keys=_INCREMENT_KEYS, args=args)
    except Exception:  # Redis is optional here: never fail the request that committed
        _health["down_until"] = time.monotonic() + BACKOFF_SECONDS
        _health["missed"] = True
        logger.warning("transaction counters not updated", exc_info=True)


def counts_from_database() -> dict:
    """The counters computed from the database (the source of truth)."""
    by_type = dict(Transaction.objects.order_by().values_list("type").annotate(n=Count("id")))
    by_status = dict(Transaction.objects.order_by().values_list("status").annotate(n=Count("id")))
    volume = dict(
        Transaction.objects.filter(
            status__in=[TransactionStatus.COMPLETED, TransactionStatus.REVERSED]
        )
        .order_by()
        .values_list("currency")
        .annotate(total=Sum("amount"))
    )
    return {
        "by_type": by_type,
        "by_status": by_status,
        "volume": {code: minor_units(total, code) for code, total in volume.items()},
    }


def rebuild_counters(*, only_if_missing: bool = False) -> bool:
    """Recompute the counters from the database and mark them ready; True if rebuilt.

    Increments committed during the rebuild are kept in delta hashes and folded in.
    Raises redis errors (this is an operator command or a maintenance task).
    """
    client = _redis()
    if only_if_missing and client.get(READY) == b"1":
        return False
    client.delete(*DELTA.values())
    client.set(READY, "building")
    counts = counts_from_database()
    pipe = client.pipeline(transaction=True)
    pipe.delete(BY_TYPE, BY_STATUS, VOLUME)
    for name, key in (("by_type", BY_TYPE), ("by_status", BY_STATUS), ("volume", VOLUME)):
        for field, value in counts[name].items():
            pipe.hincrby(key, field, value)
    pipe.execute()
    # Fold the increments that arrived meanwhile, atomically with switching to ready.
    fold = """
    for i = 2, 4 do
        local pairs = redis.call('HGETALL', KEYS[i + 3])
        for j = 1, #pairs, 2 do redis.call('HINCRBY', KEYS[i], pairs[j], pairs[j + 1]) end
        redis.call('DEL', KEYS[i + 3])
    end
    redis.call('SET', KEYS[1], '1')
    return 1
    """
    client.eval(fold, 7, READY, BY_TYPE, BY_STATUS, VOLUME, *DELTA.values())
    _health["missed"] = False
    return True


def _from_redis() -> dict | None:
    try:
        client = _redis()
        pipe = client.pipeline(transaction=True)
        pipe.get(READY)
        pipe.hgetall(BY_TYPE)
        pipe.hgetall(BY_STATUS)
        pipe.hgetall(VOLUME)
        ready, by_type, by_status, volume = pipe.execute()
    except Exception:
        logger.warning("transaction counters unreadable; using the database", exc_info=True)
        return None
    if ready != b"1":
        return None

    def decoded(raw: dict) -> dict:
        return {key.decode(): int(value) for key, value in raw.items()}

    return {
        "by_type": decoded(by_type),
        "by_status": decoded(by_status),
        "volume": decoded(volume),
    }


def transaction_stats() -> dict:
    """Counts by type and status and volume by currency, from Redis or else the database."""
    counts = _from_redis()
    source = "redis"
    if counts is None:
        counts, source = counts_from_database(), "database"
    return {
        "transactions": {
            "by_type": {t: counts["by_type"].get(t, 0) for t in TransactionType.values},
            "by_status": {s: counts["by_status"].get(s, 0) for s in TransactionStatus.values},
        },
        "volume": {
            code: format_amount(Decimal(units).scaleb(-exponent_of(code)), code)
            for code, units in sorted(counts["volume"].items())
            if units
        },
        "as_of": timezone.now(),
        "source": source,
    }

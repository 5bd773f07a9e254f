"""Event sourcing: rebuild balances and their history from the audit stream alone.

The `balance.changed` events carry (user, currency, delta, balance after, transaction, seq);
`balance.opened` marks the creation of a balance row (seq 0, nothing moved yet), so a
balance that never received money (its first movement failed) still replays. Replaying
them into scratch tables gives every balance and its whole history without reading
`balances` or `balance_entries`; the report compares both with the live tables. A rebuild
is written by `balances.services.rebuild_balances`, the one writer of balances.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from balances.services import rebuild_balances

CHUNK_EVENTS = 200_000

_SCRATCH = """
CREATE TEMP TABLE replay_entries (
    event_id bigint, balance_id bigint, user_id bigint, currency varchar(3), delta numeric,
    balance_after numeric, transaction_id uuid, seq bigint, created_at timestamptz, hash varchar(64)
) ON COMMIT DROP
"""

_LOAD = """
INSERT INTO replay_entries
SELECT id, entity_id::bigint, (details->>'user_id')::bigint, details->>'currency',
       (details->>'delta')::numeric, (details->>'balance_after')::numeric,
       (details->>'transaction_id')::uuid, (details->>'seq')::bigint, created_at, hash
FROM audit_logs
WHERE action = 'balance.changed' AND id > %s AND id <= %s {until}
"""

_OPENED = """
CREATE TEMP TABLE replay_opened ON COMMIT DROP AS
SELECT entity_id::bigint AS balance_id, (details->>'user_id')::bigint AS user_id,
       details->>'currency' AS currency, hash, created_at
FROM audit_logs WHERE action = 'balance.opened' {until}
"""

# A balance with money events ends at its newest one; one with only its opening event is 0.
_BALANCES = """
CREATE TEMP TABLE replay_balances ON COMMIT DROP AS
SELECT DISTINCT ON (balance_id) balance_id, user_id, currency,
       sum(delta) OVER w AS amount, count(*) OVER w AS entry_count,
       balance_after AS last_after, hash AS head_hash, created_at AS last_updated_at
FROM replay_entries
WINDOW w AS (PARTITION BY balance_id)
ORDER BY balance_id, seq DESC
"""

_UNMOVED = """
INSERT INTO replay_balances
SELECT o.balance_id, o.user_id, o.currency, 0, 0, 0, o.hash, o.created_at
FROM replay_opened o
WHERE NOT EXISTS (SELECT 1 FROM replay_balances r WHERE r.balance_id = o.balance_id)
"""

_RUNNING = """
SELECT balance_id, seq, event_id FROM (
    SELECT balance_id, seq, event_id, balance_after,
           sum(delta) OVER (PARTITION BY balance_id ORDER BY seq) AS running,
           row_number() OVER (PARTITION BY balance_id ORDER BY seq) AS n
    FROM replay_entries) r
WHERE running <> balance_after OR n <> seq
LIMIT 50
"""

_LIVE_BALANCES_NOW = """
SELECT coalesce(r.balance_id, b.id), coalesce(r.user_id, b.user_id),
       coalesce(r.currency, b.currency), r.amount, b.amount
FROM replay_balances r FULL JOIN balances b ON b.id = r.balance_id
WHERE b.amount IS DISTINCT FROM r.amount OR b.entry_count IS DISTINCT FROM r.entry_count
      OR ((b.entry_count > 0 OR b.head_hash <> '') AND b.head_hash IS DISTINCT FROM r.head_hash)
ORDER BY 1 LIMIT 100
"""

_LIVE_BALANCES_AT = """
SELECT coalesce(r.balance_id, l.balance_id), coalesce(r.user_id, l.user_id),
       coalesce(r.currency, l.currency), r.amount, l.balance_after
FROM replay_balances r FULL JOIN (
    SELECT DISTINCT ON (balance_id) balance_id, user_id, currency, balance_after
    FROM balance_entries WHERE balance_id IS NOT NULL AND created_at <= %s
    ORDER BY balance_id, created_at DESC, id DESC) l ON l.balance_id = r.balance_id
WHERE coalesce(l.balance_after, 0) IS DISTINCT FROM coalesce(r.amount, 0)
ORDER BY 1 LIMIT 100
"""

_HISTORY = """
SELECT coalesce(r.transaction_id, e.transaction_id), coalesce(r.user_id, e.user_id),
       r.delta, e.delta, r.balance_after, e.balance_after
FROM replay_entries r FULL JOIN (
    SELECT * FROM balance_entries WHERE balance_id IS NOT NULL {until}) e
  ON e.transaction_id = r.transaction_id AND e.balance_id = r.balance_id
WHERE e.delta IS DISTINCT FROM r.delta OR e.balance_after IS DISTINCT FROM r.balance_after
      OR e.created_at IS DISTINCT FROM r.created_at
LIMIT 100
"""


@dataclass
class ReplayReport:
    events: int = 0
    balances: int = 0
    until: datetime | None = None
    balance_differences: list[dict] = field(default_factory=list)
    history_differences: list[dict] = field(default_factory=list)
    stream_problems: list[dict] = field(default_factory=list)
    rebuilt: int = 0
    replayed: dict[tuple[int, str], Decimal] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.balance_differences or self.history_differences or self.stream_problems)


def _load_events(cursor, *, until: datetime | None, progress: Callable[[int], None] | None) -> int:
    cursor.execute(
        "SELECT coalesce(min(id), 0), coalesce(max(id), 0) FROM audit_logs "
        "WHERE action = 'balance.changed'"
    )
    low, high = cursor.fetchone()
    clause = "AND created_at <= %s" if until else ""
    start = low - 1
    loaded = 0
    while start < high:
        stop = min(start + CHUNK_EVENTS, high)
        cursor.execute(_LOAD.format(until=clause), [start, stop, *([until] if until else [])])
        loaded += cursor.rowcount
        if progress:
            progress(stop - start)
        start = stop
    return loaded


def replay_balances(
    *,
    until: datetime | None = None,
    rebuild: bool = False,
    collect: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Replay `balance.changed` events into scratch tables and compare with the live ledger.

    With `until`, the comparison is with the balances as of that instant (from the live
    history). With `rebuild` (not with `until`), live balances that differ are overwritten
    from the replay in this one transaction, each row locked in primary-key order first.
    With `collect`, the report also holds every replayed balance.
    """
    report = ReplayReport(until=until)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS replay_entries, replay_balances, replay_opened")
        cursor.execute(_SCRATCH)
        report.events = _load_events(cursor, until=until, progress=progress)
        cursor.execute("CREATE INDEX ON replay_entries (balance_id, seq)")
        cursor.execute(_BALANCES)
        opened_until = "AND created_at <= %s" if until else ""
        cursor.execute(_OPENED.format(until=opened_until), [until] if until else [])
        cursor.execute(_UNMOVED)
        cursor.execute("SELECT count(*) FROM replay_balances")
        report.balances = cursor.fetchone()[0]
        cursor.execute(_RUNNING)
        report.stream_problems = [
            {"balance_id": b, "seq": s, "event_id": e, "reason": "running sum or seq breaks"}
            for b, s, e in cursor.fetchall()
        ]
        if until:
            cursor.execute(_LIVE_BALANCES_AT, [until])
        else:
            cursor.execute(_LIVE_BALANCES_NOW)
        report.balance_differences = [
            {
                "balance_id": b,
                "user_id": u,
                "currency": c,
                "replayed": None if r is None else str(r),
                "live": None if live is None else str(live),
            }
            for b, u, c, r, live in cursor.fetchall()
        ]
        until_clause = "AND created_at <= %s" if until else ""
        cursor.execute(_HISTORY.format(until=until_clause), [until] if until else [])
        report.history_differences = [
            {
                "transaction_id": str(t),
                "user_id": u,
                "replayed_delta": None if rd is None else str(rd),
                "live_delta": None if ld is None else str(ld),
                "replayed_after": None if ra is None else str(ra),
                "live_after": None if la is None else str(la),
            }
            for t, u, rd, ld, ra, la in cursor.fetchall()
        ]
        if collect:
            cursor.execute("SELECT user_id, currency, amount FROM replay_balances")
            report.replayed = {(u, c): a for u, c, a in cursor.fetchall()}
        if rebuild and not until and report.balance_differences:
            keys = [(d["user_id"], d["currency"]) for d in report.balance_differences]
            report.rebuilt = rebuild_balances(keys=keys)
        cursor.execute("DROP TABLE replay_entries, replay_balances, replay_opened")
    return report

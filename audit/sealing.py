"""Sealing the global audit stream: checkpoints over every event, written after the fact.

See the `audit.models` docstring for why events are sealed by the id of the database
transaction that wrote them, and why a sealed range can never receive a late event.
"""

import hashlib

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS, seal_hash, sign
from audit.models import AuditSeal

SEALER_LOCK_ID = 7_301_001  # pg_advisory_xact_lock key: one sealer at a time

# The oldest transaction id still running in this database (as a 64-bit xid8), or our own
# id when none is. Only this database's transactions can write audit events, so transactions
# of other databases on the same server never hold sealing back. A transaction that has no
# id yet when this runs will get one above ours, so nothing below the horizon can still
# appear. 32-bit backend xids are widened with the epoch of our own 64-bit id.
_HORIZON_SQL = """
WITH me AS (SELECT pg_current_xact_id()::text::bigint AS x)
SELECT coalesce(
    min((((me.x >> 32) - CASE WHEN a.backend_xid::text::bigint > (me.x & 4294967295)
                              THEN 1 ELSE 0 END) << 32) | a.backend_xid::text::bigint),
    me.x)
FROM me LEFT JOIN pg_stat_activity a
  ON a.datname = current_database() AND a.backend_xid IS NOT NULL
 AND a.pid <> pg_backend_pid()
GROUP BY me.x
"""


def _events_digest(*, xid_from: int, xid_to: int) -> tuple[int, str, int | None]:
    """Count and digest of the event hashes with `xid_from <= txid < xid_to`, in (txid, id) order."""
    digest = hashlib.sha256()
    count = 0
    last_id = None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, hash FROM audit_logs WHERE txid >= %s AND txid < %s ORDER BY txid, id",
            [xid_from, xid_to],
        )
        while rows := cursor.fetchmany(10_000):
            for event_id, event_hash in rows:
                digest.update(event_hash.encode())
                count += 1
                last_id = event_id
    return count, digest.hexdigest(), last_id


@transaction.atomic
def seal_audit_stream() -> AuditSeal | None:
    """Seal every event written by transactions older than the oldest one still running.

    Takes an advisory lock so two sealers never race; returns the new seal, or None when no
    new event became final since the last seal.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALER_LOCK_ID])
        cursor.execute(_HORIZON_SQL)
        horizon = cursor.fetchone()[0]
    last = AuditSeal.objects.order_by("-id").first()
    xid_from = last.xid_to if last else 0
    if horizon <= xid_from:
        return None
    count, digest, last_event_id = _events_digest(xid_from=xid_from, xid_to=horizon)
    if count == 0:
        return None
    prev_hash = last.hash if last else GENESIS
    value = seal_hash(
        prev_hash=prev_hash, xid_from=xid_from, xid_to=horizon, count=count, digest=digest
    )
    return AuditSeal.objects.create(
        xid_from=xid_from,
        xid_to=horizon,
        event_count=count,
        last_event_id=last_event_id,
        events_digest=digest,
        prev_hash=prev_hash,
        hash=value,
        signature=sign(value, key=settings.SECRET_KEY),
        created_at=timezone.now(),
    )


def verify_seal(seal: AuditSeal, *, prev: AuditSeal | None) -> str | None:
    """Why `seal` is broken (a string), or None when it holds."""
    expected_from = prev.xid_to if prev else 0
    if seal.xid_from != expected_from:
        return f"seal #{seal.pk} starts at xid {seal.xid_from}, expected {expected_from} (gap)"
    if seal.prev_hash != (prev.hash if prev else GENESIS):
        return f"seal #{seal.pk} does not link to the previous seal"
    count, digest, _ = _events_digest(xid_from=seal.xid_from, xid_to=seal.xid_to)
    if count != seal.event_count:
        return (
            f"seal #{seal.pk} covers {seal.event_count} events but {count} exist now "
            "(an event was deleted or inserted)"
        )
    if digest != seal.events_digest:
        return f"seal #{seal.pk}: the sealed events changed"
    value = seal_hash(
        prev_hash=seal.prev_hash,
        xid_from=seal.xid_from,
        xid_to=seal.xid_to,
        count=seal.event_count,
        digest=seal.events_digest,
    )
    if value != seal.hash or sign(value, key=settings.SECRET_KEY) != seal.signature:
        return f"seal #{seal.pk}: hash or signature does not match"
    return None

"""Walking the audit trail: every event hash, every chain link, every seal."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection

from audit.chain import GENESIS, event_hash
from audit.models import AuditSeal
from audit.sealing import verify_seal
from balances.selectors import list_balance_chain_heads


@dataclass
class VerificationResult:
    events_checked: int = 0
    chains: int = 0
    seals_checked: int = 0
    unsealed_events: int = 0
    problems: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> dict | None:
        return self.problems[0] if self.problems else None


_EVENTS_SQL = """
SELECT id, entity_type, entity_id, action, details, actor_id, request_id, host(client_ip),
       created_at, chain, prev_hash, hash
FROM audit_logs WHERE id > %s ORDER BY id
"""


def verify_audit_trail(
    *, progress: Callable[[int], None] | None = None, max_problems: int = 20
) -> VerificationResult:
    """Recompute every event's hash, walk every chain, check balance heads and every seal.

    A problem names the event (or seal) where the trail first breaks. Reads only.
    """
    result = VerificationResult()
    heads: dict[str, str] = {}
    with connection.cursor() as cursor:
        cursor.execute(_EVENTS_SQL, [0])
        while rows := cursor.fetchmany(5_000):
            for row in rows:
                (event_id, entity_type, entity_id, action, details, actor_id, request_id) = row[:7]
                client_ip, created_at, chain, prev_hash, stored_hash = row[7:]
                result.events_checked += 1
                if isinstance(details, str):  # the raw cursor hands jsonb over as text
                    details = json.loads(details)
                computed = event_hash(
                    chain=chain,
                    prev_hash=prev_hash,
                    entity_type=entity_type,
                    entity_id=entity_id,
                    action=action,
                    details=details,
                    actor_id=actor_id,
                    request_id=request_id,
                    client_ip=client_ip,
                    created_at=created_at,
                )
                if computed != stored_hash:
                    result.problems.append(
                        {"event_id": event_id, "chain": chain, "reason": "content was altered"}
                    )
                if chain:
                    expected = heads.get(chain, GENESIS)
                    if prev_hash != expected:
                        result.problems.append(
                            {
                                "event_id": event_id,
                                "chain": chain,
                                "reason": "broken link: prev_hash is not the chain's previous event",
                            }
                        )
                    heads[chain] = stored_hash
                if len(result.problems) >= max_problems:
                    return result
            if progress:
                progress(len(rows))
        result.chains = len(heads)
        for balance_id, head_hash in list_balance_chain_heads():
            if heads.get(f"balance:{balance_id}", GENESIS) != head_hash:
                result.problems.append(
                    {
                        "balance_id": balance_id,
                        "chain": f"balance:{balance_id}",
                        "reason": "the balance's newest event is missing or altered",
                    }
                )
    prev = None
    for seal in AuditSeal.objects.order_by("id").iterator():
        result.seals_checked += 1
        reason = verify_seal(seal, prev=prev)
        if reason:
            result.problems.append({"seal_id": seal.pk, "reason": reason})
            break
        prev = seal
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM audit_logs WHERE txid >= %s", [prev.xid_to if prev else 0]
        )
        result.unsealed_events = cursor.fetchone()[0]
    return result

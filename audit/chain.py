"""The audit hash: a canonical serialization of an event and its sha256."""

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = ""


def canonical_event(
    *,
    chain: str,
    prev_hash: str,
    entity_type: str,
    entity_id: str,
    action: str,
    details: dict[str, Any],
    actor_id: int | None,
    request_id: str | None,
    client_ip: str | None,
    created_at: datetime,
) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTC microsecond timestamp."""
    payload = {
        "chain": chain,
        "prev_hash": prev_hash,
        "entity_type": entity_type,
        "entity_id": str(entity_id),
        "action": action,
        "details": details,
        "actor_id": actor_id,
        "request_id": request_id,
        "client_ip": client_ip,
        "created_at": utc_iso(created_at),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_event(**fields)).hexdigest()


def seal_hash(*, prev_hash: str, xid_from: int, xid_to: int, count: int, digest: str) -> str:
    text = f"{prev_hash}|{xid_from}|{xid_to}|{count}|{digest}"
    return hashlib.sha256(text.encode()).hexdigest()


def sign(value: str, *, key: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

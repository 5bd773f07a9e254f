"""The audit hash: a canonical serialization of an event and its sha256."""

import hashlib
import hmac
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

GENESIS = ""

# The string escaping that `json.dumps(..., ensure_ascii=False)` applies (its C encoder when
# available), so an object assembled from parts is byte for byte what `json.dumps` writes.
_encode_string = json.encoder.encode_basestring

# The ten top-level keys in sorted order, as `json.dumps(sort_keys=True)` writes them.
_EVENT_TEMPLATE = (
    '{"action":%s,"actor_id":%s,"chain":%s,"client_ip":%s,"created_at":%s,"details":%s,'
    '"entity_id":%s,"entity_type":%s,"prev_hash":%s,"request_id":%s}'
)


# One encoder for every event: `json.dumps` with options builds a new one per call.
_details_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def canonical_details(details: dict[str, Any]) -> str:
    """An event's details as hashed and stored: sorted keys, no whitespace, non-ASCII kept."""
    return _details_encoder.encode(details)


def _scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str) and value.__class__ is str:  # exactly a str, not a subclass
        return _encode_string(value)
    return json.dumps(value, ensure_ascii=False)


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
    details_text: str | None = None,
) -> bytes:
    """The bytes that are hashed: sorted keys, no whitespace, UTC microsecond timestamp.

    Exactly `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
    of the ten fields, assembled from its parts so that the details are encoded once:
    `details_text` is `canonical_details(details)` when the caller has computed it already.
    """
    if details_text is None:
        details_text = canonical_details(details)
    text = _EVENT_TEMPLATE % (
        _encode_string(action),
        _scalar(actor_id),
        _encode_string(chain),
        _scalar(client_ip),
        _encode_string(utc_iso(created_at)),
        details_text,
        _encode_string(str(entity_id)),
        _encode_string(entity_type),
        _encode_string(prev_hash),
        _scalar(request_id),
    )
    return text.encode()


@lru_cache(maxsize=256)  # the events of one movement or batch share their timestamp
def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(**fields: Any) -> str:
    return hashlib.sha256(canonical_event(**fields)).hexdigest()


def seal_hash(*, prev_hash: str, xid_from: int, xid_to: int, count: int, digest: str) -> str:
    text = f"{prev_hash}|{xid_from}|{xid_to}|{count}|{digest}"
    return hashlib.sha256(text.encode()).hexdigest()


def sign(value: str, *, key: str) -> str:
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

"""The hashed bytes of an event are exactly the canonical JSON of its ten fields."""

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from audit.chain import canonical_details, canonical_event

TRICKY = [
    "",
    "plain",
    'quote " backslash \\ slash /',
    "tab\tnew\nline\r",
    "\x00\x1f\x7f",
    "é€😀",
    "\u2028\u2029",
]


def reference(**fields) -> bytes:
    """The definition: `json.dumps` of the payload, sorted keys, no whitespace, UTF-8."""
    payload = {
        **fields,
        "entity_id": str(fields["entity_id"]),
        "created_at": fields["created_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def random_event(rng: random.Random) -> dict:
    def text() -> str:
        return "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 3)))

    def value():
        return rng.choice([text(), None, rng.randint(-(10**20), 10**20), True, [text(), 1]])

    return {
        "chain": text(),
        "prev_hash": text(),
        "entity_type": text(),
        "entity_id": rng.choice([text(), rng.randint(0, 10**12)]),
        "action": text(),
        "details": {text(): value() for _ in range(rng.randint(0, 4))} | {"nested": {"b": 1}},
        "actor_id": rng.choice([None, rng.randint(1, 10**12)]),
        "request_id": rng.choice([None, text()]),
        "client_ip": rng.choice([None, "10.0.0.1", "::1"]),
        "created_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=rng.randint(-12, 12))))
        + timedelta(microseconds=rng.randint(0, 10**13)),
    }


@pytest.mark.parametrize("seed", range(5))
def test_the_canonical_event_is_the_json_of_its_fields(seed):
    # given
    rng = random.Random(seed)
    events = [random_event(rng) for _ in range(400)]
    # when / then
    for event in events:
        assert canonical_event(**event) == reference(**event)


def test_details_encoded_beforehand_give_the_same_bytes():
    # given
    event = random_event(random.Random(7))
    # when
    given = canonical_event(**event, details_text=canonical_details(event["details"]))
    # then
    assert given == reference(**event)

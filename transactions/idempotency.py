"""Idempotency keys: claim inside the movement's transaction, replay the stored response.

A key is scoped to the authenticated user. The request fingerprint is the method, the path
(without a trailing slash) and the parsed JSON body with sorted keys.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from transactions.models import IdempotencyKey, Transaction
from wallet_project.errors import (
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    ValidationFailedError,
)
from wallet_project.statements import WriteStatement

MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)


class IdempotentReplay(Exception):
    """The key was already used for this request: answer with the stored response."""

    def __init__(self, *, status: int | None, body: Any, transaction_id: str | None):
        super().__init__("idempotent replay")
        self.status = status
        self.body = body
        self.transaction_id = transaction_id


@dataclass
class IdempotencyRequest:
    user_id: int
    key: str
    fingerprint: str
    render: Callable[[Any], tuple[int, Any]] | None = None
    key_id: int | None = None


class RenderedJSON:
    """A response body rendered once by the API's JSON renderer: the text sent to the client
    is the text stored with the idempotency key (in a `jsonb` column, which keeps the
    document, not its key order: a replay carries the same values in PostgreSQL's order)."""

    __slots__ = ("content", "data")

    def __init__(self, data: Any) -> None:
        self.data = data
        self.content: bytes = JSONRenderer().render(data)

    @property
    def text(self) -> str:
        return self.content.decode()


def validate_key(raw: str) -> str:
    if not (1 <= len(raw) <= MAX_KEY_LENGTH) or not all(32 <= ord(c) < 127 for c in raw):
        raise ValidationFailedError(
            "The Idempotency-Key header must be 1-255 printable ASCII characters.",
            details={"Idempotency-Key": ["1-255 printable ASCII characters."]},
        )
    return raw


def fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(
        {"method": method.upper(), "path": path.rstrip("/"), "body": body},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored(*, user_id: int, key: str) -> IdempotencyKey | None:
    return IdempotencyKey.objects.filter(user_id=user_id, key=key).first()


def _replay_or_refuse(row: IdempotencyKey, fingerprint_: str) -> None:
    if row.request_fingerprint != fingerprint_:
        raise IdempotencyKeyReusedError(details={"key": row.key})
    if row.state != "completed":
        raise IdempotencyInProgressError(details={"key": row.key})
    raise IdempotentReplay(
        status=row.response_status,
        body=row.response_body,
        transaction_id=str(row.transaction_id) if row.transaction_id else None,
    )


def check_stored(idempotency: IdempotencyRequest | None) -> None:
    """Raise IdempotentReplay or a 409 if the key is already stored; else return.

    A request that reaches its movement needs no such look-up: the claim inside the
    movement's transaction finds a stored key. A request refused before that (bad input,
    an account gone since) calls this first, so a known key still answers as it did.
    """
    if idempotency is None:
        return
    row = _stored(user_id=idempotency.user_id, key=idempotency.key)
    if row is not None:
        _replay_or_refuse(row, idempotency.fingerprint)


CLAIM_SQL = (
    "INSERT INTO idempotency_keys (user_id, key, request_fingerprint, state, created_at) "
    "VALUES (%s, %s, %s, 'in_progress', now()) ON CONFLICT (user_id, key) DO NOTHING "
    "RETURNING id"
)


def claim_statement(idempotency: IdempotencyRequest) -> tuple[str, list]:
    """The claim of `idempotency`'s key, to send as the transaction's first statement."""
    return CLAIM_SQL, [idempotency.user_id, idempotency.key, idempotency.fingerprint]


def settle_claim(idempotency: IdempotencyRequest, rows: list[tuple]) -> None:
    """Act on the claim's result: keep the new key's id, or answer as the stored key does.

    Raises IdempotentReplay, IdempotencyKeyReusedError or IdempotencyInProgressError when
    the key was already there (the claim waited for a concurrent duplicate to finish).
    """
    if rows:
        idempotency.key_id = rows[0][0]
        return
    stored = _stored(user_id=idempotency.user_id, key=idempotency.key)
    if stored is None:  # the other request rolled back between the two statements
        raise IdempotencyInProgressError()
    _replay_or_refuse(stored, idempotency.fingerprint)


def claim_idempotency_key(*, idempotency: IdempotencyRequest | None) -> None:
    """Insert the key row as the transaction's first write (inside its atomic block).

    A concurrent duplicate blocks on the unique index until the first commits, then
    replays its stored response (IdempotentReplay) or is refused (409).
    """
    if idempotency is None:
        return
    sql, params = claim_statement(idempotency)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    settle_claim(idempotency, rows)


def complete_idempotency_key(
    write: WriteStatement, *, idempotency: IdempotencyRequest | None, result: Any
) -> None:
    """Store the response for `result` in the same statement as the movement's writes."""
    if idempotency is None or idempotency.key_id is None or idempotency.render is None:
        return
    status, body = idempotency.render(result)
    text = body.text if isinstance(body, RenderedJSON) else json.dumps(body, default=str)
    # Only a transaction is linked; a batch or a schedule is found through the stored body.
    txn_id = result.pk if isinstance(result, Transaction) else None
    write.add(
        "UPDATE idempotency_keys SET state = 'completed', response_status = %s, "
        "response_body = %s::jsonb, transaction_id = %s WHERE id = %s",
        [status, text, txn_id, idempotency.key_id],
    )


def _jsonb_safe(value: Any) -> Any:
    """`value` with every U+0000 in its strings replaced by U+FFFD: `jsonb` cannot hold
    U+0000, and a refusal may echo it from the request (`"'\\x00' is not a supported
    currency."`), which would otherwise fail the insert and turn a 400 into a 500."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_jsonb_safe(key): _jsonb_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonb_safe(item) for item in value]
    return value


def store_refusal(*, idempotency: IdempotencyRequest, status: int, body: Any) -> None:
    """Keep a 4xx refusal so a retry with the same key gets the same answer (a U+0000 that
    the refusal echoed from the request is replayed as U+FFFD)."""
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                user_id=idempotency.user_id,
                key=idempotency.key,
                request_fingerprint=idempotency.fingerprint,
                state="completed",
                response_status=status,
                response_body=_jsonb_safe(body),
                created_at=timezone.now(),
            )
    except IntegrityError:
        return  # a concurrent duplicate stored its answer first


def expire_idempotency_keys(*, older_than: timedelta = RETENTION) -> int:
    """Delete keys older than the retention window (24 hours by default)."""
    cutoff = timezone.now() - older_than
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def record_replay(*, idempotency: IdempotencyRequest, replay: IdempotentReplay) -> None:
    """Audit that a stored response was replayed: nothing moved, but the retry is on record."""
    from audit.services import record_event

    with transaction.atomic():
        record_event(
            actor_id=idempotency.user_id,
            action="idempotency.replayed",
            entity_type="idempotency_key",
            entity_id=idempotency.key[:64],
            details={
                "key": idempotency.key,
                "status": replay.status,
                "transaction_id": replay.transaction_id,
            },
        )

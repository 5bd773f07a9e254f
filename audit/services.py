"""Writing audit events. Called inside the caller's database transaction, as its last write."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from audit.chain import GENESIS, canonical_details, event_hash
from audit.models import AuditLog
from wallet_project.request_context import client_ip_var, request_id_var
from wallet_project.statements import ModelColumns, WriteStatement


@dataclass
class PendingEvent:
    """An event computed in memory (hash included), inserted later in one statement."""

    entity_type: str
    entity_id: str
    action: str
    details: dict[str, Any]
    actor_id: int | None
    created_at: datetime
    chain: str = ""
    prev_hash: str = GENESIS
    request_id: str | None = field(default_factory=request_id_var.get)
    client_ip: str | None = field(default_factory=client_ip_var.get)
    hash: str = ""
    details_text: str = field(default="", init=False, repr=False)  # as hashed and stored

    def __post_init__(self) -> None:
        self.entity_id = str(self.entity_id)
        self.details_text = canonical_details(self.details)
        self.hash = event_hash(
            chain=self.chain,
            prev_hash=self.prev_hash,
            entity_type=self.entity_type,
            entity_id=self.entity_id,
            action=self.action,
            details=self.details,
            details_text=self.details_text,
            actor_id=self.actor_id,
            request_id=self.request_id,
            client_ip=self.client_ip,
            created_at=self.created_at,
        )


# An event's row is its attributes, the details as their canonical JSON text (as hashed).
EVENT_COLUMNS = ModelColumns(
    AuditLog,
    omitted={
        "id": "an identity",
        "txid": "the id of the writing database transaction, the column's default",
    },
    attributes={"details": "details_text"},
)


# `NOT (chain = '')` repeats the predicate of the partial unique index `audit_chain_no_fork`,
# so the planner may use that index for any chain, also in a generic (prepared) plan. Chains
# read here are short (a transaction's, a user's, a batch's or a schedule's events); balance
# chains keep their head on the balance row.
_HEAD_SQL = (
    "SELECT hash FROM audit_logs WHERE chain = %s AND NOT (chain = '') ORDER BY id DESC LIMIT 1"
)


def chain_head(*, chain: str) -> str:
    """The hash of the newest event of `chain`; call it only while holding the chain's row lock."""
    if not chain:
        return GENESIS
    with connection.cursor() as cursor:
        cursor.execute(_HEAD_SQL, [chain])
        row = cursor.fetchone()
    return row[0] if row else GENESIS


def record_event(
    *,
    actor_id: int | None,
    action: str,
    entity_type: str,
    entity_id: Any,
    details: dict[str, Any] | None = None,
    chain: str = "",
    created_at: datetime | None = None,
) -> AuditLog:
    """Append one event to `chain` (whose row lock the caller holds) in the caller's transaction.

    The chain head is read here, so the caller must hold the lock named by the chain
    (`user:<id>` the user row, `txn:<uuid>` the transaction row); an empty chain is unchained
    and covered by the seals only.
    """
    event = PendingEvent(
        entity_type=entity_type,
        entity_id=str(entity_id),
        action=action,
        details=details or {},
        actor_id=actor_id,
        created_at=created_at or timezone.now(),
        chain=chain,
        prev_hash=chain_head(chain=chain),
    )
    return insert_events(events=[event])[0]


def insert_events(*, events: list[PendingEvent]) -> list[AuditLog]:
    """Insert computed events in one statement."""
    rows = AuditLog.objects.bulk_create(
        [
            AuditLog(
                entity_type=e.entity_type,
                entity_id=e.entity_id,
                action=e.action,
                details=e.details,
                actor_id=e.actor_id,
                request_id=e.request_id,
                client_ip=e.client_ip,
                created_at=e.created_at,
                chain=e.chain,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in events
        ]
    )
    return rows


def add_events(write: WriteStatement, *, events: list[PendingEvent]) -> None:
    """Append the insert of computed audit events to `write` (one statement for all)."""
    if not events:
        return
    write.add(*EVENT_COLUMNS.insert([EVENT_COLUMNS.row(e) for e in events]))


def copy_events(*, events: Iterable[PendingEvent]) -> None:
    """Insert computed events with COPY, streamed as `events` yields them (many events).

    Rows are inserted in the order given, so each chain's events keep their order of ids.
    """
    EVENT_COLUMNS.copy(EVENT_COLUMNS.row(e) for e in events)

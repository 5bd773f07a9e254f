"""What a refused operation must leave untouched, and how to read the audit chains back."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection

from audit.chain import GENESIS, event_hash
from audit.models import AuditLog
from balances.models import Balance, BalanceEntry
from transactions.models import IdempotencyKey, Transaction


def ledger_snapshot() -> dict:
    """Every balance (row and amount), every transaction status, and the row counts.

    Audit events of replays are left out: a replay records the retry but changes nothing.
    """
    return {
        "balances": {
            (b.user_id, b.currency_id): (b.amount, b.entry_count, b.head_hash)
            for b in Balance.objects.all()
        },
        "statuses": dict(Transaction.objects.values_list("id", "status")),
        "transactions": Transaction.objects.count(),
        "entries": BalanceEntry.objects.count(),
        "audit_logs": AuditLog.objects.exclude(action="idempotency.replayed").count(),
        "idempotency_keys": IdempotencyKey.objects.count(),
    }


def assert_unchanged(before: dict, *, ignore: Iterable[str] = ()) -> None:
    after = ledger_snapshot()
    for name in before:
        if name in ignore:
            continue
        assert after[name] == before[name], f"{name} changed: {before[name]} -> {after[name]}"


def chain_events(chain: str) -> list[AuditLog]:
    return list(AuditLog.objects.filter(chain=chain).order_by("id"))


def assert_chain_intact(chain: str) -> list[AuditLog]:
    """Each event of `chain` hashes to its stored hash and points at the previous one."""
    events = chain_events(chain)
    assert events, f"no events on chain {chain}"
    previous = GENESIS
    for event in events:
        assert event.prev_hash == previous, f"{chain}: event {event.pk} does not link"
        recomputed = event_hash(
            chain=event.chain,
            prev_hash=event.prev_hash,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
            action=event.action,
            details=event.details,
            actor_id=event.actor_id,
            request_id=event.request_id,
            client_ip=event.client_ip,
            created_at=event.created_at,
        )
        assert recomputed == event.hash, f"{chain}: event {event.pk} hash does not match"
        previous = event.hash
    return events


def backdate(txn: Transaction, *, to: datetime) -> None:
    """Move a real transaction, its entries and events to another instant.

    Entries and audit rows are append-only; the triggers are disabled only inside the
    current test's database transaction (rolled back at its end), so the amounts the
    services computed stay untouched and only the clock moves. Used for day/hour buckets.
    """
    with connection.cursor() as cursor:
        # ALTER TABLE refuses to run while deferred foreign-key checks are pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE balance_entries DISABLE TRIGGER balance_entries_append_only")
        cursor.execute(
            "UPDATE transactions SET created_at = %s, "
            "completed_at = CASE WHEN completed_at IS NULL THEN NULL ELSE %s END WHERE id = %s",
            [to, to, txn.pk],
        )
        cursor.execute(
            "UPDATE balance_entries SET created_at = %s WHERE transaction_id = %s", [to, txn.pk]
        )
        cursor.execute("ALTER TABLE balance_entries ENABLE TRIGGER balance_entries_append_only")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")

"""Give every balance row that never received money its `balance.opened` event.

From now on a balance row's creation writes that event (the head of its chain). Rows
created before, whose first movement failed, hold nothing and have no event at all; this
writes theirs, so the event stream names every live balance. Rows with money already have
their chain (its first `balance.changed` event) and are left as they are.
"""

from django.db import migrations

BATCH = 1000


def write_opened_events(apps, schema_editor):
    from audit.services import PendingEvent

    Balance = apps.get_model("balances", "Balance")
    AuditLog = apps.get_model("audit", "AuditLog")
    unmoved = Balance.objects.filter(entry_count=0, head_hash="").order_by("id")
    while rows := list(unmoved[:BATCH]):
        events = [
            PendingEvent(
                entity_type="balance",
                entity_id=str(balance.id),
                action="balance.opened",
                details={"user_id": balance.user_id, "currency": balance.currency_id, "seq": 0},
                actor_id=None,
                created_at=balance.created_at,
                chain=f"balance:{balance.id}",
                request_id=None,
                client_ip=None,
            )
            for balance in rows
        ]
        AuditLog.objects.bulk_create(
            [
                AuditLog(
                    entity_type=e.entity_type,
                    entity_id=e.entity_id,
                    action=e.action,
                    details=e.details,
                    actor_id=None,
                    created_at=e.created_at,
                    chain=e.chain,
                    prev_hash=e.prev_hash,
                    hash=e.hash,
                )
                for e in events
            ]
        )
        for balance, event in zip(rows, events, strict=True):
            balance.head_hash = event.hash
        Balance.objects.bulk_update(rows, ["head_hash"])


class Migration(migrations.Migration):
    dependencies = [
        ("balances", "0003_lighter_writes"),
        ("audit", "0005_chain_head_by_no_fork_index"),
    ]

    operations = [migrations.RunPython(write_opened_events, migrations.RunPython.noop)]

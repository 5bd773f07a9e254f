"""The audit log: the append-only, hash-chained event stream of every state change.

Tables
- `audit_logs`: one row per state change, written in the same database transaction as the
  change. The database refuses UPDATE and DELETE on it (trigger `audit_logs_append_only`).
- `audit_seals`: periodic checkpoints over the whole stream.

How the chain is kept without one global lock
- Every event belongs to a *chain* named after the row lock its writer already holds:
  `balance:<id>` (balance changes, under the balance row lock of the money movement),
  `user:<id>` (user events, under the user row lock), `txn:<uuid>` (a transaction's life,
  under the transaction row lock). `prev_hash` is the hash of the chain's previous event
  and `hash = sha256(canonical JSON of the event, including prev_hash)`. A balance keeps
  its chain head on its own row (`balances.head_hash`), so a transfer reads it with the
  lock it takes anyway and no transfer waits for an unrelated one.
  `UNIQUE (chain, prev_hash)` makes a fork impossible. Events with no lockable entity
  (a failed login for an unknown name, system events) have an empty chain and are covered
  by the seals only.
- The global stream is sealed asynchronously: each event records the id of the database
  transaction that wrote it (`txid`, from `pg_current_xact_id()`). The sealer reads the
  oldest transaction still running in this database (`pg_stat_activity.backend_xid`, or
  its own id when none is); every transaction older than that has committed or aborted,
  and any transaction still to write gets a larger id, so the set of events with `txid`
  below it is final. A
  seal covers exactly the events with `txid` in `[previous seal's xmin, this xmin)`,
  ordered by `(txid, id)`: their count and a digest of their hashes, chained to the
  previous seal and signed with an HMAC of the secret key. Ranges are contiguous, so a
  deleted, inserted or edited event breaks a seal, and nothing committed late can fall
  into an already sealed range.
- `manage.py verify_audit` recomputes every event hash, walks every chain and every seal,
  and names the first broken link.
"""

from django.conf import settings
from django.db import models


class AuditLog(models.Model):
    id = models.BigAutoField(primary_key=True)
    entity_type = models.CharField(max_length=32)
    entity_id = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    details = models.JSONField(default=dict)
    # The acting user's id as it was; no foreign-key check per event (users are never
    # deleted, only deactivated), which is most of what an audit row costs to insert.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    request_id = models.CharField(max_length=128, null=True, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField()
    chain = models.CharField(max_length=80, blank=True, default="")
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64)
    txid = models.BigIntegerField(
        db_default=models.expressions.RawSQL("pg_current_xact_id()::text::bigint", [])
    )

    class Meta:
        db_table = "audit_logs"
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["entity_type", "entity_id", "-id"], name="audit_entity_idx"),
            models.Index(fields=["-created_at", "-id"], name="audit_created_idx"),
            models.Index(fields=["action", "-id"], name="audit_action_idx"),
            models.Index(fields=["actor", "-id"], name="audit_actor_idx"),
            models.Index(fields=["txid", "id"], name="audit_txid_idx"),
            # A chain's events are found through `audit_chain_no_fork` (see `chain_head`).
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "prev_hash"],
                condition=~models.Q(chain=""),
                name="audit_chain_no_fork",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} {self.entity_type}:{self.entity_id}"


class AuditSeal(models.Model):
    """A checkpoint over all events with `xid_from <= txid < xid_to`, chained to the previous."""

    id = models.BigAutoField(primary_key=True)
    xid_from = models.BigIntegerField()
    xid_to = models.BigIntegerField()
    event_count = models.BigIntegerField()
    last_event_id = models.BigIntegerField(null=True)
    events_digest = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64)
    signature = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_seals"
        ordering = ("-id",)
        constraints = [
            models.UniqueConstraint(fields=["prev_hash"], name="audit_seal_no_fork"),
            models.UniqueConstraint(fields=["xid_from"], name="audit_seal_contiguous"),
        ]

    def __str__(self) -> str:
        return f"seal #{self.pk} [{self.xid_from}, {self.xid_to}) {self.event_count} events"


class ReconciliationRun(models.Model):
    """The outcome of one check of the ledger invariants and the audit chain."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    checks = models.JSONField(default=dict)
    problems = models.JSONField(default=list)

    class Meta:
        db_table = "reconciliation_runs"
        ordering = ("-id",)

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} {'ok' if self.ok else 'DRIFT'} at {self.finished_at}"

"""Transactions, currencies and idempotency keys.

Tables
- `currencies`: ISO 4217 code, minor-unit exponent, enabled flag.
- `transactions`: one row per money movement (credit, debit, transfer, reversal). The amount
  is positive (`transaction_amount_positive`); the status follows the state machine below,
  and only services change it. A reversal is a new row pointing at the original through
  `reversal_of` (unique: an original is reversed at most once).
- `idempotency_keys`: `UNIQUE (user_id, key)`; the row is inserted in the same database
  transaction as the movement it guards, so a duplicate waits on the unique index and then
  replays the stored response.

Invariants: every completed transaction has balance entries summing to zero (see
`balances.models`), and a transaction's status only moves along `ALLOWED_TRANSITIONS`.
"""

import uuid

from django.conf import settings
from django.db import models


class Currency(models.Model):
    code = models.CharField(max_length=3, primary_key=True)
    name = models.CharField(max_length=64)
    exponent = models.PositiveSmallIntegerField()
    enabled = models.BooleanField(default=True)

    class Meta:
        db_table = "currencies"
        ordering = ("code",)
        verbose_name_plural = "currencies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(exponent__lte=3), name="currency_exponent_at_most_3"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class TransactionType(models.TextChoices):
    CREDIT = "credit", "Credit"
    DEBIT = "debit", "Debit"
    TRANSFER = "transfer", "Transfer"
    REVERSAL = "reversal", "Reversal"


class TransactionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    REVERSED = "reversed", "Reversed"


ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TransactionStatus.PENDING: frozenset({TransactionStatus.COMPLETED, TransactionStatus.FAILED}),
    TransactionStatus.COMPLETED: frozenset({TransactionStatus.REVERSED}),
    TransactionStatus.FAILED: frozenset(),
    TransactionStatus.REVERSED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    """The one place that says which status changes are allowed."""
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())


class Transaction(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=16, choices=TransactionType.choices)
    status = models.CharField(max_length=16, choices=TransactionStatus.choices)
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    amount = models.DecimalField(max_digits=24, decimal_places=3)
    currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, db_column="currency", related_name="+"
    )
    description = models.CharField(max_length=500, blank=True, default="")
    reference = models.CharField(max_length=255, null=True, blank=True)
    reversal_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
    )
    failure_code = models.CharField(max_length=64, null=True, blank=True)
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "transactions"
        ordering = ("-created_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gt=0), name="transaction_amount_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["pending", "completed", "failed", "reversed"],
                    type__in=["credit", "debit", "transfer", "reversal"],
                ),
                name="transaction_type_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["from_user", "-created_at", "-id"], name="txn_from_user_idx"),
            models.Index(fields=["to_user", "-created_at", "-id"], name="txn_to_user_idx"),
            models.Index(fields=["-created_at", "-id"], name="txn_created_idx"),
            models.Index(
                fields=["status", "created_at"],
                name="txn_pending_idx",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.amount} {self.currency_id} ({self.status})"


class IdempotencyKey(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, default="completed")
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    transaction = models.ForeignKey(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "idempotency_keys"
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_unique_user_key"),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"

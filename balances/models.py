"""Balances and balance entries: the ledger's state and its history.

Tables
- `balances`: one row per user and currency (`balance_unique_user_currency`), created on
  first use; `amount >= 0` (`balance_amount_non_negative`). Only `balances.locks` locks
  these rows, always in primary-key order. `head_hash` is the head of the balance's audit
  chain (see `audit.models`), `entry_count` the number of entries.
- `balance_entries`: append-only (trigger `balance_entries_append_only` refuses UPDATE and
  DELETE). One row per balance touched by a transaction, with the signed `delta` and the
  `balance_after`. Money entering or leaving the system is posted to the per-currency
  *world* account: entries with no balance and no user, insert-only, never a locked row.

Invariants (`balances.selectors.LEDGER_CHECKS`, run by reconciliation; and the test suite)
- every transaction's entries sum to zero;
- per currency, sum(user balances) + sum(world entries) = 0;
- each balance equals the sum of its entries and its newest entry's `balance_after`;
- "balance at T" is the `balance_after` of the newest entry at or before T, one lookup on
  `(user_id, currency, created_at DESC, id DESC)`.
"""

from django.conf import settings
from django.db import models


class Balance(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="balances"
    )
    currency = models.ForeignKey(
        "money.Currency", on_delete=models.PROTECT, db_column="currency", related_name="+"
    )
    amount = models.DecimalField(max_digits=24, decimal_places=3, default=0)
    entry_count = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_updated_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "balances"
        ordering = ("user_id", "currency_id")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "currency"], name="balance_unique_user_currency"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="balance_amount_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.amount} {self.currency_id}"


class BalanceEntry(models.Model):
    id = models.BigAutoField(primary_key=True)
    balance = models.ForeignKey(
        Balance,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        db_index=False,
    )
    # `user` and `currency` repeat the balance's (or, for a world leg, the transaction's),
    # which the database already checks through `balance` and `transaction`; they are not
    # checked again on every entry.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    currency = models.ForeignKey(
        "money.Currency",
        on_delete=models.DO_NOTHING,
        db_column="currency",
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    transaction = models.ForeignKey(
        "transactions.Transaction", on_delete=models.PROTECT, related_name="entries"
    )
    delta = models.DecimalField(max_digits=24, decimal_places=3)
    balance_after = models.DecimalField(max_digits=24, decimal_places=3, null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "balance_entries"
        ordering = ("created_at", "id")
        verbose_name_plural = "balance entries"
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(balance__isnull=True, user__isnull=True, balance_after__isnull=True)
                    | models.Q(balance__isnull=False, user__isnull=False, balance_after__gte=0)
                ),
                name="balance_entry_world_or_user",
            ),
            models.CheckConstraint(condition=~models.Q(delta=0), name="balance_entry_nonzero"),
        ]
        indexes = [
            models.Index(
                fields=["user", "currency", "-created_at", "-id"], name="entry_user_time_idx"
            ),
            models.Index(
                fields=["currency", "created_at"],
                name="entry_world_idx",
                condition=models.Q(balance__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        who = self.user_id if self.user_id else "world"
        return f"{who} {self.delta:+} {self.currency_id}"

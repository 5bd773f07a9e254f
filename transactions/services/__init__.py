"""Money movement services; each sub-module owns one kind of work, re-exported here."""

from transactions.services.movements import (
    add_transaction_inserts,
    credit,
    debit,
    legs_for,
    new_transaction,
    on_movements_committed,
    reverse,
    transaction_event,
    transfer,
    transition,
)

__all__ = [
    "add_transaction_inserts",
    "credit",
    "debit",
    "legs_for",
    "new_transaction",
    "on_movements_committed",
    "reverse",
    "transaction_event",
    "transfer",
    "transition",
]

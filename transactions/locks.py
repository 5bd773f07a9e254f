"""Locking transaction rows. Order: transaction rows before user rows before balance rows."""

import uuid

from django.core.exceptions import ValidationError

from transactions.models import Transaction
from wallet_project.errors import NotFoundError


def lock_transaction(*, transaction_id: uuid.UUID | str) -> Transaction:
    """Lock one transaction row (`FOR UPDATE`); raises NotFoundError for an unknown id."""
    try:
        return Transaction.objects.select_for_update().get(pk=transaction_id)
    except (Transaction.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFoundError("No such transaction.") from None

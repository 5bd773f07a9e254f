"""Manual adjustments by back-office staff: chargebacks, corrections, goodwill credits, fees.

An adjustment is a normal credit or debit against the world account, so balances, entries
and audit events follow the same rules as any other movement. What makes it an adjustment:
an admin is the actor (recorded on the transaction as `initiated_by` and on its
`transaction.completed` event as `actor_id`), and the kind and reason are the description.
"""

from collections.abc import Callable
from decimal import Decimal

from django.db import models

from accounts.models import User
from transactions.idempotency import IdempotencyRequest
from transactions.models import Transaction, TransactionType
from transactions.services.movements import credit, debit
from wallet_project.errors import PermissionDeniedError, ValidationFailedError

ADJUSTMENT_PREFIX = "Manual adjustment"


class AdjustmentKind(models.TextChoices):
    CHARGEBACK = "chargeback", "Chargeback"
    CORRECTION = "correction", "Correction"
    GOODWILL = "goodwill", "Goodwill credit"
    FEE = "fee", "Fee"
    OTHER = "other", "Other"


def adjustment_description(*, kind: str, reason: str) -> str:
    """`Manual adjustment (chargeback): <reason>`, cut to the 500 characters a description holds."""
    return f"{ADJUSTMENT_PREFIX} ({AdjustmentKind(kind).label.lower()}): {reason}"[:500]


def adjust_balance(
    *,
    actor: User,
    user: User,
    direction: str,
    amount: Decimal,
    currency: str,
    kind: str,
    reason: str,
    idempotency: IdempotencyRequest | None = None,
) -> Transaction:
    """Credit or debit `user` by hand, as `actor` (an admin), for `reason`.

    `direction` is `credit` (money enters the account) or `debit` (money leaves it). The
    movement is `services.credit` / `services.debit`, each in its own database transaction
    with its locks. Raises PermissionDeniedError (actor not an admin), ValidationFailedError
    (no reason, unknown direction or kind), and whatever the movement raises
    (InsufficientFundsError, AccountInactiveError, IdempotencyKeyReusedError);
    IdempotentReplay when `idempotency` names an adjustment already applied.
    """
    if not (actor.is_active and actor.is_admin):
        raise PermissionDeniedError("Only an admin can adjust a balance.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailedError(details={"reason": ["A reason is required."]})
    if kind not in AdjustmentKind.values:
        raise ValidationFailedError(details={"kind": [f"'{kind}' is not an adjustment kind."]})
    movements: dict[str, Callable[..., Transaction]] = {
        TransactionType.CREDIT: credit,
        TransactionType.DEBIT: debit,
    }
    if direction not in movements:
        raise ValidationFailedError(details={"direction": ["Use 'credit' or 'debit'."]})
    return movements[direction](
        actor=actor,
        user=user,
        amount=amount,
        currency=currency,
        description=adjustment_description(kind=kind, reason=reason),
        idempotency=idempotency,
    )

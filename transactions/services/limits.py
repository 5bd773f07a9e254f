"""Setting transfer limits (see `transactions.limits` for how they bind movements)."""

from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.models import User
from audit.services import record_event
from money.amounts import currency_info, format_amount
from transactions.models import TransferLimit
from wallet_project.errors import ConflictError, PermissionDeniedError, ValidationFailedError


def _cap(value: Decimal | None, currency: str, field: str) -> None:
    if value is None:
        return
    if value <= 0:
        raise ValidationFailedError(details={field: ["A limit must be more than zero."]})
    if value != value.quantize(Decimal(1).scaleb(-currency_info(currency).exponent)):
        raise ValidationFailedError(details={field: [f"Too many decimal places for {currency}."]})


def check_limit(limit: TransferLimit) -> None:
    """Raise ValidationFailedError or ConflictError if `limit` cannot be saved as it is."""
    currency = limit.currency_id
    _cap(limit.max_per_transaction, currency, "max_per_transaction")
    _cap(limit.max_per_day, currency, "max_per_day")
    if limit.max_per_transaction is None and limit.max_per_day is None:
        raise ValidationFailedError(details={"max_per_day": ["Set at least one cap."]})
    if limit.is_active:
        others = TransferLimit.objects.filter(
            # An exact lookup of None is IS NULL; django-stubs accept no None for a nullable key.
            currency_id=currency,
            user_id=limit.user_id,  # type: ignore[misc]
            is_active=True,
        ).exclude(pk=limit.pk)
        if others.exists():
            raise ConflictError(
                "This account already has an active limit rule in this currency.",
                details={"currency": currency, "user_id": limit.user_id},
            )


@transaction.atomic
def save_limit(
    *,
    actor: User,
    limit: TransferLimit,
    reason: str,
) -> TransferLimit:
    """Create or change a limit rule as `actor` (an admin), for `reason`, with its audit event.

    Raises PermissionDeniedError (not an admin), ValidationFailedError (no reason, no cap,
    a cap not above zero or with more digits than the currency has), ConflictError
    (another active rule for the same account and currency).
    """
    if not (actor.is_active and actor.is_admin):
        raise PermissionDeniedError("Only an admin can set limits.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailedError(details={"reason": ["A reason is required."]})
    check_limit(limit)
    currency = limit.currency_id
    created = limit._state.adding
    limit.reason = reason[:500]
    limit.updated_by = actor
    try:
        with transaction.atomic():
            limit.save()
    except IntegrityError as exc:
        raise ConflictError(
            "This account already has an active limit rule in this currency.",
            details={"currency": currency, "user_id": limit.user_id},
        ) from exc
    record_event(
        actor_id=actor.pk,
        action="limit.created" if created else "limit.changed",
        entity_type="transfer_limit",
        entity_id=limit.pk,
        details={
            "currency": currency,
            "user_id": limit.user_id,
            "max_per_transaction": _shown(limit.max_per_transaction, currency),
            "max_per_day": _shown(limit.max_per_day, currency),
            "is_active": limit.is_active,
            "reason": limit.reason,
        },
    )
    return limit


def _shown(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else format_amount(value, currency)

"""Every write to users: registration, updates, role changes, deactivation, login outcomes."""

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from accounts.models import Role, User
from audit.services import lock_user_row, record_event
from wallet_project.errors import (
    ConflictError,
    PermissionDeniedError,
    ValidationFailedError,
)


def _normalize_email(email: str) -> str:
    local, _, domain = email.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def _check_unique(*, username: str | None, email: str | None, exclude_id: int | None) -> None:
    errors: dict[str, list[str]] = {}
    others = User.objects.exclude(pk=exclude_id) if exclude_id else User.objects.all()
    if username is not None and others.filter(username__iexact=username).exists():
        errors["username"] = ["A user with that username already exists."]
    if email is not None and others.filter(email__iexact=email).exists():
        errors["email"] = ["A user with that email already exists."]
    if errors:
        raise ValidationFailedError(details=errors)


def _validate_password(password: str, user: User) -> None:
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailedError(details={"password": list(exc.messages)}) from exc


def _user_details(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
    }


def _save_unique(user: User) -> None:
    """Save, turning a lost race on the case-insensitive unique indexes into a clean 400."""
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        text = str(exc)
        field = "email" if "email" in text else "username"
        raise ValidationFailedError(
            details={field: [f"A user with that {field} already exists."]}
        ) from exc


@transaction.atomic
def register_user(
    *, username: str, email: str, password: str, role: str = Role.USER, actor: User | None = None
) -> User:
    """Create a user (self-registration always makes a `user`). Raises ValidationFailedError."""
    email = _normalize_email(email)
    _check_unique(username=username, email=email, exclude_id=None)
    user = User(username=username, email=email, role=role, is_staff=role != Role.USER)
    _validate_password(password, user)
    user.set_password(password)
    _save_unique(user)
    record_event(
        actor_id=actor.pk if actor else user.pk,
        action="user.registered",
        entity_type="user",
        entity_id=user.pk,
        details=_user_details(user),
        chain=f"user:{user.pk}",
    )
    return user


@transaction.atomic
def update_user(
    *,
    actor: User,
    user: User,
    username: str | None = None,
    email: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    """Change a user's profile; only admins change `role` and `is_active`.

    Locks the user row. Raises PermissionDeniedError, ValidationFailedError, ConflictError.
    """
    if (role is not None or is_active is not None) and not actor.is_admin:
        raise PermissionDeniedError("Only an admin can change a role or activation.")
    lock_user_row(user_id=user.pk)
    user.refresh_from_db()
    if (
        password is not None
        and not actor.is_admin
        and (not current_password or not user.check_password(current_password))
    ):
        raise ValidationFailedError(
            details={"current_password": ["The current password is not correct."]}
        )
    before = _user_details(user)
    if email is not None:
        email = _normalize_email(email)
    _check_unique(username=username, email=email, exclude_id=user.pk)
    if username is not None:
        user.username = username
    if email is not None:
        user.email = email
    if password is not None:
        _validate_password(password, user)
        user.set_password(password)
    if role is not None:
        user.role = role
        user.is_staff = role != Role.USER or user.is_superuser
    if is_active is False and user.is_active:
        _ensure_no_money(user)
    if is_active is not None:
        user.is_active = is_active
    _save_unique(user)
    after = _user_details(user)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if password is not None:
        changes["password"] = {"changed": True}
    action = "user.updated"
    if "role" in changes:
        action = "user.role_changed"
    elif "is_active" in changes:
        action = "user.activated" if user.is_active else "user.deactivated"
    record_event(
        actor_id=actor.pk,
        action=action,
        entity_type="user",
        entity_id=user.pk,
        details={"changes": changes, **after},
        chain=f"user:{user.pk}",
    )
    return user


def _ensure_no_money(user: User) -> None:
    from balances.selectors import has_nonzero_balance

    if has_nonzero_balance(user_id=user.pk):
        raise ConflictError(
            "The user still holds money; move it out before deactivating.",
            details={"user_id": user.pk},
        )


@transaction.atomic
def deactivate_user(*, actor: User, user: User) -> User:
    """Soft-delete: deactivate and keep every transaction. Raises ConflictError while money is held.

    Locks the user row, then the user's balances (users before balances, like every path),
    so no transfer can straddle the deactivation.
    """
    from balances.locks import lock_user_balances

    lock_user_row(user_id=user.pk)
    lock_user_balances(user_id=user.pk)
    user.refresh_from_db()
    _ensure_no_money(user)
    user.is_active = False
    user.save(update_fields=["is_active", "updated_at"])
    record_event(
        actor_id=actor.pk,
        action="user.deactivated",
        entity_type="user",
        entity_id=user.pk,
        details=_user_details(user),
        chain=f"user:{user.pk}",
    )
    return user


@transaction.atomic
def set_frozen(*, actor: User, user: User, frozen: bool, reason: str) -> User:
    """Freeze or unfreeze an account: a frozen account can neither send nor receive.

    Locks the user row and the user's balances. Money stays where it is.
    """
    from balances.locks import lock_user_balances

    lock_user_row(user_id=user.pk)
    lock_user_balances(user_id=user.pk)
    user.refresh_from_db()
    user.is_active = not frozen
    user.save(update_fields=["is_active", "updated_at"])
    record_event(
        actor_id=actor.pk,
        action="user.frozen" if frozen else "user.unfrozen",
        entity_type="user",
        entity_id=user.pk,
        details={**_user_details(user), "reason": reason},
        chain=f"user:{user.pk}",
    )
    return user


@transaction.atomic
def record_login(*, user: User | None, username: str, succeeded: bool) -> None:
    """Audit a login attempt: success or failure (for a known user, on that user's chain)."""
    if user is not None:
        lock_user_row(user_id=user.pk)
    record_event(
        actor_id=user.pk if user else None,
        action="user.logged_in" if succeeded else "user.login_failed",
        entity_type="user",
        entity_id=user.pk if user else username[:64],
        details={"username": username[:150]},
        chain=f"user:{user.pk}" if user else "",
    )

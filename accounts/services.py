"""Every write to users: registration, updates, role changes, deactivation, logins and tokens.

Lock order, like every path that touches a user: the user row (`lock_user_row`, which is also
the `user:<id>` audit chain), then that user's balances (`lock_user_balances`).
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch, get_md5_hash_password

from accounts.authorization import ensure_may_change
from accounts.locks import lock_user_row
from accounts.models import Role, User
from audit.services import record_event
from wallet_project.errors import (
    ConflictError,
    InvalidTokenError,
    PermissionDeniedError,
    TokenExpiredError,
    ValidationFailedError,
)


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int


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


def _record_user_event(
    *, actor_id: int | None, user: User, action: str, details: dict[str, Any]
) -> None:
    """Audit `action` on the user's own chain (`user:<id>`), whose row lock the caller holds
    (or whose row it has just inserted)."""
    record_event(
        actor_id=actor_id,
        action=action,
        entity_type="user",
        entity_id=user.pk,
        details=details,
        chain=f"user:{user.pk}",
    )


def _save_unique(user: User) -> None:
    """Save, turning a lost race on the case-insensitive unique indexes into a clean 400."""
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        text = str(exc)
        if "user_email_ci_unique" in text:
            field = "email"
        elif "user_username_ci_unique" in text or "username" in text:
            field = "username"
        else:
            raise
        raise ValidationFailedError(
            details={field: [f"A user with that {field} already exists."]}
        ) from exc


def _revoke_refresh_tokens(*, user_id: int) -> int:
    """Blacklist every unexpired refresh token of a user: all sessions end. Returns the count."""
    live = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
    )
    return len(created)


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
    _record_user_event(
        actor_id=actor.pk if actor else user.pk,
        user=user,
        action="user.registered",
        details=_user_details(user),
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

    Changing one's own password needs the current one (an admin resetting another user's
    does not); a new password ends every session of that user. Deactivating locks the
    user's balances like `deactivate_user`.

    Locks the user row (then the balances when deactivating). Raises PermissionDeniedError
    (also for an admin changing their own role or activation), ValidationFailedError,
    ConflictError. Writes `user.updated`, `user.role_changed`,
    `user.activated` or `user.deactivated`. An auditor changes no one, not even themselves.
    """
    ensure_may_change(actor)
    if (role is not None or is_active is not None) and not actor.is_admin:
        raise PermissionDeniedError("Only an admin can change a role or activation.")
    if actor.pk != user.pk and not actor.is_admin:
        raise PermissionDeniedError("Only an admin can change another user.")
    _ensure_not_self_lockout(actor=actor, user=user, role=role, is_active=is_active)
    lock_user_row(user_id=user.pk)
    user.refresh_from_db()
    needs_current = password is not None and (actor.pk == user.pk or not actor.is_admin)
    if needs_current and not (current_password and user.check_password(current_password)):
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
        _lock_and_ensure_no_money(user)
    if is_active is not None:
        user.is_active = is_active
    _save_unique(user)
    if password is not None or is_active is False:
        _revoke_refresh_tokens(user_id=user.pk)
    after = _user_details(user)
    changes = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if password is not None:
        changes["password"] = {"changed": True}
    action = "user.updated"
    if "role" in changes:
        action = "user.role_changed"
    elif "is_active" in changes:
        action = "user.activated" if user.is_active else "user.deactivated"
    _record_user_event(
        actor_id=actor.pk,
        user=user,
        action=action,
        details={"changes": changes, **after},
    )
    return user


def _ensure_admin(actor: User, message: str) -> None:
    if not (actor.is_active and actor.is_admin):
        raise PermissionDeniedError(message)


def _ensure_not_self_lockout(
    *, actor: User, user: User, role: str | None, is_active: bool | None
) -> None:
    """An admin may not demote or deactivate themselves: another admin must do it."""
    if actor.pk != user.pk:
        return
    if role is not None and role != user.role:
        raise PermissionDeniedError("An admin cannot change their own role.")
    if is_active is False:
        raise PermissionDeniedError("An admin cannot deactivate their own account.")


def _ensure_no_money(user: User) -> None:
    from balances.selectors import has_nonzero_balance

    if has_nonzero_balance(user_id=user.pk):
        raise ConflictError(
            "The user still holds money; move it out before deactivating.",
            details={"user_id": user.pk},
        )


def _lock_and_ensure_no_money(user: User) -> None:
    """Lock the user's balances (after the user row) so no credit lands mid-deactivation."""
    from balances.locks import lock_user_balances

    lock_user_balances(user_id=user.pk)
    _ensure_no_money(user)


@transaction.atomic
def deactivate_user(*, actor: User, user: User) -> User:
    """Soft-delete: deactivate and keep every transaction. Raises ConflictError while money is held.

    Locks the user row, then the user's balances (users before balances, like every path),
    so no transfer can straddle the deactivation. Ends every session of the user.
    Raises PermissionDeniedError (the actor is not an admin, or deactivates themselves).
    """
    _ensure_admin(actor, "Only an admin can deactivate a user.")
    _ensure_not_self_lockout(actor=actor, user=user, role=None, is_active=False)
    lock_user_row(user_id=user.pk)
    _lock_and_ensure_no_money(user)
    user.refresh_from_db()
    user.is_active = False
    user.save(update_fields=["is_active", "updated_at"])
    _revoke_refresh_tokens(user_id=user.pk)
    _record_user_event(
        actor_id=actor.pk,
        user=user,
        action="user.deactivated",
        details=_user_details(user),
    )
    return user


@transaction.atomic
def set_frozen(*, actor: User, user: User, frozen: bool, reason: str) -> User:
    """Freeze or unfreeze an account: a frozen account can neither send nor receive.

    Locks the user row and the user's balances. Money stays where it is.
    Raises PermissionDeniedError (the actor is not an admin).
    """
    _ensure_admin(actor, "Only an admin can freeze or unfreeze an account.")
    from balances.locks import lock_user_balances

    lock_user_row(user_id=user.pk)
    lock_user_balances(user_id=user.pk)
    user.refresh_from_db()
    user.is_active = not frozen
    user.save(update_fields=["is_active", "updated_at"])
    if frozen:
        _revoke_refresh_tokens(user_id=user.pk)
    _record_user_event(
        actor_id=actor.pk,
        user=user,
        action="user.frozen" if frozen else "user.unfrozen",
        details={**_user_details(user), "reason": reason},
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


def issue_tokens(*, user: User) -> TokenPair:
    """A new session: an access token and a refresh token (recorded as outstanding)."""
    refresh = RefreshToken.for_user(user)
    return TokenPair(
        access=str(refresh.access_token),
        refresh=str(refresh),
        expires_in=int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    )


class _UncheckedRefreshToken(RefreshToken):
    """A refresh token verified for signature, expiry and type, but not yet for the blacklist:
    `_rotate` checks that under the token's row lock, where a reuse can be told from a race."""

    def check_blacklist(self) -> None:
        return None


def _read_refresh_token(raw: str, *, token_class: type[RefreshToken] = RefreshToken):
    try:
        # simplejwt annotates `token` as a Token; it is the encoded token, a str.
        return token_class(raw)  # type: ignore[arg-type]
    except ExpiredTokenError as exc:
        raise TokenExpiredError("The refresh token has expired.") from exc
    except TokenError as exc:
        raise InvalidTokenError("The refresh token is invalid.") from exc


def rotate_refresh_token(*, refresh: str) -> TokenPair:
    """Exchange a refresh token for a new pair; the old one is blacklisted in the same commit.

    Locks the token's outstanding row, so two concurrent refreshes with one token cannot both
    succeed. Presenting a token that was already rotated or revoked is treated as theft (RFC
    9700, refresh token reuse): every session of that user ends, and the answer is
    InvalidTokenError. Raises TokenExpiredError, InvalidTokenError (also for an inactive user
    or a password changed since the token was issued).
    """
    token = _read_refresh_token(refresh, token_class=_UncheckedRefreshToken)
    outcome, pair, user_id = _rotate(token=token, raw=refresh)
    if outcome == "reused" and user_id is not None:  # a reused token names its user
        with transaction.atomic():
            _revoke_refresh_tokens(user_id=user_id)
        raise InvalidTokenError("This refresh token was already used; every session was ended.")
    if pair is None:
        raise InvalidTokenError("The refresh token is invalid.")
    return pair


@transaction.atomic
def _rotate(*, token: RefreshToken, raw: str) -> tuple[str, TokenPair | None, int | None]:
    """("rotated", pair, user id) or ("reused" | "refused", None, user id)."""
    user = User.objects.filter(pk=token.get(jwt_settings.USER_ID_CLAIM)).first()
    if user is None:
        return "refused", None, None
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=token[jwt_settings.JTI_CLAIM],
        defaults={
            "user": user,
            "token": raw,
            "created_at": timezone.now(),
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    outstanding = OutstandingToken.objects.select_for_update().get(pk=outstanding.pk)
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        return "reused", None, user.pk
    if not user.is_active or not _password_unchanged(token, user):
        return "refused", None, user.pk
    BlacklistedToken.objects.create(token=outstanding)
    token.set_jti()
    token.set_exp()
    token.set_iat()
    token.outstand()
    pair = TokenPair(
        access=str(token.access_token),
        refresh=str(token),
        expires_in=int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    )
    return "rotated", pair, user.pk


def _password_unchanged(token: RefreshToken, user: User) -> bool:
    claim = token.get(jwt_settings.REVOKE_TOKEN_CLAIM)
    return claim is None or claim == get_md5_hash_password(user.password)


@transaction.atomic
def revoke_refresh_token(*, user: User, refresh: str) -> None:
    """Log out one session: blacklist the caller's own refresh token and audit `user.logged_out`.

    Locks the user row. Raises InvalidTokenError for a token that is invalid, already
    revoked, or another user's; TokenExpiredError for an expired one.
    """
    token = _read_refresh_token(refresh)
    if str(token.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise InvalidTokenError("This refresh token belongs to another user.")
    lock_user_row(user_id=user.pk)
    token.blacklist()
    _record_user_event(
        actor_id=user.pk,
        user=user,
        action="user.logged_out",
        details={"username": user.username},
    )

"""Reads of users, scoped to the viewer."""

from django.db.models import Q, QuerySet

from accounts.models import User
from wallet_project.errors import NotFoundError


def list_users(
    *, role: str | None = None, is_active: bool | None = None, search: str | None = None
) -> QuerySet[User]:
    qs = User.objects.all()
    if role:
        qs = qs.filter(role=role)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    if search:
        qs = qs.filter(Q(username__icontains=search) | Q(email__icontains=search))
    return qs


def get_user_for_viewer(*, viewer: User, user_id: object) -> User:
    """A user the viewer may see (self, or anyone for admins/auditors); else NotFoundError."""
    try:
        pk = int(str(user_id))
    except ValueError:
        raise NotFoundError() from None
    if not viewer.can_read_all and viewer.pk != pk:
        raise NotFoundError()
    user = User.objects.filter(pk=pk).first()
    if user is None:
        raise NotFoundError()
    return user


def get_active_user(*, user_id: object) -> User | None:
    try:
        pk = int(str(user_id))
    except (TypeError, ValueError):
        return None
    return User.objects.filter(pk=pk).first()

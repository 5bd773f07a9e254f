"""Reads of users, scoped to the viewer."""

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import User
from wallet_project.errors import NotFoundError
from wallet_project.statements import epoch_micros, from_epoch_micros

# users.id is a bigint: anything outside it names no user (and must not reach PostgreSQL).
_MAX_ID = 2**63 - 1


def _user_pk(value: object) -> int | None:
    """A user primary key parsed from a path or body value, or None if it cannot be one."""
    if isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text.isascii() or not text.isdigit():
        return None
    pk = int(text)
    return pk if 0 < pk <= _MAX_ID else None


def list_users(
    *, role: str | None = None, is_active: bool | None = None, search: str | None = None
) -> QuerySet[User]:
    """Users filtered by role, activation and a username/email substring."""
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
    pk = _user_pk(user_id)
    if pk is None or (not viewer.can_read_all and viewer.pk != pk):
        raise NotFoundError()
    user = User.objects.filter(pk=pk).first()
    if user is None:
        raise NotFoundError()
    return user


_FIELDS = User._meta.concrete_fields
_ATTNAMES = [f.attname for f in _FIELDS]
# Timestamps come as epoch microseconds (`epoch_micros`): four of them, loaded in Python,
# were a quarter of the cost of this read, which every authenticated request makes.
_TIMESTAMPS = [i for i, f in enumerate(_FIELDS) if f.get_internal_type() == "DateTimeField"]
_SELECTED = [
    epoch_micros(f.column) if i in _TIMESTAMPS else f.column for i, f in enumerate(_FIELDS)
]
_BY_PK = f"SELECT {', '.join(_SELECTED)} FROM {User._meta.db_table} WHERE id = %s"  # noqa: S608


def user_by_pk(pk: int) -> User | None:
    """The user with this primary key: one prepared statement, no query building.

    Every authenticated request and every movement's recipient takes this path, where
    building the ORM query would cost more than running it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_BY_PK, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i in _TIMESTAMPS:
        values[i] = from_epoch_micros(values[i])
    return User.from_db(connection.alias, _ATTNAMES, values)


def find_user(*, user_id: object) -> User | None:
    """The user with this id, active or not, or None (services check activity under their locks)."""
    pk = _user_pk(user_id)
    return None if pk is None else user_by_pk(pk)


def user_reference(*, user_id: object) -> User | None:
    """A reference to the user with this id, not read (None if the value cannot be an id).

    For services that check the user's existence and activity themselves, under their
    locks: a transfer's recipient (see `transactions.services.movements.lock_parties`).
    """
    pk = _user_pk(user_id)
    return None if pk is None else User(pk=pk)


def get_user_by_login(*, login: str) -> User | None:
    """The user a login name designates: by username, else by email, both case-insensitively."""
    return (
        User.objects.filter(Q(username__iexact=login) | Q(email__iexact=login))
        .order_by("id")
        .first()
    )

"""accounts.selectors: the user read every authenticated request makes."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.selectors import find_user, user_by_pk
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

FIELDS = [f.attname for f in User._meta.concrete_fields]


def _values(user: User) -> dict:
    return {name: getattr(user, name) for name in FIELDS}


def test_user_by_pk_reads_every_field_as_the_orm_does():
    user = UserFactory(role="auditor")
    User.objects.filter(pk=user.pk).update(
        last_login=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
        date_joined=datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    )

    read = user_by_pk(user.pk)

    assert _values(read) == _values(User.objects.get(pk=user.pk))
    assert read.last_login == datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert read.date_joined.microsecond == 999999
    assert read.created_at.utcoffset().total_seconds() == 0
    assert read.get_deferred_fields() == set()
    assert read._state.adding is False
    assert read._state.db == "default"


def test_user_by_pk_keeps_a_missing_timestamp_none_and_reads_one_statement():
    user = UserFactory()
    assert User.objects.get(pk=user.pk).last_login is None

    with CaptureQueriesContext(connection) as queries:
        read = user_by_pk(user.pk)
        read.email, read.created_at, read.password  # noqa: B018 - nothing loads later

    assert read.last_login is None
    assert len(queries) == 1


def test_unknown_or_impossible_ids_read_no_user():
    assert user_by_pk(2**62) is None
    assert find_user(user_id="12abc") is None
    assert find_user(user_id=True) is None
    assert find_user(user_id=2**63) is None

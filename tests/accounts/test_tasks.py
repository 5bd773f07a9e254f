from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.tasks import flush_expired_tokens

pytestmark = pytest.mark.django_db


def test_flush_expired_tokens_deletes_only_expired_refresh_tokens(user):
    # given
    now = timezone.now()
    OutstandingToken.objects.create(
        user=user,
        jti="old",
        token="x",
        created_at=now - timedelta(days=9),
        expires_at=now - timedelta(days=2),
    )
    OutstandingToken.objects.create(
        user=user, jti="live", token="y", created_at=now, expires_at=now + timedelta(days=7)
    )
    # when
    flush_expired_tokens.delay()
    # then
    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == ["live"]

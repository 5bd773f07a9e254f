"""accounts.services on their own: the rules they check whoever calls them, and their races."""

import threading

import pytest
from django.db import connection
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.models import User
from audit.models import AuditLog
from tests.accounts.factories import UserFactory
from wallet_project.errors import (
    InvalidTokenError,
    PermissionDeniedError,
    ValidationFailedError,
)

STRONG_PASSWORD = "Plum-Orbit-Canyon-77"


def _run_together(*calls):
    """Run each call in its own thread, started behind one barrier; return (results, errors)."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:
            errors[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


@pytest.mark.django_db
def test_register_user_lowercases_the_email_domain_only():
    # when
    user = services.register_user(
        username="dora", email="  Dora.Explorer@MAPS.Example ", password=STRONG_PASSWORD
    )
    # then
    assert user.email == "Dora.Explorer@maps.example"


@pytest.mark.django_db
def test_update_user_refuses_a_role_change_by_a_non_admin_whoever_calls_it():
    # given
    user = UserFactory()
    # when
    with pytest.raises(PermissionDeniedError):
        services.update_user(actor=user, user=user, role="admin")
    # then
    user.refresh_from_db()
    assert user.role == "user"
    assert not AuditLog.objects.filter(entity_id=str(user.pk)).exists()


@pytest.mark.django_db
def test_update_user_refuses_a_non_admin_changing_someone_else():
    # given
    auditor = UserFactory(role="auditor")
    victim = UserFactory()
    # when
    with pytest.raises(PermissionDeniedError):
        services.update_user(actor=auditor, user=victim, username="renamed")
    # then
    victim.refresh_from_db()
    assert victim.username != "renamed"


@pytest.mark.django_db
def test_deactivate_user_ends_every_session():
    # given
    admin = UserFactory(role="admin")
    user = UserFactory()
    first = services.issue_tokens(user=user)
    second = services.issue_tokens(user=user)
    # when
    services.deactivate_user(actor=admin, user=user)
    # then
    assert BlacklistedToken.objects.filter(token__user=user).count() == 2
    for pair in (first, second):
        with pytest.raises(InvalidTokenError):
            services.rotate_refresh_token(refresh=pair.refresh)


@pytest.mark.django_db
def test_rotate_refresh_token_records_the_new_token_as_outstanding():
    # given
    user = UserFactory()
    pair = services.issue_tokens(user=user)
    # when
    rotated = services.rotate_refresh_token(refresh=pair.refresh)
    # then
    assert OutstandingToken.objects.filter(user=user).count() == 2
    assert BlacklistedToken.objects.filter(token__user=user).count() == 1
    assert rotated.expires_in == pair.expires_in


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_never_both_succeed():
    # given
    user = UserFactory()
    pair = services.issue_tokens(user=user)

    def refresh():
        return services.rotate_refresh_token(refresh=pair.refresh)

    # when
    results, errors = _run_together(refresh, refresh)
    # then
    succeeded = [r for r in results if r is not None]
    assert len(succeeded) == 1
    assert [type(e) for e in errors if e is not None] == [InvalidTokenError]
    # the loser presented a spent token: treated as theft, the winner's session ends too
    with pytest.raises(InvalidTokenError):
        services.rotate_refresh_token(refresh=succeeded[0].refresh)


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_registrations_of_one_name_make_one_user_and_one_clean_refusal():
    # given
    def register(email):
        return lambda: services.register_user(
            username="Twin", email=email, password=STRONG_PASSWORD
        )

    # when
    results, errors = _run_together(register("a@example.com"), register("b@example.com"))
    # then
    assert sum(r is not None for r in results) == 1
    refusals = [e for e in errors if e is not None]
    assert len(refusals) == 1
    assert isinstance(refusals[0], ValidationFailedError), refusals
    assert set(refusals[0].details) == {"username"}
    assert User.objects.filter(username__iexact="twin").count() == 1
    assert AuditLog.objects.filter(action="user.registered").count() == 1

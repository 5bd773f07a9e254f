"""GET/PUT/PATCH/DELETE users, as docs/api.md says: who may do what, and what each change records."""

from decimal import Decimal

import pytest

from accounts.models import User
from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import PASSWORD, UserFactory
from tests.conftest import client_for
from tests.wallet_project.envelope import assert_error
from transactions import services as money_services
from transactions.models import Transaction

pytestmark = pytest.mark.django_db

USER_FIELDS = {"id", "username", "email", "role", "is_active", "created_at", "updated_at"}
NEW_PASSWORD = "Plum-Orbit-Canyon-77"


def _events(user, action=None):
    qs = AuditLog.objects.filter(entity_type="user", entity_id=str(user.pk))
    return qs.filter(action=action) if action else qs


def _usernames(response) -> set[str]:
    return {row["username"] for row in response.json()["results"]}


# ------------------------------------------------------------------ list


@pytest.mark.parametrize("reader", ["admin_client", "auditor_client"])
def test_admins_and_auditors_list_users_paginated(request, reader, user, other_user):
    # given
    client = request.getfixturevalue(reader)
    # when
    response = client.get("/api/v1/users")
    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert {user.username, other_user.username} <= _usernames(response)
    assert all(set(row) == USER_FIELDS for row in body["results"])


def test_user_list_is_paginated_with_a_cursor(admin_client):
    # given
    UserFactory.create_batch(4)
    # when
    first = admin_client.get("/api/v1/users", {"page_size": 2})
    second = admin_client.get(first.json()["next"])
    # then
    assert len(first.json()["results"]) == 2
    assert len(second.json()["results"]) == 2
    assert not _usernames(first) & _usernames(second)


def test_user_list_filters_by_role(admin_client, admin_user, auditor, user):
    # when
    response = admin_client.get("/api/v1/users", {"role": "auditor"})
    # then
    assert _usernames(response) == {auditor.username}


def test_user_list_filters_by_activation(admin_client, user):
    # given
    sleeper = UserFactory(is_active=False)
    # when
    inactive = admin_client.get("/api/v1/users", {"is_active": "false"})
    active = admin_client.get("/api/v1/users", {"is_active": "true"})
    # then
    assert _usernames(inactive) == {sleeper.username}
    assert sleeper.username not in _usernames(active)
    assert user.username in _usernames(active)


def test_user_list_searches_username_and_email_case_insensitively(admin_client, user):
    # given
    by_name = UserFactory(username="zebra-keeper", email="k@example.com")
    by_email = UserFactory(username="plain", email="ZEBRA@zoo.example")
    # when
    response = admin_client.get("/api/v1/users", {"search": "Zebra"})
    # then
    assert _usernames(response) == {by_name.username, by_email.username}


@pytest.mark.parametrize("query", [{"is_active": "maybe"}, {"role": "wizard"}])
def test_user_list_refuses_an_invalid_filter(admin_client, query):
    # when
    response = admin_client.get("/api/v1/users", query)
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == set(query)


def test_a_user_may_not_list_users(user_client):
    # when
    response = user_client.get("/api/v1/users")
    # then
    assert_error(response, 403, "permission_denied")


def test_listing_users_needs_authentication(api_client):
    # when
    response = api_client.get("/api/v1/users")
    # then
    assert_error(response, 401, "not_authenticated")


# ------------------------------------------------------------------ detail


@pytest.mark.parametrize("reader", ["user_client", "admin_client", "auditor_client"])
def test_self_admin_and_auditor_see_a_user(request, reader, user):
    # given
    client = request.getfixturevalue(reader)
    # when
    response = client.get(f"/api/v1/users/{user.pk}")
    # then
    assert response.status_code == 200
    assert response.json()["id"] == user.pk
    assert set(response.json()) == USER_FIELDS


def test_a_user_gets_404_for_another_user(user_client, other_user):
    # when
    response = user_client.get(f"/api/v1/users/{other_user.pk}")
    # then
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999", "-1", "0"])
def test_an_unknown_or_malformed_user_id_is_404(admin_client, pk):
    # when
    response = admin_client.get(f"/api/v1/users/{pk}")
    # then
    assert_error(response, 404, "not_found")


# ------------------------------------------------------------------ self-service changes


def test_a_user_changes_their_username_and_email(user_client, user):
    # given
    old_username = user.username
    # when
    response = user_client.patch(
        f"/api/v1/users/{user.pk}",
        {"username": "renamed", "email": "New.Address@EXAMPLE.org"},
        format="json",
    )
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["username"] == "renamed"
    assert response.json()["email"] == "New.Address@example.org"
    user.refresh_from_db()
    assert (user.username, user.email) == ("renamed", "New.Address@example.org")
    event = _events(user, "user.updated").get()
    assert event.actor_id == user.pk
    assert event.details["changes"]["username"] == {"from": old_username, "to": "renamed"}


def test_a_user_changes_their_password_with_the_current_one(api_client, user_client, user):
    # when
    response = user_client.patch(
        f"/api/v1/users/{user.pk}",
        {"password": NEW_PASSWORD, "current_password": PASSWORD},
        format="json",
    )
    # then
    assert response.status_code == 200
    assert "password" not in response.json()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    event = _events(user, "user.updated").get()
    assert event.details["changes"] == {"password": {"changed": True}}
    assert NEW_PASSWORD not in str(event.details)


@pytest.mark.parametrize(
    "body",
    [
        {"password": NEW_PASSWORD, "current_password": "Not-The-Password-9"},
        {"password": NEW_PASSWORD},
    ],
    ids=["wrong-current", "missing-current"],
)
def test_a_password_change_without_the_right_current_password_is_refused(user_client, user, body):
    # when
    response = user_client.patch(f"/api/v1/users/{user.pk}", body, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"current_password"}
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert not _events(user).exists()


def test_an_admin_changing_their_own_password_also_needs_the_current_one(admin_client, admin_user):
    # when
    response = admin_client.patch(
        f"/api/v1/users/{admin_user.pk}", {"password": NEW_PASSWORD}, format="json"
    )
    # then
    assert_error(response, 400, "validation_error")
    admin_user.refresh_from_db()
    assert admin_user.check_password(PASSWORD)


def test_an_admin_resets_another_users_password_without_theirs(admin_client, user):
    # when
    response = admin_client.patch(
        f"/api/v1/users/{user.pk}", {"password": NEW_PASSWORD}, format="json"
    )
    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_a_weak_new_password_is_refused(user_client, user):
    # when
    response = user_client.patch(
        f"/api/v1/users/{user.pk}",
        {"password": "123", "current_password": PASSWORD},
        format="json",
    )
    # then
    error = assert_error(response, 400, "validation_error")
    assert "password" in error["details"]
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_a_username_taken_in_another_case_is_refused_on_update(user_client, user, other_user):
    # when
    response = user_client.patch(
        f"/api/v1/users/{user.pk}", {"username": other_user.username.upper()}, format="json"
    )
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"username"}
    before = user.username
    user.refresh_from_db()
    assert user.username == before


def test_an_email_taken_in_another_case_is_refused_on_update(user_client, user, other_user):
    # when
    response = user_client.patch(
        f"/api/v1/users/{user.pk}", {"email": other_user.email.upper()}, format="json"
    )
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"email"}


def test_an_invalid_username_is_refused_on_update(user_client, user):
    # when
    response = user_client.patch(f"/api/v1/users/{user.pk}", {"username": "no"}, format="json")
    # then
    assert_error(response, 400, "validation_error")


@pytest.mark.parametrize("body", [{"role": "admin"}, {"is_active": False}, {"role": "user"}])
def test_a_user_sending_role_or_is_active_is_refused(user_client, user, body):
    # when
    response = user_client.patch(f"/api/v1/users/{user.pk}", body, format="json")
    # then
    assert_error(response, 403, "permission_denied")
    user.refresh_from_db()
    assert (user.role, user.is_active) == ("user", True)
    assert not _events(user).exists()


def test_a_user_cannot_change_another_user(user_client, other_user):
    # when
    response = user_client.patch(
        f"/api/v1/users/{other_user.pk}", {"username": "hijacked"}, format="json"
    )
    # then
    assert_error(response, 404, "not_found")
    other_user.refresh_from_db()
    assert other_user.username != "hijacked"


def test_an_auditor_reads_but_cannot_change_another_user(auditor_client, user):
    # when
    response = auditor_client.patch(
        f"/api/v1/users/{user.pk}", {"username": "audited"}, format="json"
    )
    # then
    assert_error(response, 403, "permission_denied")
    user.refresh_from_db()
    assert user.username != "audited"


def test_put_replaces_the_profile(user_client, user):
    # when
    response = user_client.put(
        f"/api/v1/users/{user.pk}",
        {"username": "replaced", "email": "replaced@example.com"},
        format="json",
    )
    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.username, user.email) == ("replaced", "replaced@example.com")


def test_put_needs_the_whole_profile(user_client, user):
    # when
    response = user_client.put(f"/api/v1/users/{user.pk}", {"username": "half"}, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"email"}
    user.refresh_from_db()
    assert user.username != "half"


# ------------------------------------------------------------------ admin changes


def test_an_admin_changes_a_role(admin_client, admin_user, user):
    # when
    response = admin_client.patch(f"/api/v1/users/{user.pk}", {"role": "auditor"}, format="json")
    # then
    assert response.status_code == 200
    assert response.json()["role"] == "auditor"
    user.refresh_from_db()
    assert user.role == "auditor"
    assert user.is_staff
    event = _events(user, "user.role_changed").get()
    assert event.actor_id == admin_user.pk
    assert event.details["changes"]["role"] == {"from": "user", "to": "auditor"}


def test_an_admin_refuses_an_unknown_role(admin_client, user):
    # when
    response = admin_client.patch(f"/api/v1/users/{user.pk}", {"role": "root"}, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"role"}
    user.refresh_from_db()
    assert user.role == "user"


def test_an_admin_deactivates_and_reactivates_a_user(admin_client, user):
    # when
    off = admin_client.patch(f"/api/v1/users/{user.pk}", {"is_active": False}, format="json")
    on = admin_client.patch(f"/api/v1/users/{user.pk}", {"is_active": True}, format="json")
    # then
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert on.json()["is_active"] is True
    assert _events(user, "user.deactivated").count() == 1
    assert _events(user, "user.activated").count() == 1


def test_deactivating_through_patch_is_refused_while_money_is_held(admin_client, funded_user):
    # given
    holder = funded_user("10.00")
    events_before = _events(holder).count()
    # when
    response = admin_client.patch(f"/api/v1/users/{holder.pk}", {"is_active": False}, format="json")
    # then
    assert_error(response, 409, "conflict")
    holder.refresh_from_db()
    assert holder.is_active
    assert _events(holder).count() == events_before


# ------------------------------------------------------------------ delete


def test_an_admin_delete_is_a_soft_delete(admin_client, admin_user, user):
    # when
    response = admin_client.delete(f"/api/v1/users/{user.pk}")
    # then
    assert response.status_code == 204
    assert response.content == b""
    user.refresh_from_db()
    assert user.is_active is False
    event = _events(user, "user.deactivated").get()
    assert event.actor_id == admin_user.pk
    assert admin_client.get(f"/api/v1/users/{user.pk}").json()["is_active"] is False


def test_a_deleted_user_can_no_longer_log_in_or_use_a_token(admin_client, api_client, user):
    # given
    client = client_for(user)
    # when
    admin_client.delete(f"/api/v1/users/{user.pk}")
    # then
    assert_error(client.get("/api/v1/auth/me"), 401, "invalid_token")
    login = api_client.post(
        "/api/v1/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
    )
    assert_error(login, 401, "invalid_credentials")


def test_delete_keeps_the_users_transactions(admin_client, funded_user):
    # given: money came in and went out again, so every balance is zero
    holder = funded_user("25.00")
    money_services.debit(actor=holder, user=holder, amount=Decimal("25.00"), currency="USD")
    transactions_before = Transaction.objects.filter(to_user=holder).count()
    # when
    response = admin_client.delete(f"/api/v1/users/{holder.pk}")
    # then
    assert response.status_code == 204
    assert User.objects.filter(pk=holder.pk, is_active=False).exists()
    assert Transaction.objects.filter(to_user=holder).count() == transactions_before == 1
    assert Balance.objects.get(user=holder).amount == Decimal("0")


def test_delete_is_a_conflict_while_any_balance_is_non_zero(admin_client, funded_user):
    # given: one zero balance and one that still holds money
    holder = funded_user("10.00", currency="USD")
    funded_user("5.00", currency="EUR", user=holder)
    money_services.debit(actor=holder, user=holder, amount=Decimal("10.00"), currency="USD")
    events_before = _events(holder).count()
    # when
    response = admin_client.delete(f"/api/v1/users/{holder.pk}")
    # then
    error = assert_error(response, 409, "conflict")
    assert error["details"] == {"user_id": holder.pk}
    holder.refresh_from_db()
    assert holder.is_active
    assert _events(holder).count() == events_before


@pytest.mark.parametrize("caller", ["user_client", "auditor_client"])
def test_a_non_admin_cannot_delete_a_user(request, caller, user, other_user):
    # given
    client = request.getfixturevalue(caller)
    # when
    mine = client.delete(f"/api/v1/users/{user.pk}")
    theirs = client.delete(f"/api/v1/users/{other_user.pk}")
    # then
    assert_error(mine, 403, "permission_denied")
    assert_error(theirs, 403, "permission_denied")
    assert User.objects.filter(pk__in=[user.pk, other_user.pk], is_active=True).count() == 2
    assert not AuditLog.objects.filter(action="user.deactivated").exists()


def test_deleting_an_unknown_user_is_404(admin_client):
    # when
    response = admin_client.delete("/api/v1/users/987654321")
    # then
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "body"),
    [("patch", {"role": "user"}), ("patch", {"is_active": False}), ("delete", None)],
    ids=["own-role", "own-activation", "own-delete"],
)
def test_an_admin_cannot_lock_themselves_out(admin_client, admin_user, method, body):
    # when
    response = getattr(admin_client, method)(f"/api/v1/users/{admin_user.pk}", body, format="json")
    # then
    assert_error(response, 403, "permission_denied")
    admin_user.refresh_from_db()
    assert (admin_user.role, admin_user.is_active) == ("admin", True)
    assert not _events(admin_user).exists()


def test_an_admin_may_resend_their_unchanged_role(admin_client, admin_user):
    # when
    response = admin_client.patch(
        f"/api/v1/users/{admin_user.pk}", {"role": "admin", "username": "chief"}, format="json"
    )
    # then
    assert response.status_code == 200
    assert response.json()["username"] == "chief"


def test_an_empty_search_lists_everyone(admin_client, user, other_user):
    # when
    response = admin_client.get("/api/v1/users", {"search": ""})
    # then
    assert response.status_code == 200
    assert {user.username, other_user.username} <= _usernames(response)

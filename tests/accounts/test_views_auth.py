"""POST auth/register, auth/login, auth/refresh, auth/logout and GET auth/me, as docs/api.md says."""

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from audit.models import AuditLog
from tests.accounts.factories import PASSWORD, UserFactory
from tests.wallet_project.envelope import assert_error

pytestmark = pytest.mark.django_db

USER_FIELDS = {"id", "username", "email", "role", "is_active", "created_at", "updated_at"}
STRONG_PASSWORD = "Plum-Orbit-Canyon-77"


def _register(client, **overrides):
    body = {"username": "alice", "email": "alice@example.com", "password": STRONG_PASSWORD}
    body.update(overrides)
    return client.post("/api/v1/auth/register", body, format="json")


def _login(client, username, password=PASSWORD):
    return client.post(
        "/api/v1/auth/login", {"username": username, "password": password}, format="json"
    )


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _jti(raw: str) -> str:
    return RefreshToken(raw, verify=False)["jti"]


# ------------------------------------------------------------------ register


def test_register_creates_a_user_and_answers_the_user_object(api_client):
    # when
    response = _register(api_client, username="alice", email="Alice.Smith@Example.COM")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["username"] == "alice"
    assert body["email"] == "Alice.Smith@example.com"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]
    user = User.objects.get(pk=body["id"])
    assert user.check_password(STRONG_PASSWORD)
    assert not user.is_staff
    assert "password" not in response.content.decode()


def test_register_writes_a_user_registered_event(api_client):
    # when
    response = _register(api_client)
    # then
    user_id = response.json()["id"]
    event = AuditLog.objects.get(action="user.registered", entity_id=str(user_id))
    assert event.entity_type == "user"
    assert event.actor_id == user_id
    assert event.details["email"] == "alice@example.com"
    assert event.request_id == response["X-Request-ID"]


def test_register_always_creates_a_plain_user_whatever_the_body_says(api_client):
    # when
    response = _register(api_client, role="admin", is_staff=True, is_superuser=True)
    # then
    assert response.status_code == 201
    user = User.objects.get(pk=response.json()["id"])
    assert (user.role, user.is_staff, user.is_superuser) == ("user", False, False)


@pytest.mark.parametrize("username", ["abc", "a.b-c_9", "X" * 150, "Mixed.Case-User_1"])
def test_register_accepts_every_allowed_username(api_client, username):
    # when
    response = _register(api_client, username=username)
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["username"] == username


@pytest.mark.parametrize(
    "username",
    ["ab", "x" * 151, "has space", "at@sign", "abc\n", "ünïcode", "semi;colon", " pad", ""],
)
def test_register_refuses_a_username_outside_the_rules(api_client, username):
    # when
    response = _register(api_client, username=username)
    # then
    error = assert_error(response, 400, "validation_error")
    assert "username" in error["details"]
    assert not User.objects.exists()
    assert not AuditLog.objects.filter(action="user.registered").exists()


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", ""])
def test_register_refuses_an_invalid_email(api_client, email):
    # when
    response = _register(api_client, email=email)
    # then
    error = assert_error(response, 400, "validation_error")
    assert "email" in error["details"]
    assert not User.objects.exists()


def test_register_refuses_a_username_taken_in_another_case(api_client):
    # given
    UserFactory(username="Alice", email="first@example.com")
    # when
    response = _register(api_client, username="aLICE", email="second@example.com")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"username"}
    assert User.objects.count() == 1
    assert not AuditLog.objects.filter(action="user.registered").exists()


def test_register_refuses_an_email_taken_in_another_case(api_client):
    # given
    UserFactory(username="first", email="alice@example.com")
    # when
    response = _register(api_client, username="second", email="ALICE@EXAMPLE.COM")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"email"}
    assert User.objects.count() == 1


@pytest.mark.parametrize(
    "password",
    ["short1!", "password123", "12345678901234", "alice123", "alice@example.com"],
    ids=["too-short", "common", "numeric", "like-username", "like-email"],
)
def test_register_refuses_a_weak_password(api_client, password):
    # when
    response = _register(api_client, password=password)
    # then
    error = assert_error(response, 400, "validation_error")
    assert "password" in error["details"]
    assert error["details"]["password"]
    assert not User.objects.exists()


def test_register_refuses_missing_fields_naming_each_one(api_client):
    # when
    response = api_client.post("/api/v1/auth/register", {}, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"username", "email", "password"}


def test_register_answers_the_same_without_a_trailing_slash_or_with_one(api_client):
    # when
    with_slash = api_client.post(
        "/api/v1/auth/register/",
        {"username": "slashy", "email": "s@example.com", "password": STRONG_PASSWORD},
        format="json",
    )
    # then
    assert with_slash.status_code == 201


# ------------------------------------------------------------------ login


def test_login_by_username_answers_a_bearer_token_pair(api_client, user):
    # when
    response = _login(api_client, user.username)
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    assert AccessToken(body["access"])["user_id"] == str(user.pk)
    me = _bearer(body["access"]).get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["id"] == user.pk
    assert response["Cache-Control"] == "no-store"


def test_login_by_email_in_any_case_works(api_client):
    # given
    user = UserFactory(username="bob", email="Bob@example.com")
    # when
    response = _login(api_client, "BOB@EXAMPLE.COM")
    # then
    assert response.status_code == 200
    assert AccessToken(response.json()["access"])["user_id"] == str(user.pk)


def test_login_by_username_in_another_case_works(api_client):
    # given
    UserFactory(username="Carol")
    # when
    response = _login(api_client, "carol")
    # then
    assert response.status_code == 200


def test_login_writes_a_logged_in_event(api_client, user):
    # when
    _login(api_client, user.username)
    # then
    event = AuditLog.objects.get(action="user.logged_in")
    assert event.entity_id == str(user.pk)
    assert event.actor_id == user.pk
    assert event.chain == f"user:{user.pk}"


def test_login_with_a_wrong_password_is_invalid_credentials(api_client, user):
    # when
    response = _login(api_client, user.username, password="Wrong-Password-1")
    # then
    assert_error(response, 401, "invalid_credentials")
    assert "access" not in response.json()
    assert not OutstandingToken.objects.exists()
    event = AuditLog.objects.get(action="user.login_failed")
    assert event.entity_id == str(user.pk)
    assert event.chain == f"user:{user.pk}"


def test_login_failure_by_email_is_audited_on_the_users_chain(api_client, user):
    # when
    _login(api_client, user.email.upper(), password="Wrong-Password-1")
    # then
    event = AuditLog.objects.get(action="user.login_failed")
    assert event.entity_id == str(user.pk)


def test_login_of_an_unknown_user_is_the_same_invalid_credentials(api_client):
    # when
    response = _login(api_client, "nobody-here")
    # then
    error = assert_error(response, 401, "invalid_credentials")
    assert error["message"] == "Invalid username or password."
    event = AuditLog.objects.get(action="user.login_failed")
    assert event.actor_id is None
    assert event.details["username"] == "nobody-here"


def test_login_of_an_inactive_user_is_invalid_credentials_even_with_the_right_password(
    api_client,
):
    # given
    UserFactory(username="sleeper", is_active=False)
    # when
    response = _login(api_client, "sleeper")
    # then
    assert_error(response, 401, "invalid_credentials")
    assert not OutstandingToken.objects.exists()


def test_login_refuses_a_body_without_a_password(api_client, user):
    # when
    response = api_client.post("/api/v1/auth/login", {"username": user.username}, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"password"}


# ------------------------------------------------------------------ refresh


def test_refresh_rotates_and_blacklists_the_old_refresh_token(api_client, user):
    # given
    first = _login(api_client, user.username).json()
    # when
    response = api_client.post("/api/v1/auth/refresh", {"refresh": first["refresh"]}, format="json")
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != first["refresh"]
    assert BlacklistedToken.objects.filter(token__jti=_jti(first["refresh"])).exists()
    assert not BlacklistedToken.objects.filter(token__jti=_jti(body["refresh"])).exists()
    assert _bearer(body["access"]).get("/api/v1/auth/me").status_code == 200


def test_reusing_a_rotated_refresh_token_is_invalid_token_and_ends_every_session(api_client, user):
    # given: the token was rotated once; the rotated one is in someone's hands
    first = _login(api_client, user.username).json()
    second = api_client.post(
        "/api/v1/auth/refresh", {"refresh": first["refresh"]}, format="json"
    ).json()
    # when
    reuse = api_client.post("/api/v1/auth/refresh", {"refresh": first["refresh"]}, format="json")
    # then
    assert_error(reuse, 401, "invalid_token")
    newest = api_client.post("/api/v1/auth/refresh", {"refresh": second["refresh"]}, format="json")
    assert_error(newest, 401, "invalid_token")


def test_refresh_refuses_a_tampered_token(api_client, user):
    # given
    refresh = _login(api_client, user.username).json()["refresh"]
    tampered = refresh[:-4] + ("AAAA" if not refresh.endswith("AAAA") else "BBBB")
    # when
    response = api_client.post("/api/v1/auth/refresh", {"refresh": tampered}, format="json")
    # then
    assert_error(response, 401, "invalid_token")
    assert not BlacklistedToken.objects.exists()


def test_refresh_refuses_an_access_token(api_client, user):
    # given
    access = _login(api_client, user.username).json()["access"]
    # when
    response = api_client.post("/api/v1/auth/refresh", {"refresh": access}, format="json")
    # then
    assert_error(response, 401, "invalid_token")


def test_refresh_of_an_expired_token_is_token_expired(api_client, user):
    # given
    token = RefreshToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(days=30), lifetime=timedelta(days=7))
    # when
    response = api_client.post("/api/v1/auth/refresh", {"refresh": str(token)}, format="json")
    # then
    assert_error(response, 401, "token_expired")


def test_refresh_of_a_deactivated_users_token_is_refused(api_client, user):
    # given
    refresh = _login(api_client, user.username).json()["refresh"]
    User.objects.filter(pk=user.pk).update(is_active=False)
    # when
    response = api_client.post("/api/v1/auth/refresh", {"refresh": refresh}, format="json")
    # then
    assert_error(response, 401, "invalid_token")


def test_refresh_refuses_a_missing_token_field(api_client):
    # when
    response = api_client.post("/api/v1/auth/refresh", {}, format="json")
    # then
    error = assert_error(response, 400, "validation_error")
    assert set(error["details"]) == {"refresh"}


# ------------------------------------------------------------------ logout


def test_logout_blacklists_the_refresh_token(api_client, user):
    # given
    tokens = _login(api_client, user.username).json()
    client = _bearer(tokens["access"])
    # when
    response = client.post("/api/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    # then
    assert response.status_code == 204
    assert response.content == b""
    assert BlacklistedToken.objects.filter(token__jti=_jti(tokens["refresh"])).exists()
    again = api_client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_error(again, 401, "invalid_token")
    assert AuditLog.objects.filter(action="user.logged_out", entity_id=str(user.pk)).exists()


def test_logout_needs_an_access_token(api_client, user):
    # given
    tokens = _login(api_client, user.username).json()
    # when
    response = api_client.post("/api/v1/auth/logout", {"refresh": tokens["refresh"]}, format="json")
    # then
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert not BlacklistedToken.objects.exists()


def test_logout_refuses_another_users_refresh_token(api_client, user, other_user):
    # given
    mine = _login(api_client, user.username).json()
    theirs = _login(api_client, other_user.username).json()
    # when
    response = _bearer(mine["access"]).post(
        "/api/v1/auth/logout", {"refresh": theirs["refresh"]}, format="json"
    )
    # then
    assert_error(response, 401, "invalid_token")
    assert not BlacklistedToken.objects.exists()


# ------------------------------------------------------------------ me and bearer tokens


def test_me_answers_the_callers_user_object(user_client, user):
    # when
    response = user_client.get("/api/v1/auth/me")
    # then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == USER_FIELDS
    assert body["id"] == user.pk
    assert body["username"] == user.username


def test_me_without_credentials_is_not_authenticated(api_client):
    # when
    response = api_client.get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def _tamper_user_id(access: str, user_id: int) -> str:
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["user_id"] = str(user_id)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_tampered_token_is_invalid_token(user, admin_user):
    # given: a user rewrites their token's user id to the admin's
    access = str(AccessToken.for_user(user))
    forged = _tamper_user_id(access, admin_user.pk)
    # when
    response = _bearer(forged).get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Bearer a.b.c", "Bearer one two", "Bearer"],
    ids=["garbage", "three-garbage-parts", "two-values", "no-value"],
)
def test_a_malformed_authorization_header_is_refused(header):
    # given
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    # when
    response = client.get("/api/v1/auth/me")
    # then
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"invalid_token", "not_authenticated"}


def test_an_expired_access_token_is_token_expired(user):
    # given
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=15))
    # when
    response = _bearer(str(token)).get("/api/v1/auth/me")
    # then
    error = assert_error(response, 401, "token_expired")
    assert "expired" in error["message"]


def test_a_refresh_token_is_not_an_access_token(user):
    # given
    refresh = str(RefreshToken.for_user(user))
    # when
    response = _bearer(refresh).get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "invalid_token")


def test_a_deactivated_users_still_valid_token_is_refused_at_once(user_client, user):
    # given
    assert user_client.get("/api/v1/auth/me").status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    # when
    response = user_client.get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "invalid_token")


def test_a_password_change_ends_every_earlier_token(api_client, user):
    # given
    tokens = _login(api_client, user.username).json()
    client = _bearer(tokens["access"])
    # when
    changed = client.patch(
        f"/api/v1/users/{user.pk}",
        {"password": STRONG_PASSWORD, "current_password": PASSWORD},
        format="json",
    )
    # then
    assert changed.status_code == 200, changed.json()
    assert_error(client.get("/api/v1/auth/me"), 401, "invalid_token")
    refresh = api_client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert_error(refresh, 401, "invalid_token")
    assert _login(api_client, user.username, password=STRONG_PASSWORD).status_code == 200


def test_an_access_token_that_worked_is_refused_once_it_expires(user, monkeypatch):
    # given: a token accepted once (and so decoded once for this process)
    token = AccessToken.for_user(user)
    client = _bearer(str(token))
    assert client.get("/api/v1/auth/me").status_code == 200
    # when: its expiry passes
    later = timezone.now() + AccessToken.lifetime + timedelta(seconds=5)
    monkeypatch.setattr("accounts.authentication.aware_utcnow", lambda: later)
    response = client.get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "token_expired")


def test_a_tampered_copy_of_an_accepted_token_is_refused(user):
    # given
    token = str(AccessToken.for_user(user))
    assert _bearer(token).get("/api/v1/auth/me").status_code == 200
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["user_id"] = str(int(forged["user_id"]) + 1)
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    # when
    response = _bearer(f"{header}.{body}.{signature}").get("/api/v1/auth/me")
    # then
    assert_error(response, 401, "invalid_token")

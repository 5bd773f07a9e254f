"""The admin console's middleware (sessions, Django's user, messages) and the API.

API requests authenticate by bearer token and keep no session: they pass these by. The
console keeps every one of them.
"""

import pytest
from django.test import Client, RequestFactory

from wallet_project import middleware

pytestmark = pytest.mark.django_db

SITE_ONLY = [
    (middleware.SessionMiddleware, "session"),
    (middleware.AuthenticationMiddleware, "user"),
    (middleware.MessageMiddleware, "_messages"),
]


def _seen(request, attribute: str) -> bool:
    return hasattr(request, attribute)


def _chain(middleware_class):
    """`middleware_class` in front of what the site needs of it (a session for the user)."""
    seen = []

    def view(request):
        seen.append(request)
        from django.http import HttpResponse

        return HttpResponse("ok")

    handler = middleware_class(view)
    if middleware_class in (middleware.AuthenticationMiddleware, middleware.MessageMiddleware):
        handler = middleware.SessionMiddleware(handler)
    return handler, seen


@pytest.mark.parametrize(("middleware_class", "attribute"), SITE_ONLY)
def test_an_api_request_passes_the_site_middleware_by(middleware_class, attribute):
    # given
    handler, seen = _chain(middleware_class)
    # when
    response = handler(RequestFactory().get("/api/v1/balances/current"))
    # then
    assert response.status_code == 200
    assert not _seen(seen[0], attribute)


@pytest.mark.parametrize(("middleware_class", "attribute"), SITE_ONLY)
def test_a_console_request_goes_through_the_site_middleware(middleware_class, attribute):
    # given
    handler, seen = _chain(middleware_class)
    # when
    handler(RequestFactory().get("/admin/login/"))
    # then
    assert _seen(seen[0], attribute)


def test_the_console_still_refuses_a_post_without_its_csrf_token(admin_user):
    # given
    browser = Client(enforce_csrf_checks=True)
    # when
    response = browser.post(
        "/admin/login/", {"username": admin_user.username, "password": "anything"}
    )
    # then
    assert response.status_code == 403


def test_an_api_post_to_an_unknown_path_is_a_404_not_a_csrf_refusal():
    # given: a client that enforces CSRF as a browser would
    client = Client(enforce_csrf_checks=True)
    # when
    response = client.post("/api/v1/nowhere", data={}, content_type="application/json")
    # then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_api_response_sets_no_session_or_csrf_cookie(user_client):
    # when
    response = user_client.get("/api/v1/auth/me")
    # then
    assert response.status_code == 200
    assert not response.cookies


@pytest.mark.parametrize("script_name", ["", "/wallet"])
def test_the_console_keeps_its_own_error_pages_under_any_script_prefix(admin_user, script_name):
    # given: a signed-in console user
    browser = Client()
    browser.force_login(admin_user)
    # when: a method the logout page does not allow (its own empty 405, not the API envelope)
    response = browser.get("/admin/logout/", SCRIPT_NAME=script_name)
    # then
    assert response.status_code == 405
    assert not response.get("Content-Type", "").startswith("application/json")

"""Every console action an auditor tries is refused with 403 and changes nothing.

The walk is built from the admin site's own registry (its actions, operations and URLs),
so an action or operation added later is covered without being named here.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import RequestFactory
from django.urls import URLPattern

from tests.accounts.test_auditor_read_only import _snapshot, world  # noqa: F401 - `world` is a fixture

pytestmark = pytest.mark.django_db

# Object pages that only read (a statement is a form for its period, then a CSV download):
# auditors use them, and the existing tests of those pages show they change nothing.
READ_PAGES = {"statement/"}


def _console_writes(admin_user) -> list[tuple[str, dict]]:
    """(path, POST data) of every action, operation, add, change and delete of the console."""
    as_admin = RequestFactory().get("/admin/")
    as_admin.user = admin_user
    writes: list[tuple[str, dict]] = [("/admin/dashboard/reconcile/", {})]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        obj = model._default_manager.order_by("pk").first()
        selected = [str(obj.pk)] if obj is not None else []
        for name in model_admin.get_actions(as_admin):
            writes.append(
                (
                    base,
                    {
                        "action": name,
                        "_selected_action": selected,
                        "confirm": "yes",
                        "reason": "no",
                        "post": "yes",
                    },
                )
            )
        writes.append((f"{base}add/", {"reason": "no"}))
        if obj is None:
            continue
        object_base = f"{base}{quote(obj.pk)}/"
        writes.append((f"{object_base}change/", {"reason": "no"}))
        writes.append((f"{object_base}delete/", {"post": "yes"}))
        for pattern in model_admin.get_urls():
            route = str(pattern.pattern)
            if isinstance(pattern, URLPattern) and route.startswith("<path:object_id>/"):
                suffix = route.removeprefix("<path:object_id>/")
                if suffix and suffix not in ("change/", "delete/", "history/", *READ_PAGES):
                    writes.append((object_base + suffix, {"confirm": "yes", "reason": "no"}))
    return writes


@pytest.mark.usefixtures("world")
def test_the_walk_covers_the_operations_of_the_console(admin_user):
    # when
    paths = {path for path, _ in _console_writes(admin_user)}
    actions = {data.get("action") for _, data in _console_writes(admin_user)}
    # then
    assert any(p.endswith("/reverse/") for p in paths)
    assert any(p.endswith("/adjust/") for p in paths)
    assert "reverse_selected" in actions


@pytest.mark.usefixtures("world")
def test_an_auditor_is_refused_every_console_write(admin_user, auditor_console):
    # given
    before = _snapshot()
    writes = _console_writes(admin_user)
    # when
    answers = [
        (path, data.get("action"), auditor_console.post(path, data)) for path, data in writes
    ]
    # then
    refused = [(p, a, r.status_code) for p, a, r in answers if r.status_code != 403]
    assert refused == []
    assert len(answers) > 30
    assert _snapshot() == before


def test_an_auditor_may_not_change_their_own_password_in_the_console(auditor_console, auditor):
    # when
    page = auditor_console.get("/admin/password_change/")
    posted = auditor_console.post(
        "/admin/password_change/",
        {"old_password": "x", "new_password1": "N3w-pass-word!", "new_password2": "N3w-pass-word!"},
    )
    # then
    assert (page.status_code, posted.status_code) == (403, 403)

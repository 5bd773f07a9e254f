"""docs/api.md stays true: it names every operation of the schema and only those, every error
code of wallet_project/errors.py with its status, and the docs page loads nothing from a CDN."""

import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.urls import Resolver404, resolve
from drf_spectacular.generators import SchemaGenerator

from wallet_project import errors

ROOT = Path(__file__).resolve().parents[2]
API_DOCS = ROOT / "docs" / "api.md"
METHODS = ("get", "put", "post", "delete", "patch")
# `### POST /api/v1/transactions/transfer`: one operation per heading.
ENDPOINT_HEADING = re.compile(r"^### (GET|PUT|POST|DELETE|PATCH) (/api/v1/\S*)\s*$", re.MULTILINE)
# `| 422 | `insufficient_funds` | ...`: one code per row of the error table.
ERROR_ROW = re.compile(r"^\| (\d{3}) \| `([a-z_]+)` \|", re.MULTILINE)
# `| `GET /health/ready` | ...`: a row of the operations table.
OPERATION_ROW = re.compile(r"^\| `(?:[A-Z]+ )?(/[^`\s]*)` \|", re.MULTILINE)
EXTERNAL_URL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
LOCAL_ASSET = re.compile(r"""(?:src|href)\s*=\s*["'](/static/[^"']+)["']""", re.IGNORECASE)


def _normalized(path: str) -> str:
    """The schema writes `/api/v1/users/{id}/`; the reference writes `/api/v1/users/{id}`."""
    return path.rstrip("/") or "/"


def _section(text: str, title: str) -> str:
    """The body of the `## title` section of the reference."""
    match = re.search(
        rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"docs/api.md has no '## {title}' section"
    return match.group(1)


@pytest.fixture(scope="module")
def reference() -> str:
    return API_DOCS.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), _normalized(path))
        for path, operations in schema["paths"].items()
        for method in operations
        if method in METHODS
    }


def _documented_operations(reference: str) -> list[tuple[str, str]]:
    return [(method, _normalized(path)) for method, path in ENDPOINT_HEADING.findall(reference)]


def _error_classes() -> list[type[errors.WalletError]]:
    found, pending = [], [errors.WalletError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_operation_of_the_schema_has_a_section_in_the_reference(reference, schema_operations):
    # when
    documented = set(_documented_operations(reference))
    # then
    missing = sorted(schema_operations - documented)
    assert not missing, f"operations of /api/schema/ missing from docs/api.md: {missing}"


def test_every_endpoint_the_reference_lists_exists_in_the_schema(reference, schema_operations):
    # when
    documented = _documented_operations(reference)
    # then
    unknown = sorted(set(documented) - schema_operations)
    assert not unknown, f"docs/api.md lists operations the schema does not have: {unknown}"
    duplicated = sorted({op for op in documented if documented.count(op) > 1})
    assert not duplicated, f"docs/api.md documents these operations twice: {duplicated}"


def test_every_error_code_is_in_the_error_table_with_its_status(reference):
    # given
    table: dict[str, set[int]] = {}
    for status, code in ERROR_ROW.findall(_section(reference, "Errors")):
        table.setdefault(code, set()).add(int(status))
    # then
    for cls in _error_classes():
        assert cls.code in table, f"{cls.__name__} ({cls.code}) is not in the error table"
        assert table[cls.code] == {cls.http_status}, (cls.code, table[cls.code])


def test_the_operations_endpoints_of_the_reference_are_routes_of_the_project(reference):
    # given
    paths = OPERATION_ROW.findall(_section(reference, "Operations endpoints"))
    assert {"/health/live", "/health/ready", "/metrics", "/api/schema/", "/api/docs/"} <= set(paths)
    # then: each one is served by its own view, not by the catch-all 404
    for path in paths:
        try:
            match = resolve(path)
        except Resolver404:
            pytest.fail(f"docs/api.md lists {path}, which no route serves")
        assert match.func.__name__ != "not_found", path


@pytest.mark.django_db
def test_the_docs_page_loads_its_assets_from_the_app_not_a_cdn(api_client):
    # when
    response = api_client.get("/api/docs/")
    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert not EXTERNAL_URL.search(page), EXTERNAL_URL.search(page).group(0)
    assert "cdn.jsdelivr.net" not in page
    assets = LOCAL_ASSET.findall(page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert any(a.endswith("swagger-ui.css") for a in assets), assets
    for asset in assets:
        # then every one of them is a static file of the project (collected, or found)
        assert finders.find(asset.removeprefix("/static/")), asset

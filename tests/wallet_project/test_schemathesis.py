"""Every operation of the live OpenAPI schema answers as documented: never a 5xx, and every
response's status code, content type, headers and body match what the schema says."""

import itertools
from datetime import timedelta

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from audit.models import AuditLog
from tests.accounts.factories import PASSWORD, UserFactory
from tests.conftest import client_for
from wallet_project.wsgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CONFIG = SchemathesisConfig.from_dict(
    {
        # Schema examples and a few random cases, valid and invalid. The coverage phase's
        # boundary cases are not bounded by max_examples (they double the run time), and
        # sequences of calls are not what this test checks.
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "generation": {"mode": "all"},
        # A fixed seed: the same cases on every run, so a failure is never a dice roll.
        "seed": 20260101,
    }
)
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=CONFIG)

# What the schema promises about a response. How strictly requests are validated (a
# currency that is well-formed but not enabled is a 400) is for the views' own tests.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# Operations only an admin (or auditor) may call; every other one runs as a funded user.
ADMIN_OPERATIONS = {
    "GET /api/v1/audit-logs/",
    "GET /api/v1/audit-logs/{id}/",
    "GET /api/v1/users/",
    "DELETE /api/v1/users/{id}/",
    "GET /api/v1/stats/",
    "POST /api/v1/transactions/{id}/reverse/",
}


@pytest.fixture
def world(funded_user):
    """A funded user who has made a transfer, a batch and a schedule, and an admin; then the
    real values that let a generated case reach its 2xx answer."""
    admin = UserFactory(role="admin", is_staff=True)
    recipient = UserFactory(role="user")
    user = funded_user("500.00")
    client = client_for(user)
    tomorrow = (timezone.now() + timedelta(days=1)).isoformat()
    transfer = client.post(
        "/api/v1/transactions/transfer/", {"to_user_id": recipient.pk, "amount": "5.00"}, "json"
    )
    batch = client.post(
        "/api/v1/transactions/batch/",
        {"items": [{"to_user_id": recipient.pk, "amount": "1.00"}]},
        "json",
    )
    scheduled = client.post(
        "/api/v1/transactions/scheduled/",
        {"to_user_id": recipient.pk, "amount": "2.00", "run_at": tomorrow, "interval": "daily"},
        "json",
    )
    assert (transfer.status_code, batch.status_code, scheduled.status_code) == (201, 202, 201)
    refresh = RefreshToken.for_user(user)
    return {
        "tokens": {
            "admin": str(RefreshToken.for_user(admin).access_token),
            "user": str(refresh.access_token),
        },
        # The object behind each `{id}` path.
        "ids": {
            "/api/v1/audit-logs/{id}/": AuditLog.objects.order_by("-id").first().pk,
            "/api/v1/transactions/{id}/": transfer.json()["id"],
            "/api/v1/transactions/{id}/reverse/": transfer.json()["id"],
            "/api/v1/transactions/batch/{id}/": batch.json()["id"],
            "/api/v1/transactions/scheduled/{id}/": scheduled.json()["id"],
            "/api/v1/users/{id}/": user.pk,
        },
        # A value for each body or query field that random data rarely gets right.
        "fields": {
            "amount": "1.00",
            "currency": "USD",
            "user_id": user.pk,
            "from_user_id": user.pk,
            "to_user_id": recipient.pk,
            "items": [{"to_user_id": recipient.pk, "amount": "1.00"}],
            "run_at": tomorrow,
            "end_at": None,
            "username": user.username,
            "email": user.email,
            "password": PASSWORD,
            "current_password": PASSWORD,
            "refresh": str(refresh),
        },
        "fields_by_operation": {
            "POST /api/v1/auth/register/": {
                "username": "newcomer",
                "email": "newcomer@example.com",
            },
        },
        "turns": itertools.count(),
    }


def aim_at_real_data(case, world) -> None:
    """Give the case's path, body and query fields real values where it has them."""
    operation = f"{case.method} {case.path}"
    if case.path in world["ids"] and "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = world["ids"][case.path]
    values = {**world["fields"], **world["fields_by_operation"].get(operation, {})}
    for fields in (case.body, case.query):
        if isinstance(fields, dict):
            for name in fields.keys() & values.keys():
                fields[name] = values[name]


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_answers_as_the_schema_documents(case, world):
    # given: every other case names real objects and values, so 2xx answers are checked too
    operation = f"{case.method} {case.path}"
    if next(world["turns"]) % 2 == 0:
        aim_at_real_data(case, world)
    role = "admin" if operation in ADMIN_OPERATIONS else "user"
    # when / then
    case.call_and_validate(
        headers={"Authorization": f"Bearer {world['tokens'][role]}"}, checks=CHECKS
    )

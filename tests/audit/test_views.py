"""GET audit-logs: admins and auditors read the event stream; nobody else does."""

import pytest

from audit.models import AuditLog

pytestmark = pytest.mark.django_db


def test_auditor_lists_events_newest_first_with_filters(auditor_client, funded_user):
    # given
    funded_user("10.00")
    txn_id = AuditLog.objects.get(action="transaction.completed").entity_id
    # when
    everything = auditor_client.get("/api/v1/audit-logs")
    by_action = auditor_client.get("/api/v1/audit-logs", {"action": "balance.changed"})
    by_entity = auditor_client.get(
        "/api/v1/audit-logs/", {"entity_type": "transaction", "entity_id": txn_id}
    )
    # then
    assert everything.status_code == 200
    ids = [row["id"] for row in everything.json()["results"]]
    assert ids == sorted(ids, reverse=True)
    assert {
        "id",
        "entity_type",
        "entity_id",
        "action",
        "details",
        "actor_id",
        "request_id",
        "created_at",
        "hash",
    } == set(everything.json()["results"][0])
    assert {r["action"] for r in by_action.json()["results"]} == {"balance.changed"}
    assert {r["entity_id"] for r in by_entity.json()["results"]} == {txn_id}


def test_actor_and_time_filters(admin_client, admin_user, funded_user):
    # given
    funded_user("10.00")
    first = AuditLog.objects.order_by("id").first()
    # when
    by_actor = admin_client.get("/api/v1/audit-logs", {"actor": admin_user.pk})
    before = admin_client.get("/api/v1/audit-logs", {"to": first.created_at.isoformat()})
    bad = admin_client.get("/api/v1/audit-logs", {"from": "yesterday"})
    # then
    assert by_actor.status_code == 200
    assert all(r["actor_id"] == admin_user.pk for r in by_actor.json()["results"])
    assert before.json()["results"] == []
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    assert "from" in bad.json()["error"]["details"]


def test_one_event_by_id(auditor_client, funded_user):
    # given
    funded_user("10.00")
    event = AuditLog.objects.order_by("id").last()
    # when
    found = auditor_client.get(f"/api/v1/audit-logs/{event.pk}")
    missing = auditor_client.get("/api/v1/audit-logs/999999999")
    malformed = auditor_client.get("/api/v1/audit-logs/abc")
    # then
    assert found.status_code == 200
    assert found.json()["hash"] == event.hash
    assert missing.status_code == 404
    assert malformed.status_code == 404
    assert malformed.json()["error"]["code"] == "not_found"


def test_ordinary_users_cannot_read_the_audit_stream(user_client, api_client):
    # when
    as_user = user_client.get("/api/v1/audit-logs")
    anonymous = api_client.get("/api/v1/audit-logs")
    # then
    assert as_user.status_code == 403
    assert as_user.json()["error"]["code"] == "permission_denied"
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"


def test_api_calls_record_request_id_and_client_ip(user_client, user):
    # when
    response = user_client.post(
        "/api/v1/transactions/credit",
        {"amount": "5.00"},
        format="json",
        HTTP_X_REQUEST_ID="audit-req-1",
    )
    # then
    assert response.status_code == 201
    event = AuditLog.objects.get(action="transaction.completed", entity_id=response.json()["id"])
    assert event.request_id == "audit-req-1"
    assert event.client_ip == "127.0.0.1"
    assert event.actor_id == user.pk

"""Scheduled transfers (pause, resume, cancel) and batches (progress, per-item results)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditLog
from tests.accounts.factories import UserFactory
from transactions import services as money_services
from transactions.models import (
    BatchItemStatus,
    ScheduledRun,
    ScheduledRunStatus,
    ScheduledTransfer,
    ScheduleStatus,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(funded_user, other_user):
    sender = funded_user("50.00")
    return money_services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal("5.00"),
        currency="USD",
        run_at=timezone.now() + timedelta(days=1),
        interval="weekly",
    )


def schedule_url(schedule, page: str = "change") -> str:
    return f"/admin/transactions/scheduledtransfer/{schedule.pk}/{page}/"


def test_an_active_schedule_offers_pause_and_cancel(admin_console, schedule):
    # when
    body = admin_console.get(schedule_url(schedule)).content.decode()
    # then
    assert schedule_url(schedule, "pause") in body
    assert schedule_url(schedule, "cancel") in body
    assert schedule_url(schedule, "resume") not in body


def test_pause_then_resume_with_reasons(admin_console, admin_user, schedule):
    # when
    admin_console.post(
        schedule_url(schedule, "pause"), {"confirm": "yes", "reason": "Sender on holiday"}
    )
    # then
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.PAUSED
    event = AuditLog.objects.get(entity_id=str(schedule.pk), action="schedule.paused")
    assert (event.actor_id, event.details["reason"]) == (admin_user.pk, "Sender on holiday")
    # when
    admin_console.post(schedule_url(schedule, "resume"), {"confirm": "yes", "reason": "Back"})
    # then
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.ACTIVE
    assert AuditLog.objects.get(entity_id=str(schedule.pk), action="schedule.resumed").actor_id == (
        admin_user.pk
    )


def test_cancel_needs_a_reason_then_cancels(admin_console, admin_user, schedule):
    # when
    refused = admin_console.post(schedule_url(schedule, "cancel"), {"confirm": "yes"})
    # then
    assert refused.status_code == 200
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.ACTIVE
    # when
    admin_console.post(schedule_url(schedule, "cancel"), {"confirm": "yes", "reason": "Fraud"})
    # then
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.CANCELLED
    event = AuditLog.objects.get(entity_id=str(schedule.pk), action="schedule.cancelled")
    assert (event.actor_id, event.details["reason"]) == (admin_user.pk, "Fraud")


def test_the_list_action_pauses_schedules(admin_console, schedule):
    # when
    admin_console.post(
        "/admin/transactions/scheduledtransfer/",
        {
            "action": "pause_selected",
            "_selected_action": [str(schedule.pk)],
            "confirm": "yes",
            "reason": "Incident 12",
        },
    )
    # then
    assert ScheduledTransfer.objects.get(pk=schedule.pk).status == ScheduleStatus.PAUSED


def test_auditor_cannot_pause(auditor_console, schedule):
    # when
    response = auditor_console.post(
        schedule_url(schedule, "pause"), {"confirm": "yes", "reason": "no"}
    )
    # then
    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.ACTIVE


def test_a_failed_run_shows_on_the_schedule_and_on_the_dashboard(admin_console, other_user):
    # given a schedule whose sender cannot pay, and its first run executed
    sender = UserFactory(role="user")
    schedule = money_services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal("5.00"),
        currency="USD",
        run_at=timezone.now(),
    )
    [run_id] = money_services.claim_due_runs(now=timezone.now() + timedelta(minutes=1))
    money_services.execute_scheduled_run(run_id=run_id)
    assert ScheduledRun.objects.get(pk=run_id).status == ScheduledRunStatus.FAILED
    # when
    page = admin_console.get(schedule_url(schedule)).content.decode()
    dashboard = admin_console.get("/admin/dashboard/").content.decode()
    # then
    assert "insufficient_funds" in page
    assert "insufficient_funds" in dashboard
    assert str(schedule.pk)[:8] in dashboard


@pytest.fixture
def processed_batch(admin_user, funded_user, other_user):
    """A chunked batch of two transfers, one to an unknown user, processed."""
    sender = funded_user("50.00")
    batch = money_services.create_batch(
        actor=admin_user,
        items=[
            money_services.BatchItemInput(
                from_user_id=sender.pk,
                to_user_id=other_user.pk,
                amount=Decimal("7.00"),
                currency="USD",
            ),
            money_services.BatchItemInput(
                from_user_id=sender.pk, to_user_id=999_999, amount=Decimal("1.00"), currency="USD"
            ),
        ],
        atomic=False,
    )
    money_services.process_batch_chunk(batch_id=batch.pk, start=0, stop=2)
    return batch


def test_the_batch_page_shows_progress_and_the_failed_items(admin_console, processed_batch):
    # when
    response = admin_console.get(f"/admin/transactions/transferbatch/{processed_batch.pk}/change/")
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "Failed items" in body
    assert "999999" in body
    items = processed_batch.items.order_by("index")
    assert [i.status for i in items] == [BatchItemStatus.COMPLETED, BatchItemStatus.FAILED]


def test_the_item_list_filters_by_batch_and_status(admin_console, processed_batch):
    # when
    response = admin_console.get(
        "/admin/transactions/transferbatchitem/",
        {"batch__id__exact": str(processed_batch.pk), "status__exact": "failed"},
    )
    # then
    results = list(response.context["cl"].result_list)
    assert [item.index for item in results] == [1]

"""Scheduled transfers: the endpoints, the scheduler's runs, the failure policy, the calendar."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.conftest import client_for
from transactions import services
from transactions.models import (
    IdempotencyKey,
    ScheduledRun,
    ScheduledRunStatus,
    ScheduledTransfer,
    ScheduleStatus,
    Transaction,
)
from transactions.services.schedules import next_occurrence
from wallet_project.errors import InvalidStateError, PermissionDeniedError

pytestmark = pytest.mark.django_db

SCHEDULED = "/api/v1/transactions/scheduled"


def amount_of(user, currency: str = "USD") -> Decimal:
    balance = Balance.objects.filter(user=user, currency_id=currency).first()
    return balance.amount if balance else Decimal(0)


def soon(minutes: int = 1) -> datetime:
    return timezone.now() + timedelta(minutes=minutes)


def schedule_for(sender, recipient, *, amount="10.00", run_at=None, **options):
    return services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal(amount),
        currency="USD",
        run_at=run_at or soon(),
        **options,
    )


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """Run the scheduler at `at`, with its queued runs executed (eager Celery)."""

    def run(at: datetime) -> int:
        with django_capture_on_commit_callbacks(execute=True):
            return services.run_due_schedules(now=at)

    return run


# ---------------------------------------------------------------- endpoints


def test_a_user_schedules_a_one_time_transfer(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    run_at = soon(10)
    # when
    response = client_for(sender).post(
        SCHEDULED,
        {"to_user_id": other_user.pk, "amount": "12.50", "run_at": run_at.isoformat()},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "active"
    assert (body["from_user_id"], body["to_user_id"]) == (sender.pk, other_user.pk)
    assert (body["amount"], body["currency"], body["interval"]) == ("12.50", "USD", None)
    assert datetime.fromisoformat(body["next_run_at"]) == run_at
    assert body["runs"] == []
    assert AuditLog.objects.filter(
        chain=f"schedule:{body['id']}", action="schedule.created"
    ).exists()
    assert amount_of(sender) == Decimal("50.00")


def test_a_user_schedules_a_recurring_transfer_with_an_end(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    run_at = soon(10)
    # when
    response = client_for(sender).post(
        SCHEDULED,
        {
            "to_user_id": other_user.pk,
            "amount": "1.00",
            "run_at": run_at.isoformat(),
            "interval": "weekly",
            "end_at": (run_at + timedelta(weeks=4)).isoformat(),
        },
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["interval"] == "weekly"
    assert ScheduledTransfer.objects.get(pk=response.json()["id"]).end_at == run_at + timedelta(
        weeks=4
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"run_at": "2001-01-01T00:00:00Z"}, "run_at"),
        ({"end_at": "2100-01-01T00:00:00Z"}, "end_at"),
        ({"interval": "daily", "end_at": "2001-01-01T00:00:00Z"}, "end_at"),
        ({"interval": "hourly"}, "interval"),
        ({"amount": "0"}, "amount"),
        ({"run_at": "tomorrow"}, "run_at"),
    ],
)
def test_a_schedule_with_bad_values_is_refused(funded_user, other_user, changes, field):
    # given
    sender = funded_user("50.00")
    payload = {"to_user_id": other_user.pk, "amount": "1.00", "run_at": soon().isoformat()}
    # when
    response = client_for(sender).post(SCHEDULED, {**payload, **changes}, format="json")
    # then
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert not ScheduledTransfer.objects.exists()


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("self", 422, "same_account"),
        ("nobody", 404, "not_found"),
        ("victim", 403, "permission_denied"),
    ],
)
def test_a_schedule_naming_the_wrong_parties_is_refused(funded_user, who, status, code):
    # given
    sender = funded_user("50.00")
    victim = funded_user("50.00")
    payload = {"amount": "1.00", "run_at": soon().isoformat(), "to_user_id": victim.pk}
    if who == "self":
        payload["to_user_id"] = sender.pk
    elif who == "nobody":
        payload["to_user_id"] = 999_999_999
    else:
        payload["from_user_id"] = victim.pk
        payload["to_user_id"] = UserFactory().pk
    # when
    response = client_for(sender).post(SCHEDULED, payload, format="json")
    # then
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not ScheduledTransfer.objects.exists()


def test_an_admin_schedules_for_any_sender_and_an_auditor_may_not(
    funded_user, other_user, admin_client, auditor_client
):
    # given
    sender = funded_user("50.00")
    payload = {
        "from_user_id": sender.pk,
        "to_user_id": other_user.pk,
        "amount": "1.00",
        "run_at": soon().isoformat(),
    }
    # when
    by_admin = admin_client.post(SCHEDULED, payload, format="json")
    by_auditor = auditor_client.post(SCHEDULED, payload, format="json")
    # then
    assert by_admin.status_code == 201
    assert by_admin.json()["from_user_id"] == sender.pk
    assert by_auditor.status_code == 403
    assert ScheduledTransfer.objects.count() == 1


def test_schedules_are_listed_for_their_sender_and_for_staff(
    funded_user, admin_client, auditor_client
):
    # given
    alice, bob = funded_user("10.00"), funded_user("10.00")
    mine = schedule_for(alice, bob)
    theirs = schedule_for(bob, alice)
    # when
    seen = {
        "alice": client_for(alice).get(SCHEDULED).json()["results"],
        "admin": admin_client.get(SCHEDULED).json()["results"],
        "auditor": auditor_client.get(SCHEDULED).json()["results"],
    }
    # then
    assert [s["id"] for s in seen["alice"]] == [str(mine.pk)]
    assert {s["id"] for s in seen["admin"]} == {str(mine.pk), str(theirs.pk)}
    assert {s["id"] for s in seen["auditor"]} == {str(mine.pk), str(theirs.pk)}
    assert client_for(alice).get(f"{SCHEDULED}/{theirs.pk}").status_code == 404
    assert client_for(alice).get(f"{SCHEDULED}/{mine.pk}").status_code == 200
    assert client_for(alice).get(f"{SCHEDULED}/nonsense").status_code == 404


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_staff_list_the_schedules_of_the_user_they_name(funded_user, role):
    # given
    alice, bob, carol = funded_user("10.00"), funded_user("10.00"), funded_user("10.00")
    alices = {schedule_for(alice, bob).pk, schedule_for(alice, carol).pk}
    schedule_for(bob, alice)
    staff = client_for(UserFactory(role=role, is_staff=True))
    # when
    named = staff.get(SCHEDULED, {"user_id": alice.pk})
    nobody = staff.get(SCHEDULED, {"user_id": carol.pk})
    # then
    assert named.status_code == 200
    assert {s["id"] for s in named.json()["results"]} == {str(pk) for pk in alices}
    assert nobody.json()["results"] == []


def test_a_user_naming_another_users_schedules_is_refused(funded_user):
    # given
    alice, bob = funded_user("10.00"), funded_user("10.00")
    mine = schedule_for(alice, bob)
    schedule_for(bob, alice)
    client = client_for(alice)
    # when
    others = client.get(SCHEDULED, {"user_id": bob.pk})
    own = client.get(SCHEDULED, {"user_id": alice.pk})
    bad = client.get(SCHEDULED, {"user_id": "x"})
    # then
    assert others.status_code == 403
    assert others.json()["error"]["code"] == "permission_denied"
    assert [s["id"] for s in own.json()["results"]] == [str(mine.pk)]
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"


def test_deleting_a_schedule_cancels_it_and_a_finished_one_is_refused(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    schedule = schedule_for(sender, other_user)
    client = client_for(sender)
    # when
    first = client.delete(f"{SCHEDULED}/{schedule.pk}")
    second = client.delete(f"{SCHEDULED}/{schedule.pk}")
    # then
    assert first.status_code == 204
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "invalid_state"
    schedule.refresh_from_db()
    assert (schedule.status, schedule.next_run_at) == (ScheduleStatus.CANCELLED, None)
    assert (
        AuditLog.objects.filter(
            chain=f"schedule:{schedule.pk}", action="schedule.cancelled"
        ).count()
        == 1
    )


def test_only_the_sender_or_an_admin_may_cancel(funded_user, other_user, auditor_client):
    # given
    sender = funded_user("10.00")
    schedule = schedule_for(sender, other_user)
    # when
    by_other = client_for(other_user).delete(f"{SCHEDULED}/{schedule.pk}")
    by_auditor = auditor_client.delete(f"{SCHEDULED}/{schedule.pk}")
    # then
    assert by_other.status_code == 404
    assert by_auditor.status_code == 403
    assert ScheduledTransfer.objects.get(pk=schedule.pk).status == ScheduleStatus.ACTIVE


def test_a_schedule_repeated_with_its_key_is_created_once(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    client = client_for(sender)
    payload = {"to_user_id": other_user.pk, "amount": "1.00", "run_at": soon().isoformat()}
    # when
    first = client.post(SCHEDULED, payload, format="json", HTTP_IDEMPOTENCY_KEY="s-1")
    second = client.post(SCHEDULED, payload, format="json", HTTP_IDEMPOTENCY_KEY="s-1")
    # then
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert ScheduledTransfer.objects.count() == 1


# ---------------------------------------------------------------- the scheduler


def test_a_due_one_time_schedule_runs_once_and_completes(funded_user, other_user, tick):
    # given
    sender = funded_user("50.00")
    schedule = schedule_for(sender, other_user, amount="20.00")
    # when
    claimed = tick(soon(2))
    again = tick(soon(3))
    # then
    assert (claimed, again) == (1, 0)
    schedule.refresh_from_db()
    assert (schedule.status, schedule.next_run_at, schedule.run_count) == (
        ScheduleStatus.COMPLETED,
        None,
        1,
    )
    run = ScheduledRun.objects.get(schedule=schedule)
    assert (run.run_number, run.status, run.error_code) == (1, ScheduledRunStatus.COMPLETED, None)
    txn = Transaction.objects.get(pk=run.transaction_id)
    assert (txn.from_user_id, txn.to_user_id, txn.amount) == (sender.pk, other_user.pk, 20)
    assert amount_of(sender) == Decimal("30.00")
    assert IdempotencyKey.objects.filter(user=sender, key=f"schedule:{schedule.pk}:1").exists()
    shown = client_for(sender).get(f"{SCHEDULED}/{schedule.pk}").json()
    assert shown["runs"] == [
        {
            "run_number": 1,
            "run_at": shown["run_at"],
            "transaction_id": str(txn.pk),
            "status": "completed",
            "error": None,
        }
    ]


def test_a_schedule_not_yet_due_is_left_alone(funded_user, other_user, tick):
    # given
    sender = funded_user("50.00")
    schedule = schedule_for(sender, other_user, run_at=soon(30))
    # when
    claimed = tick(soon(5))
    # then
    assert claimed == 0
    assert not ScheduledRun.objects.filter(schedule=schedule).exists()
    assert amount_of(sender) == Decimal("50.00")


def test_a_daily_schedule_moves_to_its_next_day_after_a_run(funded_user, other_user, tick):
    # given
    sender = funded_user("50.00")
    run_at = soon()
    schedule = schedule_for(sender, other_user, run_at=run_at, interval="daily")
    # when
    tick(run_at + timedelta(seconds=1))
    # then
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.ACTIVE
    assert schedule.next_run_at == run_at + timedelta(days=1)
    assert amount_of(other_user) == Decimal("10.00")


def test_missed_occurrences_run_once_and_the_next_run_is_in_the_future(
    funded_user, other_user, tick
):
    # given: the scheduler was down for three days
    sender = funded_user("50.00")
    run_at = soon()
    schedule = schedule_for(sender, other_user, run_at=run_at, interval="daily")
    later = run_at + timedelta(days=3, hours=1)
    # when
    claimed = tick(later)
    # then
    schedule.refresh_from_db()
    assert claimed == 1
    assert schedule.next_run_at == run_at + timedelta(days=4)
    assert amount_of(other_user) == Decimal("10.00")


def test_the_last_run_before_the_end_completes_the_schedule(funded_user, other_user, tick):
    # given
    sender = funded_user("50.00")
    run_at = soon()
    schedule = schedule_for(
        sender, other_user, run_at=run_at, interval="daily", end_at=run_at + timedelta(days=1)
    )
    # when
    tick(run_at)
    tick(run_at + timedelta(days=1))
    tick(run_at + timedelta(days=2))
    # then
    schedule.refresh_from_db()
    assert (schedule.status, schedule.run_count) == (ScheduleStatus.COMPLETED, 2)
    assert amount_of(other_user) == Decimal("20.00")


def test_failed_runs_are_recorded_and_three_in_a_row_pause_the_schedule(
    funded_user, other_user, tick
):
    # given: not enough money for any run
    sender = funded_user("5.00")
    run_at = soon()
    schedule = schedule_for(sender, other_user, run_at=run_at, interval="daily")
    # when
    for day in range(2):
        tick(run_at + timedelta(days=day))
    schedule.refresh_from_db()
    after_two = (schedule.status, schedule.consecutive_failures)
    tick(run_at + timedelta(days=2))
    # then
    assert after_two == (ScheduleStatus.ACTIVE, 2)
    schedule.refresh_from_db()
    assert (schedule.status, schedule.consecutive_failures) == (ScheduleStatus.PAUSED, 3)
    runs = list(ScheduledRun.objects.filter(schedule=schedule).order_by("run_number"))
    assert [(r.status, r.error_code, r.transaction_id) for r in runs] == [
        (ScheduledRunStatus.FAILED, "insufficient_funds", None)
    ] * 3
    assert AuditLog.objects.filter(
        chain=f"schedule:{schedule.pk}", action="schedule.paused"
    ).exists()
    assert amount_of(sender) == Decimal("5.00")
    assert tick(run_at + timedelta(days=3)) == 0  # paused: no more runs
    shown = client_for(sender).get(f"{SCHEDULED}/{schedule.pk}").json()
    assert shown["status"] == "paused"
    assert shown["runs"][0]["error"]["code"] == "insufficient_funds"


def test_a_successful_run_resets_the_failure_count(funded_user, other_user, tick):
    # given: the first run fails, then money arrives
    sender = funded_user("5.00")
    run_at = soon()
    schedule = schedule_for(sender, other_user, run_at=run_at, interval="daily")
    tick(run_at)
    services.credit(actor=sender, user=sender, amount=Decimal(100), currency="USD")
    # when
    tick(run_at + timedelta(days=1))
    # then
    schedule.refresh_from_db()
    assert (schedule.status, schedule.consecutive_failures) == (ScheduleStatus.ACTIVE, 0)
    assert amount_of(other_user) == Decimal("10.00")


def test_executing_a_run_twice_moves_money_once(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given: a claimed run, not yet executed
    sender = funded_user("50.00")
    schedule = schedule_for(sender, other_user)
    with django_capture_on_commit_callbacks(execute=False):
        [run_id] = services.claim_due_runs(now=soon(2))
    # when
    services.execute_scheduled_run(run_id=run_id)
    services.execute_scheduled_run(run_id=run_id)
    # then
    assert amount_of(other_user) == Decimal("10.00")
    assert ScheduledRun.objects.get(pk=run_id).status == ScheduledRunStatus.COMPLETED
    assert ScheduledTransfer.objects.get(pk=schedule.pk).consecutive_failures == 0


def test_a_run_paid_before_its_outcome_was_recorded_is_not_paid_again(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given: the worker moved the money, then died before recording the run
    sender = funded_user("50.00")
    schedule = schedule_for(sender, other_user)
    with django_capture_on_commit_callbacks(execute=False):
        [run_id] = services.claim_due_runs(now=soon(2))
    run = ScheduledRun.objects.select_related("schedule").get(pk=run_id)
    first = services.transfer(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal(10),
        currency="USD",
        idempotency=services.schedules.run_idempotency(run),
    )
    # when: the stale run is picked up again
    ScheduledRun.objects.filter(pk=run_id).update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.requeue_stale_runs(older_than=timedelta(minutes=2))
    # then
    assert requeued == 1
    assert ScheduledRun.objects.get(pk=run_id).transaction_id == first.pk
    assert amount_of(other_user) == Decimal("10.00")
    assert schedule.pk == run.schedule_id


def test_pause_resume_and_cancel(funded_user, other_user, admin_user, tick):
    # given
    sender = funded_user("50.00")
    run_at = soon()
    schedule = schedule_for(sender, other_user, run_at=run_at, interval="weekly")
    # when / then
    services.pause_schedule(actor=sender, schedule_id=schedule.pk, reason="holiday")
    with pytest.raises(InvalidStateError):
        services.pause_schedule(actor=sender, schedule_id=schedule.pk)
    assert tick(run_at + timedelta(days=1)) == 0
    with pytest.raises(PermissionDeniedError):
        services.resume_schedule(actor=other_user, schedule_id=schedule.pk)
    resumed = services.resume_schedule(
        actor=admin_user, schedule_id=schedule.pk, reason="back from holiday"
    )
    assert resumed.status == ScheduleStatus.ACTIVE
    assert (
        AuditLog.objects.get(chain=f"schedule:{schedule.pk}", action="schedule.resumed").details[
            "reason"
        ]
        == "back from holiday"
    )
    assert resumed.next_run_at > timezone.now()  # the missed occurrence is skipped
    cancelled = services.cancel_schedule(actor=admin_user, schedule_id=schedule.pk)
    assert cancelled.status == ScheduleStatus.CANCELLED
    with pytest.raises(InvalidStateError):
        services.resume_schedule(actor=admin_user, schedule_id=schedule.pk)
    actions = list(
        AuditLog.objects.filter(chain=f"schedule:{schedule.pk}")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "schedule.created",
        "schedule.paused",
        "schedule.resumed",
        "schedule.cancelled",
    ]
    assert amount_of(other_user) == Decimal(0)


@pytest.mark.parametrize(
    ("anchor", "after", "expected"),
    [
        ("2027-01-31T09:00", "2027-01-31T09:00", "2027-02-28T09:00"),
        ("2027-01-31T09:00", "2027-02-28T09:00", "2027-03-31T09:00"),
        ("2028-01-31T09:00", "2028-01-31T10:00", "2028-02-29T09:00"),
        ("2027-11-30T09:00", "2027-12-30T09:00", "2028-01-30T09:00"),
        ("2027-01-15T09:00", "2026-12-01T00:00", "2027-01-15T09:00"),
    ],
)
def test_monthly_occurrences_keep_the_anchor_day_clamped_to_the_month(anchor, after, expected):
    # given
    schedule = ScheduledTransfer(
        interval="monthly", run_at=datetime.fromisoformat(anchor).replace(tzinfo=UTC)
    )
    # when
    found = next_occurrence(
        schedule=schedule, after=datetime.fromisoformat(after).replace(tzinfo=UTC)
    )
    # then
    assert found == datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_weekly_occurrences_stop_at_the_end():
    # given
    start = datetime(2027, 3, 1, 8, tzinfo=UTC)
    schedule = ScheduledTransfer(interval="weekly", run_at=start, end_at=start + timedelta(days=14))
    # when / then
    assert next_occurrence(schedule=schedule, after=start) == start + timedelta(days=7)
    assert next_occurrence(schedule=schedule, after=start + timedelta(days=7)) == start + timedelta(
        days=14
    )
    assert next_occurrence(schedule=schedule, after=start + timedelta(days=14)) is None


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_ticking_together_run_each_due_schedule_once():
    # given: 30 due schedules
    recipient = UserFactory()
    schedules = []
    for _ in range(30):
        sender = UserFactory()
        services.credit(actor=sender, user=sender, amount=Decimal("10.00"), currency="USD")
        schedules.append(schedule_for(sender, recipient, amount="1.00"))
    at = soon(2)
    barrier = threading.Barrier(4)
    claimed: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            claimed.extend(services.claim_due_runs(now=at, limit=10))
            claimed.extend(services.claim_due_runs(now=at, limit=10))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert len(claimed) == len(set(claimed)) == 30
    assert ScheduledRun.objects.count() == 30
    assert amount_of(recipient) == Decimal(30)  # eager Celery ran each claimed run once
    assert set(ScheduledTransfer.objects.values_list("status", flat=True)) == {"completed"}

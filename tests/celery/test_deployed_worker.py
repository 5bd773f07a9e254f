"""The worker and beat as operators start them: `celery -A wallet_project worker` (no `-Q`)
and `celery -A wallet_project beat`, as real processes, then a worker killed mid-batch."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from django.utils import timezone

from audit.models import AuditSeal
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.processes import Processes, purge_queues
from transactions import services
from transactions.models import (
    BatchStatus,
    ScheduledRun,
    ScheduleStatus,
    Transaction,
    TransferBatch,
    TransferBatchItem,
)
from transactions.services.batches import BatchItemInput
from wallet_project.celery import app as celery_app

pytestmark = [pytest.mark.celery_worker, pytest.mark.slow]

# Stalled after 3 s (so a batch resumes within about 4 s): the bound, made short for the test.
STALL_AFTER_SECONDS = "3"


@pytest.fixture
def processes(transactional_db, settings, tmp_path):
    """Real worker/beat processes on the test database; this process publishes for real."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    celery_app.conf.task_always_eager = False
    purge_queues()
    started = Processes(tmp_path, STALL_AFTER_SECONDS=STALL_AFTER_SECONDS)
    try:
        yield started
    finally:
        started.stop_all()
        purge_queues()
        celery_app.conf.task_always_eager = True


def _funded(amount: str):
    user = UserFactory()
    services.credit(actor=None, user=user, amount=Decimal(amount), currency="USD")
    return user


def test_a_plain_worker_and_beat_run_schedules_seal_the_stream_and_resume_batches(
    processes, tmp_path
):
    # given: a due schedule, unsealed events, and a batch whose message was lost
    sender, recipient = _funded("100.00"), UserFactory()
    schedule = services.create_schedule(
        actor=sender,
        sender=sender,
        recipient=recipient,
        amount=Decimal("2.00"),
        currency="USD",
        run_at=timezone.now(),
    )
    batch = services.create_batch(  # queued before any worker listens, then purged: lost
        actor=sender,
        items=[BatchItemInput(to_user_id=recipient.pk, amount=Decimal("1.00"), currency="USD")],
        atomic=False,
    )
    purge_queues()
    seals_before = AuditSeal.objects.count()
    # when the worker is started with no queue named, and beat beside it
    processes.celery("worker", "worker", "--concurrency", "2", "--loglevel", "INFO")
    processes.celery("beat", "beat", "--schedule", str(tmp_path / "beat-schedule"))
    # then every kind of background work gets done
    processes.wait_for(
        "the worker consumes every queue",
        lambda: (
            "ready" in processes.log("worker")
            and all(f".> {q}" in processes.log("worker") for q in ("scheduled", "maintenance"))
        ),
    )
    processes.wait_for(
        "the due schedule runs",
        lambda: ScheduledRun.objects.filter(schedule=schedule, status="completed").exists(),
    )
    processes.wait_for(
        "the audit stream is sealed", lambda: AuditSeal.objects.count() > seals_before
    )
    processes.wait_for(
        "the lost batch is resumed",
        lambda: TransferBatch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED,
    )
    schedule.refresh_from_db()
    assert schedule.status == ScheduleStatus.COMPLETED
    assert Balance.objects.get(user=recipient).amount == Decimal("3.00")


def test_a_batch_finishes_once_after_its_worker_is_killed_mid_run(processes):
    # given: a 5,000-item batch from 100 senders to 50 recipients
    senders = [_funded("100.00") for _ in range(100)]
    recipients = UserFactory.create_batch(50)
    items = [
        BatchItemInput(
            from_user_id=senders[i % 100].pk,
            to_user_id=recipients[i % 50].pk,
            amount=Decimal("0.10"),
            currency="USD",
        )
        for i in range(5_000)
    ]
    processes.celery("worker", "worker", "--concurrency", "2", "--loglevel", "INFO")
    processes.wait_for("the worker starts", lambda: "ready" in processes.log("worker"))
    admin = UserFactory(role="admin", is_staff=True)
    batch = services.create_batch(actor=admin, items=items, atomic=False)
    # when the worker is killed (SIGKILL, with its pool) in the middle, and restarted 2 s later
    processes.wait_for(
        "the batch is under way",
        lambda: TransferBatch.objects.get(pk=batch.pk).processed >= 500,
    )
    processes.kill("worker")
    killed_at = TransferBatch.objects.get(pk=batch.pk).processed
    assert killed_at < 5_000, "the batch finished before the kill: make it larger"
    processes.celery("worker-restarted", "worker", "--concurrency", "2", "--loglevel", "INFO")
    processes.celery("beat", "beat", "--schedule", str(processes.directory / "beat-schedule"))
    # then it finishes within the stated bound (stall threshold + a sweep + the work left)
    processes.wait_for(
        "the batch completes",
        lambda: TransferBatch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED,
        timeout=90,
    )
    batch.refresh_from_db()
    assert (batch.processed, batch.succeeded, batch.failed) == (5_000, 5_000, 0)
    # every item applied exactly once: one transaction each, no other, the money once
    assert TransferBatchItem.objects.filter(batch=batch, status="completed").count() == 5_000
    linked = TransferBatchItem.objects.filter(batch=batch).aggregate(
        n=Count("transaction_id", distinct=True)
    )
    assert linked["n"] == 5_000
    assert Transaction.objects.filter(type="transfer").count() == 5_000
    received = Balance.objects.filter(user__in=recipients).aggregate(s=Sum("amount"))["s"]
    assert received == Decimal("500.00")
    assert timezone.now() - batch.completed_at < timedelta(minutes=1)

"""Celery configuration: task names, queues, retries and the beat schedule."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import OperationalError

import audit.tasks  # noqa: F401 - registers maintenance.reconcile
from transactions import services, tasks
from transactions.models import TransactionStatus, TransactionType
from wallet_project.celery import app

OUR_TASKS = [
    tasks.process_pending_transaction,
    tasks.start_batch,
    tasks.process_batch_chunk,
    tasks.run_due_schedules,
    tasks.execute_scheduled_run,
    tasks.expire_idempotency_keys,
    tasks.requeue_stale_pending,
    tasks.resume_stalled_batches,
    tasks.requeue_stale_runs,
    tasks.rebuild_stats,
]


@pytest.mark.parametrize("task", OUR_TASKS, ids=lambda t: t.name)
def test_every_task_is_named_acknowledged_late_and_retries_only_transient_failures(task):
    # when
    queue = app.amqp.router.route({}, task.name)["queue"].name
    # then
    assert task.name.split(".")[0] in {"transactions", "scheduled", "maintenance"}
    assert queue == task.name.split(".")[0]
    assert task.acks_late is True
    assert task.autoretry_for == (OperationalError,)
    assert task.max_retries == 5
    assert task.retry_backoff


def test_every_beat_entry_names_a_registered_task_on_a_known_queue():
    # given
    app.loader.import_default_modules()
    schedule = settings.CELERY_BEAT_SCHEDULE
    # then
    assert (
        schedule["scheduled.run_due_schedules"]["schedule"] <= 10
    )  # docs/api.md: at least every 10 s
    assert schedule["maintenance.reconcile"]["task"] == "maintenance.reconcile"
    for entry in schedule.values():
        assert entry["task"] in app.tasks, entry["task"]
        assert app.amqp.router.route({}, entry["task"])["queue"].name in {
            "transactions",
            "scheduled",
            "maintenance",
        }


@pytest.mark.django_db
def test_the_task_for_a_pending_transaction_completes_it(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given: a pending transfer whose queued message has not run
    sender = funded_user("10.00")
    with django_capture_on_commit_callbacks(execute=False):
        txn = services.create_pending(
            actor=sender,
            kind=TransactionType.TRANSFER,
            from_user=sender,
            to_user=other_user,
            amount=Decimal("4.00"),
            currency="USD",
        )
    # when
    tasks.process_pending_transaction.delay(transaction_id=str(txn.pk))
    # then
    txn.refresh_from_db()
    assert txn.status == TransactionStatus.COMPLETED


@pytest.mark.django_db
def test_the_expiry_task_deletes_only_keys_past_retention(user):
    # given
    from datetime import timedelta

    from django.utils import timezone

    from transactions.models import IdempotencyKey

    old = IdempotencyKey.objects.create(
        user=user, key="old", request_fingerprint="x", created_at=timezone.now() - timedelta(days=2)
    )
    fresh = IdempotencyKey.objects.create(
        user=user, key="fresh", request_fingerprint="x", created_at=timezone.now()
    )
    # when
    deleted = tasks.expire_idempotency_keys.delay().get()
    # then
    assert deleted == 1
    assert not IdempotencyKey.objects.filter(pk=old.pk).exists()
    assert IdempotencyKey.objects.filter(pk=fresh.pk).exists()

"""The worker pool end to end: a real worker, the real Redis broker, committed data."""

from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.celery.conftest import wait_for
from tests.conftest import client_for
from transactions import services, tasks
from transactions.models import (
    BatchStatus,
    ScheduledRun,
    ScheduledRunStatus,
    Transaction,
    TransactionStatus,
    TransactionType,
    TransferBatch,
)

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def amount_of(user, currency: str = "USD") -> Decimal:
    balance = Balance.objects.filter(user=user, currency_id=currency).first()
    return balance.amount if balance else Decimal(0)


def funded(amount: str) -> object:
    user = UserFactory()
    services.credit(actor=user, user=user, amount=Decimal(amount), currency="USD")
    return user


def test_an_async_transfer_is_completed_by_a_worker(celery_worker):
    # given
    sender, recipient = funded("50.00"), UserFactory()
    client = client_for(sender)
    # when
    response = client.post(
        "/api/v1/transactions/transfer",
        {"to_user_id": recipient.pk, "amount": "20.00"},
        format="json",
        HTTP_PREFER="respond-async",
    )
    # then
    assert response.status_code == 202
    path = f"/api/v1/transactions/{response.json()['id']}"
    shown = wait_for(
        lambda: (body := client.get(path).json())["status"] != "pending" and body, timeout=20
    )
    assert shown["status"] == "completed"
    assert amount_of(sender) == Decimal("30.00")
    assert amount_of(recipient) == Decimal("20.00")


def test_a_task_delivered_several_times_applies_once(celery_worker, task_runs):
    # given: a pending transfer (its message is published on commit)
    sender, recipient = funded("50.00"), UserFactory()
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=recipient,
        amount=Decimal("20.00"),
        currency="USD",
    )
    # when: the same message is delivered twice more, to run concurrently
    for _ in range(2):
        tasks.process_pending_transaction.delay(transaction_id=str(txn.pk))
    # then
    wait_for(lambda: task_runs["transactions.process_pending_transaction"] == 3, timeout=20)
    assert Transaction.objects.get(pk=txn.pk).status == TransactionStatus.COMPLETED
    assert Transaction.objects.get(pk=txn.pk).entries.count() == 2
    assert amount_of(sender) == Decimal("30.00")
    assert amount_of(recipient) == Decimal("20.00")


def test_two_beat_ticks_at_once_run_each_due_schedule_once(celery_worker, task_runs):
    # given: twelve schedules due now
    recipient = UserFactory()
    schedules = [
        services.create_schedule(
            actor=sender,
            sender=sender,
            recipient=recipient,
            amount=Decimal("1.00"),
            currency="USD",
            run_at=timezone.now(),
        )
        for sender in (funded("5.00") for _ in range(12))
    ]
    # when: two schedulers tick together (and a third a little later)
    tasks.run_due_schedules.delay()
    tasks.run_due_schedules.delay()
    tasks.run_due_schedules.delay()
    # then
    wait_for(lambda: task_runs["scheduled.run_due_schedules"] == 3, timeout=30)
    wait_for(lambda: task_runs["scheduled.execute_run"] >= 12, timeout=30)
    assert task_runs["scheduled.execute_run"] == 12
    assert ScheduledRun.objects.filter(status=ScheduledRunStatus.COMPLETED).count() == 12
    for schedule in schedules:
        assert ScheduledRun.objects.filter(schedule=schedule).count() == 1
    assert Transaction.objects.filter(to_user=recipient).count() == 12
    assert amount_of(recipient) == Decimal("12.00")


def test_a_ten_thousand_item_chunked_batch_finishes_with_correct_progress(
    celery_worker_processes, admin_user
):
    # given: 200 funded senders paying 50 recipients; ten items name an unknown recipient
    senders = [funded("10.00") for _ in range(200)]
    recipients = UserFactory.create_batch(50)
    items = [
        {
            "from_user_id": senders[i % 200].pk,
            "to_user_id": 999_999_999 if i % 1000 == 999 else recipients[i % 50].pk,
            "amount": "0.10",
        }
        for i in range(10_000)
    ]
    # when
    response = client_for(admin_user).post(
        "/api/v1/transactions/batch", {"items": items, "atomic": False}, format="json"
    )
    assert response.status_code == 202, response.json()
    batch_id = response.json()["id"]
    seen: list[tuple[int, int, int]] = []

    def finished() -> bool:
        batch = TransferBatch.objects.get(pk=batch_id)
        seen.append((batch.processed, batch.succeeded, batch.failed))
        return batch.status == BatchStatus.COMPLETED

    wait_for(finished, timeout=120, every=0.25)
    # then
    processed = [p for p, _, _ in seen]
    assert processed == sorted(processed)  # progress only grows
    assert all(p == s + f for p, s, f in seen)
    assert seen[-1] == (10_000, 9_990, 10)
    shown = client_for(admin_user).get(f"/api/v1/transactions/batch/{batch_id}").json()
    assert len(shown["items"]) == 10_000
    assert sum(1 for i in shown["items"] if i["status"] == "completed") == 9_990
    assert {i["error"]["code"] for i in shown["items"] if i["error"]} == {"not_found"}
    total = Balance.objects.filter(user__in=recipients).aggregate(s=Sum("amount"))["s"]
    assert total == Decimal("999.00")


def test_an_atomic_batch_with_one_bad_item_changes_nothing(celery_worker, admin_user):
    # given: 500 transfers, the last one overdraws
    senders = [funded("10.00") for _ in range(20)]
    recipient = UserFactory()
    items = [
        {"from_user_id": senders[i % 20].pk, "to_user_id": recipient.pk, "amount": "0.40"}
        for i in range(499)
    ]
    items.append({"from_user_id": senders[0].pk, "to_user_id": recipient.pk, "amount": "9.99"})
    transactions_before = Transaction.objects.count()
    # when
    response = client_for(admin_user).post(
        "/api/v1/transactions/batch", {"items": items, "atomic": True}, format="json"
    )
    # then
    batch_id = response.json()["id"]
    wait_for(
        lambda: (
            TransferBatch.objects.get(pk=batch_id).status
            in (BatchStatus.COMPLETED, BatchStatus.FAILED)
        ),
        timeout=30,
    )
    batch = TransferBatch.objects.get(pk=batch_id)
    assert (batch.status, batch.succeeded, batch.failed) == (BatchStatus.FAILED, 0, 500)
    assert Transaction.objects.count() == transactions_before
    assert amount_of(recipient) == Decimal(0)
    assert all(amount_of(s) == Decimal("10.00") for s in senders)

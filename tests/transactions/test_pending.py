"""Asynchronous movements: `Prefer: respond-async`, the worker's processing, admin actions."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.conftest import client_for
from transactions import services
from transactions.models import Transaction, TransactionStatus, TransactionType
from wallet_project.errors import InvalidStateError

pytestmark = pytest.mark.django_db

ASYNC = {"HTTP_PREFER": "respond-async"}


def amount_of(user, currency: str = "USD") -> Decimal:
    balance = Balance.objects.filter(user=user, currency_id=currency).first()
    return balance.amount if balance else Decimal(0)


def test_async_transfer_is_accepted_pending_then_completed_by_the_worker(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("50.00")
    client = client_for(sender)
    # when
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            "/api/v1/transactions/transfer",
            {"to_user_id": other_user.pk, "amount": "20.00"},
            format="json",
            **ASYNC,
        )
    # then: accepted, pending, nothing moved yet
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["completed_at"] is None
    assert body["balance_after"] is None
    assert response["Preference-Applied"] == "respond-async"
    assert amount_of(sender) == Decimal("50.00")
    assert len(queued) >= 1
    # when: the worker runs what was queued after commit
    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    # then
    shown = client.get(f"/api/v1/transactions/{body['id']}").json()
    assert shown["status"] == "completed"
    assert shown["completed_at"] is not None
    assert shown["failure_code"] is None
    assert amount_of(sender) == Decimal("30.00")
    assert amount_of(other_user) == Decimal("20.00")
    actions = list(
        AuditLog.objects.filter(chain=f"txn:{body['id']}")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["transaction.created", "transaction.completed"]


def test_async_transfer_without_funds_ends_failed_with_insufficient_funds(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("5.00")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(sender).post(
            "/api/v1/transactions/transfer",
            {"to_user_id": other_user.pk, "amount": "20.00"},
            format="json",
            **ASYNC,
        )
    # then
    assert response.status_code == 202
    txn = Transaction.objects.get(pk=response.json()["id"])
    assert txn.status == TransactionStatus.FAILED
    assert txn.failure_code == "insufficient_funds"
    assert txn.completed_at is None
    assert not txn.entries.exists()
    assert amount_of(sender) == Decimal("5.00")
    assert amount_of(other_user) == Decimal(0)
    failed = AuditLog.objects.get(chain=f"txn:{txn.pk}", action="transaction.failed")
    assert failed.details["failure_code"] == "insufficient_funds"
    shown = client_for(sender).get(f"/api/v1/transactions/{txn.pk}").json()
    assert shown["status"] == "failed"
    assert shown["failure_code"] == "insufficient_funds"


def test_async_transfer_to_an_inactive_account_fails_with_account_inactive(
    funded_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("50.00")
    recipient = funded_user("1.00")
    recipient.is_active = False
    recipient.save(update_fields=["is_active"])
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(sender).post(
            "/api/v1/transactions/transfer",
            {"to_user_id": recipient.pk, "amount": "20.00"},
            format="json",
            **ASYNC,
        )
    # then
    txn = Transaction.objects.get(pk=response.json()["id"])
    assert txn.status == TransactionStatus.FAILED
    assert txn.failure_code == "account_inactive"
    assert amount_of(sender) == Decimal("50.00")
    assert amount_of(recipient) == Decimal("1.00")


@pytest.mark.parametrize(
    ("path", "kind", "start", "expected"),
    [
        ("/api/v1/transactions/credit", TransactionType.CREDIT, "10.00", "17.50"),
        ("/api/v1/transactions/debit", TransactionType.DEBIT, "10.00", "2.50"),
    ],
)
def test_async_credit_and_debit_complete_like_their_synchronous_forms(
    funded_user, django_capture_on_commit_callbacks, path, kind, start, expected
):
    # given
    user = funded_user(start)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(user).post(path, {"amount": "7.50"}, format="json", **ASYNC)
    # then
    assert response.status_code == 202, response.json()
    txn = Transaction.objects.get(pk=response.json()["id"])
    assert (txn.type, txn.status) == (kind, TransactionStatus.COMPLETED)
    assert amount_of(user) == Decimal(expected)


def test_async_shape_errors_are_refused_at_once_and_queue_nothing(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("50.00")
    # when
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client_for(sender).post(
            "/api/v1/transactions/transfer",
            {"to_user_id": other_user.pk, "amount": "1e3"},
            format="json",
            **ASYNC,
        )
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "amount" in response.json()["error"]["details"]
    assert queued == []
    assert not Transaction.objects.filter(status=TransactionStatus.PENDING).exists()


def test_async_transfer_to_oneself_is_refused_at_once(funded_user):
    # given
    sender = funded_user("50.00")
    # when
    response = client_for(sender).post(
        "/api/v1/transactions/transfer",
        {"to_user_id": sender.pk, "amount": "1.00"},
        format="json",
        **ASYNC,
    )
    # then
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "same_account"
    assert not Transaction.objects.filter(status=TransactionStatus.PENDING).exists()


def test_async_transfer_by_a_user_for_another_sender_is_forbidden(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    victim = funded_user("50.00")
    # when
    response = client_for(sender).post(
        "/api/v1/transactions/transfer",
        {"to_user_id": other_user.pk, "from_user_id": victim.pk, "amount": "1.00"},
        format="json",
        **ASYNC,
    )
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Transaction.objects.filter(status=TransactionStatus.PENDING).exists()


def test_async_request_repeated_with_its_key_replays_the_202_and_queues_once(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("50.00")
    client = client_for(sender)
    payload = {"to_user_id": other_user.pk, "amount": "20.00"}
    headers = {**ASYNC, "HTTP_IDEMPOTENCY_KEY": "async-1"}
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/transactions/transfer", payload, format="json", **headers)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post("/api/v1/transactions/transfer", payload, format="json", **headers)
    # then
    assert first.status_code == second.status_code == 202
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.json()["status"] == "pending"  # the stored answer, not today's state
    assert Transaction.objects.filter(type=TransactionType.TRANSFER).count() == 1
    assert amount_of(sender) == Decimal("30.00")


def test_processing_a_transaction_twice_applies_it_once(funded_user, other_user, admin_user):
    # given
    sender = funded_user("50.00")
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("20.00"),
        currency="USD",
    )
    # when
    first = services.process_pending_transaction(transaction_id=txn.pk)
    second = services.process_pending_transaction(transaction_id=txn.pk)
    # then
    assert first.status == second.status == TransactionStatus.COMPLETED
    assert Transaction.objects.get(pk=txn.pk).entries.count() == 2
    assert amount_of(sender) == Decimal("30.00")
    assert amount_of(other_user) == Decimal("20.00")
    assert AuditLog.objects.filter(chain=f"txn:{txn.pk}").count() == 2


def test_an_admin_cancels_a_pending_transaction(funded_user, other_user, admin_user):
    # given
    sender = funded_user("50.00")
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("20.00"),
        currency="USD",
    )
    # when
    cancelled = services.cancel_pending_transaction(
        actor=admin_user, transaction_id=txn.pk, reason="customer request"
    )
    late = services.process_pending_transaction(transaction_id=txn.pk)
    # then
    assert cancelled.status == late.status == TransactionStatus.FAILED
    assert Transaction.objects.get(pk=txn.pk).failure_code == "cancelled"
    assert amount_of(sender) == Decimal("50.00")
    event = AuditLog.objects.get(chain=f"txn:{txn.pk}", action="transaction.failed")
    assert event.actor_id == admin_user.pk
    assert event.details["reason"] == "customer request"


def test_cancelling_a_completed_transaction_is_refused_and_changes_nothing(
    funded_user, other_user, admin_user
):
    # given
    sender = funded_user("50.00")
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal(5), currency="USD"
    )
    events_before = AuditLog.objects.count()
    # when
    with pytest.raises(InvalidStateError) as refused:
        services.cancel_pending_transaction(actor=admin_user, transaction_id=txn.pk, reason="x")
    # then
    assert refused.value.code == "invalid_state"
    assert Transaction.objects.get(pk=txn.pk).status == TransactionStatus.COMPLETED
    assert AuditLog.objects.count() == events_before


def test_requeueing_a_pending_transaction_queues_it_and_records_who_asked(
    funded_user, other_user, admin_user, django_capture_on_commit_callbacks
):
    # given: its first message was lost
    sender = funded_user("50.00")
    with django_capture_on_commit_callbacks(execute=False):
        txn = services.create_pending(
            actor=sender,
            kind=TransactionType.TRANSFER,
            from_user=sender,
            to_user=other_user,
            amount=Decimal("20.00"),
            currency="USD",
        )
    # when
    with django_capture_on_commit_callbacks(execute=True):
        services.requeue_pending_transaction(
            actor=admin_user, transaction_id=txn.pk, reason="worker restarted"
        )
    # then
    assert Transaction.objects.get(pk=txn.pk).status == TransactionStatus.COMPLETED
    requeued = AuditLog.objects.get(chain=f"txn:{txn.pk}", action="transaction.requeued")
    assert requeued.actor_id == admin_user.pk
    assert requeued.details["reason"] == "worker restarted"


def test_requeueing_a_finished_transaction_is_refused(funded_user, other_user, admin_user):
    # given
    sender = funded_user("50.00")
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal(5), currency="USD"
    )
    # when
    with pytest.raises(InvalidStateError):
        services.requeue_pending_transaction(actor=admin_user, transaction_id=txn.pk)
    # then
    assert not AuditLog.objects.filter(action="transaction.requeued").exists()


def test_the_sweeper_requeues_only_transactions_pending_for_too_long(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given: one old pending transaction (message lost), one fresh
    sender = funded_user("50.00")
    with django_capture_on_commit_callbacks(execute=False):
        old, fresh = (
            services.create_pending(
                actor=sender,
                kind=TransactionType.TRANSFER,
                from_user=sender,
                to_user=other_user,
                amount=Decimal("1.00"),
                currency="USD",
            )
            for _ in range(2)
        )
    Transaction.objects.filter(pk=old.pk).update(created_at=old.created_at - timedelta(minutes=10))
    # when
    count = services.requeue_stale_pending(older_than=timedelta(minutes=2))
    # then
    assert count == 1
    assert Transaction.objects.get(pk=old.pk).status == TransactionStatus.COMPLETED
    assert Transaction.objects.get(pk=fresh.pk).status == TransactionStatus.PENDING


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_workers_processing_the_same_transaction_apply_it_once():
    # given
    sender, recipient = UserFactory(), UserFactory()
    services.credit(actor=sender, user=sender, amount=Decimal("50.00"), currency="USD")
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=recipient,
        amount=Decimal("20.00"),
        currency="USD",
    )
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            services.process_pending_transaction(transaction_id=txn.pk)
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
    assert Transaction.objects.get(pk=txn.pk).status == TransactionStatus.COMPLETED
    assert Transaction.objects.get(pk=txn.pk).entries.count() == 2
    assert amount_of(sender) == Decimal("30.00")
    assert amount_of(recipient) == Decimal("20.00")

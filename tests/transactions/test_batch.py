"""Batch transfers: atomic (all or none, set-based) and chunked (per item, counted once)."""

import random
import threading
from decimal import Decimal

import pytest
from django.db import connection

from audit.models import AuditLog
from audit.verification import verify_audit_trail
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.conftest import client_for
from tests.transactions.services.ledger_state import assert_chain_intact
from transactions import services
from transactions.models import (
    BatchStatus,
    Transaction,
    TransactionType,
    TransferBatch,
    TransferBatchItem,
)
from transactions.services.batches import BatchItemInput

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/transactions/batch"


def amount_of(user, currency: str = "USD") -> Decimal:
    balance = Balance.objects.filter(user=user, currency_id=currency).first()
    return balance.amount if balance else Decimal(0)


def submit(client, payload, capture, **headers):
    with capture(execute=True):
        return client.post(BATCH, payload, format="json", **headers)


def test_an_atomic_batch_applies_every_item(funded_user, django_capture_on_commit_callbacks):
    # given
    sender = funded_user("100.00")
    recipients = UserFactory.create_batch(3)
    items = [
        {"to_user_id": r.pk, "amount": "10.00", "reference": f"r{i}"}
        for i, r in enumerate(recipients)
    ]
    client = client_for(sender)
    # when
    response = submit(client, {"items": items, "atomic": True}, django_capture_on_commit_callbacks)
    # then
    assert response.status_code == 202, response.json()
    accepted = response.json()
    assert accepted["status"] == "pending"
    assert (accepted["atomic"], accepted["total"], accepted["processed"]) == (True, 3, 0)
    shown = client.get(f"{BATCH}/{accepted['id']}").json()
    assert shown["status"] == "completed"
    assert (shown["processed"], shown["succeeded"], shown["failed"]) == (3, 3, 0)
    assert shown["completed_at"] is not None
    assert [i["index"] for i in shown["items"]] == [0, 1, 2]
    assert all(i["status"] == "completed" and i["error"] is None for i in shown["items"])
    txns = Transaction.objects.filter(pk__in=[i["transaction_id"] for i in shown["items"]])
    assert sorted(t.reference for t in txns) == ["r0", "r1", "r2"]
    assert all(t.type == TransactionType.TRANSFER for t in txns)
    assert amount_of(sender) == Decimal("70.00")
    assert all(amount_of(r) == Decimal("10.00") for r in recipients)
    assert (
        AuditLog.objects.filter(
            action="transaction.completed", entity_id__in=[str(t.pk) for t in txns]
        ).count()
        == 3
    )
    assert AuditLog.objects.filter(
        chain=f"batch:{accepted['id']}", action="batch.completed"
    ).exists()


def test_an_atomic_batch_with_one_refused_item_changes_nothing(
    funded_user, django_capture_on_commit_callbacks
):
    # given: the third item overdraws
    sender = funded_user("25.00")
    recipients = UserFactory.create_batch(3)
    items = [{"to_user_id": r.pk, "amount": "10.00"} for r in recipients]
    transactions_before = Transaction.objects.count()
    # when
    response = submit(
        client_for(sender), {"items": items, "atomic": True}, django_capture_on_commit_callbacks
    )
    # then
    shown = client_for(sender).get(f"{BATCH}/{response.json()['id']}").json()
    assert shown["status"] == "failed"
    assert (shown["processed"], shown["succeeded"], shown["failed"]) == (3, 0, 3)
    refused = shown["items"][2]
    assert refused["status"] == "failed"
    assert refused["error"]["code"] == "insufficient_funds"
    assert refused["transaction_id"] is None
    assert [i["error"]["code"] for i in shown["items"][:2]] == ["batch_aborted"] * 2
    assert amount_of(sender) == Decimal("25.00")
    assert all(amount_of(r) == Decimal(0) for r in recipients)
    assert Transaction.objects.count() == transactions_before


def test_an_atomic_batch_reports_every_refused_item(
    funded_user, admin_user, django_capture_on_commit_callbacks
):
    # given: an unknown recipient, a payment to oneself, an inactive recipient
    sender = funded_user("100.00")
    inactive = UserFactory(is_active=False)
    items = [
        {"to_user_id": 999_999_999, "amount": "1.00"},
        {"to_user_id": sender.pk, "amount": "1.00"},
        {"to_user_id": inactive.pk, "amount": "1.00"},
        {"to_user_id": UserFactory().pk, "amount": "1.00"},
    ]
    # when
    response = submit(
        client_for(sender), {"items": items, "atomic": True}, django_capture_on_commit_callbacks
    )
    # then
    batch = TransferBatch.objects.get(pk=response.json()["id"])
    codes = list(
        TransferBatchItem.objects.filter(batch=batch)
        .order_by("index")
        .values_list("error_code", flat=True)
    )
    assert batch.status == BatchStatus.FAILED
    assert codes == ["not_found", "same_account", "account_inactive", "batch_aborted"]
    assert amount_of(sender) == Decimal("100.00")


def test_atomic_items_see_the_effect_of_earlier_items(
    funded_user, admin_user, django_capture_on_commit_callbacks
):
    # given: B can pay C only with what A pays B in the same batch
    a = funded_user("10.00")
    b, c = UserFactory(), UserFactory()
    items = [
        {"from_user_id": a.pk, "to_user_id": b.pk, "amount": "10.00"},
        {"from_user_id": b.pk, "to_user_id": c.pk, "amount": "10.00"},
    ]
    # when
    response = submit(
        client_for(admin_user), {"items": items, "atomic": True}, django_capture_on_commit_callbacks
    )
    # then
    assert TransferBatch.objects.get(pk=response.json()["id"]).status == BatchStatus.COMPLETED
    assert (amount_of(a), amount_of(b), amount_of(c)) == (Decimal(0), Decimal(0), Decimal(10))


def test_an_atomic_batch_writes_with_a_fixed_number_of_statements(
    funded_user, django_assert_max_num_queries
):
    # given: two batches, 5 and 200 items
    def prepared(size: int) -> TransferBatch:
        sender = funded_user("1000.00")
        recipients = UserFactory.create_batch(size)
        return services.create_batch(
            actor=sender,
            items=[
                BatchItemInput(to_user_id=r.pk, amount=Decimal(1), currency="USD")
                for r in recipients
            ],
            atomic=True,
        )

    small, large = prepared(5), prepared(200)
    # when / then: the same number of queries whatever the size
    with django_assert_max_num_queries(20) as small_queries:
        services.apply_atomic_batch(batch_id=small.pk)
    with django_assert_max_num_queries(len(small_queries.captured_queries)):
        services.apply_atomic_batch(batch_id=large.pk)
    assert TransferBatch.objects.get(pk=large.pk).succeeded == 200


def test_applying_an_atomic_batch_twice_applies_it_once(funded_user):
    # given
    sender = funded_user("100.00")
    recipient = UserFactory()
    batch = services.create_batch(
        actor=sender,
        items=[BatchItemInput(to_user_id=recipient.pk, amount=Decimal(30), currency="USD")],
        atomic=True,
    )
    # when
    services.start_batch(batch_id=batch.pk)
    services.start_batch(batch_id=batch.pk)
    services.apply_atomic_batch(batch_id=batch.pk)
    # then
    assert amount_of(recipient) == Decimal("30.00")
    assert Transaction.objects.filter(to_user=recipient).count() == 1


def test_a_chunked_batch_fails_refused_items_alone_and_completes(
    funded_user, django_capture_on_commit_callbacks
):
    # given: the third item overdraws, the others are fine
    sender = funded_user("25.00")
    recipients = UserFactory.create_batch(4)
    amounts = ["10.00", "10.00", "10.00", "5.00"]
    items = [{"to_user_id": r.pk, "amount": a} for r, a in zip(recipients, amounts, strict=True)]
    # when
    response = submit(
        client_for(sender), {"items": items, "atomic": False}, django_capture_on_commit_callbacks
    )
    # then
    shown = client_for(sender).get(f"{BATCH}/{response.json()['id']}").json()
    assert shown["status"] == "completed"
    assert (shown["processed"], shown["succeeded"], shown["failed"]) == (4, 3, 1)
    assert [i["status"] for i in shown["items"]] == [
        "completed",
        "completed",
        "failed",
        "completed",
    ]
    assert shown["items"][2]["error"]["code"] == "insufficient_funds"
    assert shown["items"][2]["transaction_id"] is None
    assert amount_of(sender) == Decimal("0.00")
    assert [amount_of(r) for r in recipients] == [Decimal(10), Decimal(10), Decimal(0), Decimal(5)]
    paid = {
        i["index"]: Transaction.objects.get(pk=i["transaction_id"])
        for i in shown["items"]
        if i["status"] == "completed"
    }
    assert {index: (t.to_user_id, t.amount) for index, t in paid.items()} == {
        index: (recipients[index].pk, Decimal(amounts[index])) for index in (0, 1, 3)
    }


def test_a_chunked_batch_refuses_an_unknown_recipient_per_item(
    funded_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("25.00")
    friend = UserFactory()
    items = [
        {"to_user_id": 999_999_999, "amount": "1.00"},
        {"to_user_id": friend.pk, "amount": "2.00"},
    ]
    # when
    response = submit(client_for(sender), {"items": items}, django_capture_on_commit_callbacks)
    # then
    batch = TransferBatch.objects.get(pk=response.json()["id"])
    assert (batch.status, batch.succeeded, batch.failed) == (BatchStatus.COMPLETED, 1, 1)
    assert TransferBatchItem.objects.get(batch=batch, index=0).error_code == "not_found"
    assert amount_of(friend) == Decimal("2.00")


def test_a_redelivered_chunk_counts_and_pays_nothing_twice(funded_user):
    # given: a chunked batch whose chunk ran once
    sender = funded_user("100.00")
    recipients = UserFactory.create_batch(3)
    batch = services.create_batch(
        actor=sender,
        items=[
            BatchItemInput(to_user_id=r.pk, amount=Decimal(10), currency="USD") for r in recipients
        ],
        atomic=False,
    )
    services.start_batch(batch_id=batch.pk)
    # when
    again = services.process_batch_chunk(batch_id=batch.pk, start=0, stop=3)
    # then
    assert again == 0
    batch.refresh_from_db()
    assert (batch.processed, batch.succeeded, batch.status) == (3, 3, BatchStatus.COMPLETED)
    assert amount_of(sender) == Decimal("70.00")


def test_a_chunk_that_fails_before_its_commit_moves_nothing_and_runs_again_once(
    funded_user, monkeypatch
):
    # given: the chunk's transaction breaks after the money was written, before the commit
    sender = funded_user("100.00")
    recipients = UserFactory.create_batch(3)
    batch = services.create_batch(
        actor=sender,
        items=[
            BatchItemInput(to_user_id=r.pk, amount=Decimal(10), currency="USD") for r in recipients
        ],
        atomic=False,
    )
    services.batches._mark_processing(batch_id=batch.pk)
    record = services.batches._record_outcomes

    def crash(**kwargs):
        record(**kwargs)
        raise ConnectionResetError("worker lost")

    monkeypatch.setattr(services.batches, "_record_outcomes", crash)
    transactions_before = Transaction.objects.count()
    # when
    with pytest.raises(ConnectionResetError):
        services.process_batch_chunk(batch_id=batch.pk, start=0, stop=3)
    # then: nothing moved, every item still pending
    assert amount_of(sender) == Decimal("100.00")
    assert Transaction.objects.count() == transactions_before
    assert set(TransferBatchItem.objects.filter(batch=batch).values_list("status", flat=True)) == {
        "pending"
    }
    # when: the chunk is delivered again
    monkeypatch.setattr(services.batches, "_record_outcomes", record)
    again = services.process_batch_chunk(batch_id=batch.pk, start=0, stop=3)
    # then: applied once
    batch.refresh_from_db()
    assert again == 3
    assert (batch.status, batch.processed, batch.succeeded) == (BatchStatus.COMPLETED, 3, 3)
    assert amount_of(sender) == Decimal("70.00")
    assert Transaction.objects.count() == transactions_before + 3


def test_a_chunk_refuses_each_bad_item_alone_with_its_own_code(funded_user):
    # given: one chunk mixing good items and every kind of refusal
    sender = funded_user("30.00")
    friend, inactive = UserFactory(), UserFactory(is_active=False)
    items = [
        BatchItemInput(to_user_id=friend.pk, amount=Decimal("20.00"), currency="USD"),
        BatchItemInput(to_user_id=999_999_999, amount=Decimal("1.00"), currency="USD"),
        BatchItemInput(to_user_id=sender.pk, amount=Decimal("1.00"), currency="USD"),
        BatchItemInput(to_user_id=inactive.pk, amount=Decimal("1.00"), currency="USD"),
        BatchItemInput(to_user_id=friend.pk, amount=Decimal("10.01"), currency="USD"),
        BatchItemInput(to_user_id=friend.pk, amount=Decimal("10.00"), currency="USD"),
    ]
    batch = services.create_batch(actor=sender, items=items, atomic=False)
    services.batches._mark_processing(batch_id=batch.pk)
    # when
    done = services.process_batch_chunk(batch_id=batch.pk, start=0, stop=len(items))
    # then
    batch.refresh_from_db()
    rows = list(
        TransferBatchItem.objects.filter(batch=batch)
        .order_by("index")
        .values_list("status", "error_code")
    )
    assert done == 6
    assert rows == [
        ("completed", None),
        ("failed", "not_found"),
        ("failed", "same_account"),
        ("failed", "account_inactive"),
        ("failed", "insufficient_funds"),
        ("completed", None),
    ]
    assert (batch.status, batch.succeeded, batch.failed) == (BatchStatus.COMPLETED, 2, 4)
    assert (amount_of(sender), amount_of(friend), amount_of(inactive)) == (
        Decimal(0),
        Decimal(30),
        Decimal(0),
    )
    assert (
        "10.00 USD available" in TransferBatchItem.objects.get(batch=batch, index=4).error_message
    )


@pytest.mark.parametrize("atomic", [True, False])
def test_a_batch_continues_every_balance_chain_in_item_order(funded_user, atomic):
    # given: two senders paying each other and a third account, in interleaved order
    a, b = funded_user("50.00"), funded_user("50.00")
    c = UserFactory()
    moves = [(a, b, "5.00"), (b, c, "7.00"), (a, c, "1.00"), (b, a, "2.00"), (a, b, "3.00")]
    batch = services.create_batch(
        actor=UserFactory(role="admin"),
        items=[
            BatchItemInput(
                from_user_id=x.pk, to_user_id=y.pk, amount=Decimal(amount), currency="USD"
            )
            for x, y, amount in moves
        ],
        atomic=atomic,
    )
    # when
    services.start_batch(batch_id=batch.pk)
    # then: each balance's events follow item order, link up, and end at the balance's head
    balance_a = Balance.objects.get(user=a, currency_id="USD")
    opened, *chain = assert_chain_intact(f"balance:{balance_a.pk}")
    assert opened.action == "balance.opened"
    assert [e.details["balance_after"] for e in chain] == [
        "50.00",
        "45.00",
        "44.00",
        "46.00",
        "43.00",
    ]
    assert [e.details["seq"] for e in chain] == [1, 2, 3, 4, 5]
    assert balance_a.head_hash == chain[-1].hash
    items = TransferBatchItem.objects.filter(batch=batch).order_by("index")
    for item in items:
        assert_chain_intact(f"txn:{item.transaction_id}")
    assert verify_audit_trail().ok


def test_a_malformed_item_rejects_the_whole_batch_with_details_by_index(user_client, other_user):
    # given
    items = [
        {"to_user_id": other_user.pk, "amount": "1.00"},
        {"to_user_id": other_user.pk, "amount": "1.001"},
        "not an object",
        {"amount": "1.00", "currency": "XXX"},
    ]
    # when
    response = user_client.post(BATCH, {"items": items}, format="json")
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["details"]) == {"1", "2", "3"}
    assert "amount" in error["details"]["1"]
    assert "non_field_errors" in error["details"]["2"]
    assert set(error["details"]["3"]) == {"to_user_id", "currency"}
    assert not TransferBatch.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"items": []},
        {"items": "x"},
        {"items": [{"to_user_id": 1, "amount": "1"}], "atomic": "maybe"},
    ],
)
def test_a_batch_without_a_proper_item_list_is_refused(user_client, payload):
    # when
    response = user_client.post(BATCH, payload, format="json")
    # then
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert not TransferBatch.objects.exists()


def test_more_than_ten_thousand_items_are_refused(user_client, other_user):
    # given
    items = [{"to_user_id": other_user.pk, "amount": "1"}] * 10_001
    # when
    response = user_client.post(BATCH, {"items": items}, format="json")
    # then
    assert response.status_code == 400
    assert "items" in response.json()["error"]["details"]
    assert not TransferBatch.objects.exists()


def test_a_user_may_not_name_another_sender(funded_user, other_user):
    # given
    sender = funded_user("10.00")
    victim = funded_user("10.00")
    items = [{"from_user_id": victim.pk, "to_user_id": other_user.pk, "amount": "1.00"}]
    # when
    response = client_for(sender).post(BATCH, {"items": items}, format="json")
    # then
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not TransferBatch.objects.exists()


def test_an_auditor_may_not_submit_a_batch(auditor_client, other_user):
    # when
    response = auditor_client.post(
        BATCH, {"items": [{"to_user_id": other_user.pk, "amount": "1.00"}]}, format="json"
    )
    # then
    assert response.status_code == 403
    assert not TransferBatch.objects.exists()


def test_a_batch_is_visible_to_its_owner_admins_and_auditors_only(
    funded_user, other_user, admin_client, auditor_client
):
    # given
    sender = funded_user("10.00")
    batch = services.create_batch(
        actor=sender,
        items=[BatchItemInput(to_user_id=other_user.pk, amount=Decimal(1), currency="USD")],
        atomic=True,
    )
    path = f"{BATCH}/{batch.pk}"
    # when
    answers = {
        "owner": client_for(sender).get(path),
        "admin": admin_client.get(path),
        "auditor": auditor_client.get(path),
        "other": client_for(other_user).get(path),
        "malformed": client_for(sender).get(f"{BATCH}/not-a-uuid"),
    }
    # then
    assert {k: r.status_code for k, r in answers.items()} == {
        "owner": 200,
        "admin": 200,
        "auditor": 200,
        "other": 404,
        "malformed": 404,
    }
    assert answers["admin"].json()["items"][0] == {
        "index": 0,
        "status": "pending",
        "transaction_id": None,
        "error": None,
    }


def test_a_batch_repeated_with_its_key_is_accepted_once(
    funded_user, other_user, django_capture_on_commit_callbacks
):
    # given
    sender = funded_user("10.00")
    client = client_for(sender)
    payload = {"items": [{"to_user_id": other_user.pk, "amount": "1.00"}], "atomic": True}
    # when
    first = submit(client, payload, django_capture_on_commit_callbacks, HTTP_IDEMPOTENCY_KEY="b-1")
    second = submit(client, payload, django_capture_on_commit_callbacks, HTTP_IDEMPOTENCY_KEY="b-1")
    # then
    assert first.status_code == second.status_code == 202
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert TransferBatch.objects.count() == 1
    assert amount_of(other_user) == Decimal("1.00")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_chunks_of_one_batch_run_by_several_workers_count_every_item_once():
    # given: 40 items in 4 chunks, every chunk also delivered twice
    sender = UserFactory()
    services.credit(actor=sender, user=sender, amount=Decimal("400.00"), currency="USD")
    recipients = UserFactory.create_batch(8)
    batch = services.create_batch(
        actor=sender,
        items=[
            BatchItemInput(to_user_id=recipients[i % 8].pk, amount=Decimal(10), currency="USD")
            for i in range(40)
        ],
        atomic=False,
    )
    ranges = [(start, start + 10) for start in range(0, 40, 10)] * 2
    barrier = threading.Barrier(len(ranges))
    errors: list[BaseException] = []

    def work(start: int, stop: int) -> None:
        try:
            barrier.wait()
            services.process_batch_chunk(batch_id=batch.pk, start=start, stop=stop)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=work, args=r) for r in ranges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    batch.refresh_from_db()
    assert (batch.status, batch.processed, batch.succeeded) == (BatchStatus.COMPLETED, 40, 40)
    assert amount_of(sender) == Decimal(0)
    assert sum(amount_of(r) for r in recipients) == Decimal(400)
    assert AuditLog.objects.filter(chain=f"batch:{batch.pk}", action="batch.completed").count() == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_workers_paying_between_the_same_accounts_conserve_money():
    # given: twelve accounts and two chunked batches of payments among them, some too large
    accounts = UserFactory.create_batch(12)
    for account in accounts:
        services.credit(actor=account, user=account, amount=Decimal("100.00"), currency="USD")
    admin = UserFactory(role="admin")
    rng = random.Random(11)
    batches = [
        services.create_batch(
            actor=admin,
            items=[
                BatchItemInput(
                    from_user_id=sender.pk,
                    to_user_id=recipient.pk,
                    amount=Decimal(rng.randint(100, 6000)) / 100,
                    currency="USD",
                )
                for sender, recipient in (rng.sample(accounts, 2) for _ in range(300))
            ],
            atomic=False,
        )
        for _ in range(2)
    ]
    for batch in batches:
        services.batches._mark_processing(batch_id=batch.pk)
    chunks = [(batch.pk, start, start + 25) for batch in batches for start in range(0, 300, 25)]
    orders = [chunks, list(reversed(chunks))]  # each worker takes every chunk, in its own order
    barrier = threading.Barrier(len(orders))
    errors: list[BaseException] = []

    def work(order: list) -> None:
        try:
            barrier.wait()
            for batch_id, start, stop in order:
                services.process_batch_chunk(batch_id=batch_id, start=start, stop=stop)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=work, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert errors == []
    assert sum(amount_of(a) for a in accounts) == Decimal("1200.00")
    for batch in batches:
        batch.refresh_from_db()
        items = TransferBatchItem.objects.filter(batch=batch)
        assert (batch.status, batch.processed) == (BatchStatus.COMPLETED, 300)
        assert batch.succeeded == items.filter(status="completed").count() > 0
        assert batch.failed == items.filter(error_code="insufficient_funds").count() > 0
        paid = Transaction.objects.filter(pk__in=items.values("transaction_id"))
        assert paid.count() == batch.succeeded
    transfers = Transaction.objects.filter(type=TransactionType.TRANSFER, initiated_by=admin)
    assert transfers.count() == sum(b.succeeded for b in batches)  # none applied twice
    assert verify_audit_trail().ok

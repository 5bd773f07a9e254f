"""One Idempotency-Key, many simultaneous requests: the money moves exactly once."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.concurrency.harness import amounts, run_concurrently
from tests.ledger import assert_ledger_holds
from transactions import services
from transactions.idempotency import IdempotencyRequest, IdempotentReplay, fingerprint
from transactions.models import IdempotencyKey, Transaction, TransactionType

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]

TRANSFER = "/api/v1/transactions/transfer"


def funded(amount: str):
    user = UserFactory()
    services.credit(actor=user, user=user, amount=Decimal(amount), currency="USD")
    return user


def bearer(user) -> str:
    return f"Bearer {RefreshToken.for_user(user).access_token}"


def post_transfer(token: str, body: dict, key: str):
    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=token)
        response = client.post(TRANSFER, body, format="json", headers={"Idempotency-Key": key})
        return response.status_code, response.json(), response.headers.get("Idempotent-Replayed")

    return send


def test_fifty_simultaneous_requests_with_one_key_move_money_once():
    # given
    sender, recipient = funded("1000.00"), UserFactory()
    token = bearer(sender)
    body = {"to_user_id": recipient.pk, "amount": "10.00"}
    # when
    outcomes = run_concurrently([post_transfer(token, body, "race-1")] * 50)
    # then
    assert [o.error for o in outcomes if o.error] == []
    answers = [o.value for o in outcomes]
    created = [a for a in answers if a[0] == 201]
    waiting = [a for a in answers if a[0] != 201]
    assert all(a[0] == 409 and a[1]["error"]["code"] == "idempotency_in_progress" for a in waiting)
    assert len([a for a in created if a[2] != "true"]) == 1, "exactly one fresh application"
    assert len({a[1]["id"] for a in created}) == 1
    assert all(a[1] == created[0][1] for a in created), "every replay is the first answer"
    assert Transaction.objects.filter(type=TransactionType.TRANSFER).count() == 1
    assert amounts([sender, recipient]) == {
        sender.pk: Decimal("990.00"),
        recipient.pk: Decimal("10.00"),
    }
    assert IdempotencyKey.objects.filter(user=sender, key="race-1").count() == 1
    assert_ledger_holds()


def test_one_key_racing_with_two_bodies_applies_one_of_them():
    # given
    sender, recipient = funded("1000.00"), UserFactory()
    token = bearer(sender)
    one = {"to_user_id": recipient.pk, "amount": "1.00"}
    two = {"to_user_id": recipient.pk, "amount": "2.00"}
    # when
    outcomes = run_concurrently(
        [post_transfer(token, one, "k")] * 10 + [post_transfer(token, two, "k")] * 10
    )
    # then
    assert [o.error for o in outcomes if o.error] == []
    answers = [o.value for o in outcomes]
    txn = Transaction.objects.get(type=TransactionType.TRANSFER)
    winner = "1.00" if txn.amount == Decimal("1.00") else "2.00"
    for status, body, _ in answers:
        if status == 201:
            assert body["id"] == str(txn.pk)
            assert body["amount"] == winner
        else:
            assert status == 409
            assert body["error"]["code"] in {"idempotency_key_reused", "idempotency_in_progress"}
    assert Balance.objects.get(user=recipient).amount == Decimal(winner)
    assert_ledger_holds()


def test_simultaneous_service_calls_with_one_key_apply_once():
    # given
    sender, recipient = funded("100.00"), UserFactory()
    print_ = fingerprint(method="POST", path=TRANSFER, body={"amount": "5.00"})

    def call():
        idempotency = IdempotencyRequest(
            user_id=sender.pk,
            key="svc-1",
            fingerprint=print_,
            render=lambda txn: (201, {"id": str(txn.pk)}),
        )
        try:
            return str(
                services.transfer(
                    actor=sender,
                    sender=sender,
                    recipient=recipient,
                    amount=Decimal("5.00"),
                    currency="USD",
                    idempotency=idempotency,
                ).pk
            ), False
        except IdempotentReplay as replay:
            return replay.transaction_id, True

    # when
    outcomes = run_concurrently([call] * 16)
    # then
    assert [o.error for o in outcomes if o.error] == []
    fresh = [o.value[0] for o in outcomes if not o.value[1]]
    replayed = [o.value[0] for o in outcomes if o.value[1]]
    assert len(fresh) == 1
    assert set(replayed) <= set(fresh)
    assert len(replayed) == 15
    assert amounts([sender, recipient]) == {
        sender.pk: Decimal("95.00"),
        recipient.pk: Decimal("5.00"),
    }
    stored = IdempotencyKey.objects.get(user=sender, key="svc-1")
    assert (stored.state, str(stored.transaction_id)) == ("completed", fresh[0])
    assert_ledger_holds()


def test_distinct_keys_sent_twice_at_once_apply_once_each():
    # given
    sender, recipient = funded("100.00"), UserFactory()
    token = bearer(sender)
    body = {"to_user_id": recipient.pk, "amount": "1.00"}
    jobs = [post_transfer(token, body, f"key-{i}") for i in range(8)] * 2
    # when
    outcomes = run_concurrently(jobs)
    # then
    assert [o.error for o in outcomes if o.error] == []
    created = [o.value for o in outcomes if o.value[0] == 201]
    assert len({a[1]["id"] for a in created}) == 8
    assert Transaction.objects.filter(type=TransactionType.TRANSFER).count() == 8
    assert amounts([recipient]) == {recipient.pk: Decimal("8.00")}
    assert_ledger_holds()


def test_simultaneous_reversals_of_one_transaction_reverse_it_once():
    # given
    sender, recipient = funded("100.00"), UserFactory()
    admins = UserFactory.create_batch(4, role="admin")
    txn = services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal("30.00"), currency="USD"
    )
    tokens = [bearer(a) for a in admins]

    def reverse(token: str):
        def send():
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=token)
            response = client.post(
                f"/api/v1/transactions/{txn.pk}/reverse", {"reason": "race"}, format="json"
            )
            return response.status_code, response.json()

        return send

    # when
    outcomes = run_concurrently([reverse(t) for t in tokens] * 3)
    # then
    assert [o.error for o in outcomes if o.error] == []
    statuses = sorted(o.value[0] for o in outcomes)
    assert statuses == [201] + [409] * 11
    assert all(o.value[1]["error"]["code"] == "conflict" for o in outcomes if o.value[0] == 409)
    assert Transaction.objects.filter(type=TransactionType.REVERSAL).count() == 1
    assert amounts([sender, recipient]) == {sender.pk: Decimal("100.00"), recipient.pk: Decimal(0)}
    assert_ledger_holds()

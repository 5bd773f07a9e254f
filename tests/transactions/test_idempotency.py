"""Idempotency-Key on money-moving POSTs (docs/api.md, Idempotency)."""

from decimal import Decimal

import pytest

from audit.models import AuditLog
from balances.models import Balance
from tests.conftest import client_for
from tests.transactions.services.ledger_state import assert_unchanged, ledger_snapshot
from transactions import services
from transactions.models import IdempotencyKey, Transaction, TransactionType

pytestmark = pytest.mark.django_db

API = "/api/v1/transactions"


def post(client, path: str, body: dict, key: str | None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(f"{API}/{path}", body, format="json", headers=headers)


def post_raw(client, path: str, body: str, key: str):
    return client.post(
        f"{API}/{path}",
        data=body,
        content_type="application/json",
        headers={"Idempotency-Key": key},
    )


def balance_of(user, currency: str = "USD") -> Decimal:
    row = Balance.objects.filter(user=user, currency_id=currency).first()
    return row.amount if row else Decimal(0)


def is_replay(response) -> bool:
    return response.headers.get("Idempotent-Replayed") == "true"


def test_the_same_key_and_body_replay_the_first_response(user):
    # given
    client = client_for(user)
    first = post(client, "credit", {"amount": "10.00", "reference": "r-1"}, "key-1")
    assert first.status_code == 201
    # when
    second = post(client, "credit", {"amount": "10.00", "reference": "r-1"}, "key-1")
    # then
    assert second.status_code == 201
    assert second.json() == first.json()
    assert is_replay(second)
    assert not is_replay(first)
    assert Transaction.objects.filter(to_user=user).count() == 1
    assert balance_of(user) == Decimal("10.00")
    replayed = AuditLog.objects.get(action="idempotency.replayed")
    assert replayed.actor_id == user.pk
    assert replayed.details == {
        "key": "key-1",
        "status": 201,
        "transaction_id": first.json()["id"],
    }


def test_a_replay_returns_the_first_answer_even_after_the_balance_moved(user):
    # given
    client = client_for(user)
    first = post(client, "credit", {"amount": "10.00"}, "key-1")
    post(client, "credit", {"amount": "5.00"}, None)
    # when
    again = post(client, "credit", {"amount": "10.00"}, "key-1")
    # then
    assert again.json()["balance_after"] == first.json()["balance_after"] == "10.00"
    assert balance_of(user) == Decimal("15.00")


def test_key_order_in_the_body_does_not_matter(user):
    # given
    client = client_for(user)
    first = post_raw(client, "credit", '{"amount": "3.00", "currency": "EUR"}', "k")
    # when
    second = post_raw(client, "credit", '{"currency": "EUR", "amount": "3.00"}', "k")
    # then
    assert is_replay(second)
    assert second.json()["id"] == first.json()["id"]
    assert balance_of(user, "EUR") == Decimal("3.00")


def test_a_transfer_is_replayed_with_the_same_transaction(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    client = client_for(sender)
    body = {"to_user_id": other_user.pk, "amount": "20.00"}
    first = post(client, "transfer", body, "pay-once")
    # when
    replies = [post(client, "transfer", body, "pay-once") for _ in range(3)]
    # then
    assert {r.status_code for r in replies} == {201}
    assert {r.json()["id"] for r in replies} == {first.json()["id"]}
    assert all(is_replay(r) for r in replies)
    assert balance_of(sender) == Decimal("30.00")
    assert balance_of(other_user) == Decimal("20.00")


def test_the_trailing_slash_is_the_same_request(user):
    # given
    client = client_for(user)
    first = client.post(
        f"{API}/credit", {"amount": "1.00"}, format="json", headers={"Idempotency-Key": "s"}
    )
    # when
    second = client.post(
        f"{API}/credit/", {"amount": "1.00"}, format="json", headers={"Idempotency-Key": "s"}
    )
    # then
    assert is_replay(second)
    assert second.json()["id"] == first.json()["id"]


def test_the_same_key_with_another_body_is_refused(user):
    # given
    client = client_for(user)
    post(client, "credit", {"amount": "10.00"}, "key-1")
    before = ledger_snapshot()
    # when
    response = post(client, "credit", {"amount": "10.01"}, "key-1")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert not is_replay(response)
    assert_unchanged(before)


def test_the_same_key_on_another_endpoint_is_another_request(funded_user):
    # given
    owner = funded_user("50.00")
    client = client_for(owner)
    post(client, "credit", {"amount": "10.00"}, "shared")
    before = ledger_snapshot()
    # when
    response = post(client, "debit", {"amount": "10.00"}, "shared")
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert_unchanged(before)
    assert balance_of(owner) == Decimal("60.00")


def test_an_insufficient_funds_refusal_is_stored_and_replayed(user):
    # given a refused debit
    client = client_for(user)
    first = post(client, "debit", {"amount": "5.00"}, "withdraw-1")
    assert first.status_code == 422
    assert first.json()["error"]["code"] == "insufficient_funds"
    assert IdempotencyKey.objects.filter(user=user, key="withdraw-1").exists()
    # and money that arrives afterwards
    services.credit(actor=user, user=user, amount=Decimal("100.00"), currency="USD")
    before = ledger_snapshot()
    # when the client retries with the same key
    again = post(client, "debit", {"amount": "5.00"}, "withdraw-1")
    # then it gets the first answer, and no money moves
    assert again.status_code == 422
    assert again.json() == first.json()
    assert is_replay(again)
    assert_unchanged(before)
    assert not Transaction.objects.filter(type=TransactionType.DEBIT).exists()


def test_a_validation_refusal_is_stored_and_replayed(user):
    # given
    client = client_for(user)
    first = post(client, "credit", {"amount": "0"}, "bad-amount")
    assert first.status_code == 400
    before = ledger_snapshot()
    # when
    again = post(client, "credit", {"amount": "0"}, "bad-amount")
    fixed = post(client, "credit", {"amount": "1.00"}, "bad-amount")
    # then
    assert again.status_code == 400
    assert again.json() == first.json()
    assert again.json()["error"]["code"] == "validation_error"
    assert is_replay(again)
    assert fixed.status_code == 409
    assert fixed.json()["error"]["code"] == "idempotency_key_reused"
    assert_unchanged(before)


def test_a_refusal_that_echoes_a_nul_character_is_stored_and_replayed(user):
    # given: the refusal's message quotes the currency, NUL included, which jsonb cannot hold
    client = client_for(user)
    body = {"amount": "1.00", "currency": "\x00X"}
    first = post(client, "credit", body, "nul-currency")
    before = ledger_snapshot()
    # when
    again = post(client, "credit", body, "nul-currency")
    # then
    assert first.status_code == 400
    assert first.json()["error"]["details"]["currency"] == ["'\x00X' is not a supported currency."]
    assert again.status_code == 400
    assert is_replay(again)
    assert again.json()["error"]["details"]["currency"] == [
        "'\ufffdX' is not a supported currency."
    ]
    assert_unchanged(before)


def test_an_unknown_recipient_refusal_is_stored_and_replayed(funded_user):
    # given: a transfer to a user id that does not exist, refused inside the movement
    sender = funded_user("20.00")
    client = client_for(sender)
    body = {"to_user_id": 987654321, "amount": "1.00"}
    first = post(client, "transfer", body, "nobody")
    before = ledger_snapshot()
    # when
    again = post(client, "transfer", body, "nobody")
    # then
    assert first.status_code == 404
    assert first.json()["error"]["code"] == "not_found"
    assert again.json() == first.json()
    assert is_replay(again)
    assert_unchanged(before)
    assert IdempotencyKey.objects.get(user=sender, key="nobody").response_status == 404


def test_a_permission_refusal_is_stored_and_replayed(user, other_user):
    # given
    client = client_for(user)
    body = {"amount": "1.00", "user_id": other_user.pk}
    first = post(client, "credit", body, "not-mine")
    before = ledger_snapshot()
    # when
    again = post(client, "credit", body, "not-mine")
    # then
    assert first.status_code == again.status_code == 403
    assert again.json() == first.json()
    assert is_replay(again)
    assert_unchanged(before)


def test_a_reversal_is_replayed_not_refused_as_a_conflict(funded_user, other_user, admin_user):
    # given
    sender = funded_user("50.00")
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("5.00"), currency="USD"
    )
    client = client_for(admin_user)
    first = post(client, f"{txn.pk}/reverse", {"reason": "fraud"}, "undo-1")
    assert first.status_code == 201
    before = ledger_snapshot()
    # when
    again = post(client, f"{txn.pk}/reverse", {"reason": "fraud"}, "undo-1")
    other_key = post(client, f"{txn.pk}/reverse", {"reason": "fraud"}, "undo-2")
    other_key_again = post(client, f"{txn.pk}/reverse", {"reason": "fraud"}, "undo-2")
    # then
    assert again.status_code == 201
    assert is_replay(again)
    assert again.json()["id"] == first.json()["id"]
    assert other_key.status_code == 409
    assert other_key.json()["error"]["code"] == "conflict"
    assert other_key_again.status_code == 409
    assert is_replay(other_key_again)
    assert_unchanged(before, ignore=("idempotency_keys",))
    assert Transaction.objects.filter(type=TransactionType.REVERSAL).count() == 1


@pytest.mark.parametrize("key", ["", "k" * 256, "cl\u00e9", "\u5bc6\u94a5", "tab\there"])
def test_a_bad_key_header_is_refused(user, key):
    # given
    before = ledger_snapshot()
    # when
    response = post(client_for(user), "credit", {"amount": "1.00"}, key)
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "Idempotency-Key" in error["details"]
    assert_unchanged(before)


@pytest.mark.parametrize("key", ["k", "k" * 255, "a-Z_0.9:~!@#$%^&*()[]{}"])
def test_keys_of_one_to_255_printable_characters_are_accepted(user, key):
    response = post(client_for(user), "credit", {"amount": "1.00"}, key)
    assert response.status_code == 201
    assert IdempotencyKey.objects.filter(user=user, key=key).exists()


def test_keys_are_scoped_per_user(user, other_user):
    # when two users happen to choose the same key
    mine = post(client_for(user), "credit", {"amount": "1.00"}, "shared-name")
    theirs = post(client_for(other_user), "credit", {"amount": "1.00"}, "shared-name")
    # then both are applied
    assert mine.status_code == theirs.status_code == 201
    assert not is_replay(theirs)
    assert mine.json()["id"] != theirs.json()["id"]
    assert balance_of(user) == balance_of(other_user) == Decimal("1.00")


def test_without_a_key_a_retry_moves_money_again(user):
    client = client_for(user)
    post(client, "credit", {"amount": "1.00"}, None)
    post(client, "credit", {"amount": "1.00"}, None)
    assert balance_of(user) == Decimal("2.00")
    assert not IdempotencyKey.objects.exists()


def test_a_used_key_with_a_body_refused_before_the_movement_is_still_reused(user):
    # given: a completed credit under the key
    client = client_for(user)
    post(client, "credit", {"amount": "10.00"}, "key-1")
    before = ledger_snapshot()
    # when: the same key with a body that fails validation (it never reaches the movement)
    response = post(client, "credit", {"amount": "-1"}, "key-1")
    # then: the key answers, not the validation
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert_unchanged(before)


def test_a_completed_transfer_replays_even_when_a_retry_would_now_be_refused_early(
    funded_user, other_user, admin_user
):
    # given: an admin paid from a customer's account under the key, then lost the role
    customer = funded_user("50.00")
    client = client_for(admin_user)
    body = {"from_user_id": customer.pk, "to_user_id": other_user.pk, "amount": "20.00"}
    first = post(client, "transfer", body, "pay-once")
    assert first.status_code == 201
    type(admin_user).objects.filter(pk=admin_user.pk).update(role="user")
    before = ledger_snapshot()
    # when: the identical retry is now refused (403) before it reaches the movement
    retry = post(client, "transfer", body, "pay-once")
    # then: the stored answer, not the refusal, and no second movement
    assert retry.status_code == 201
    assert is_replay(retry)
    assert retry.json()["id"] == first.json()["id"]
    assert balance_of(customer) == Decimal("30.00")
    assert_unchanged(before)


def test_the_stored_response_is_the_body_sent_compact_json_with_its_headers(
    funded_user, other_user
):
    # given
    sender = funded_user("50.00")
    client = client_for(sender)
    # when
    response = post(client, "transfer", {"to_user_id": other_user.pk, "amount": "7.25"}, "k-sent")
    # then: compact JSON, as the renderer writes it; the stored body is that document
    import json

    assert response.status_code == 201
    assert response["Content-Type"] == "application/json"
    assert response.content.startswith(b'{"id":"')
    assert "POST" in response["Allow"]
    stored = IdempotencyKey.objects.get(user=sender, key="k-sent")
    assert stored.response_status == 201
    assert stored.response_body == json.loads(response.content)
    assert stored.response_body["amount"] == "7.25"
    assert stored.response_body["balance_after"] == "42.75"

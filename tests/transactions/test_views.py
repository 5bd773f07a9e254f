"""The transaction endpoints, exactly as docs/api.md describes them."""

import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.conftest import READ_TRANSACTION_QUERIES, client_for
from tests.transactions.services.ledger_state import (
    assert_unchanged,
    backdate,
    ledger_snapshot,
)
from transactions import selectors, services
from transactions.models import Transaction, TransactionStatus, TransactionType
from wallet_project.pagination import CursorPagination

pytestmark = pytest.mark.django_db

API = "/api/v1/transactions"
TRANSACTION_KEYS = {
    "id",
    "type",
    "status",
    "from_user_id",
    "to_user_id",
    "amount",
    "currency",
    "description",
    "reference",
    "created_at",
    "completed_at",
    "reversal_of",
    "reversed_by",
    "failure_code",
    "balance_after",
}


def balance_of(user, currency: str = "USD") -> Decimal:
    row = Balance.objects.filter(user=user, currency_id=currency).first()
    return row.amount if row else Decimal(0)


def assert_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "details", "request_id"}
    return error


# credit -----------------------------------------------------------------------------------


def test_a_user_credits_their_own_account(user):
    # when
    response = client_for(user).post(
        f"{API}/credit",
        {"amount": "25.00", "description": "salary", "reference": "pay-1"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == TRANSACTION_KEYS
    assert body["type"] == "credit"
    assert body["status"] == "completed"
    assert body["from_user_id"] is None
    assert body["to_user_id"] == user.pk
    assert body["amount"] == "25.00"
    assert body["currency"] == "USD"
    assert (body["description"], body["reference"]) == ("salary", "pay-1")
    assert body["reversal_of"] is None
    assert body["reversed_by"] is None
    assert body["failure_code"] is None
    assert body["balance_after"] == "25.00"
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")
    assert Transaction.objects.get(pk=body["id"]).initiated_by_id == user.pk
    assert balance_of(user) == Decimal("25.00")


def test_a_credit_without_reference_has_a_null_reference(user):
    response = client_for(user).post(f"{API}/credit", {"amount": "1.00"}, format="json")
    assert response.status_code == 201
    assert response.json()["reference"] is None
    assert response.json()["description"] == ""


def test_an_admin_credits_any_user(user, admin_client):
    # when
    response = admin_client.post(
        f"{API}/credit", {"amount": "10.00", "user_id": user.pk}, format="json"
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["to_user_id"] == user.pk
    assert response.json()["balance_after"] == "10.00"
    assert balance_of(user) == Decimal("10.00")


@pytest.mark.parametrize("action", ["credit", "debit"])
def test_a_user_naming_another_user_is_refused(funded_user, other_user, action):
    # given
    owner = funded_user("10.00")
    before = ledger_snapshot()
    # when
    response = client_for(owner).post(
        f"{API}/{action}", {"amount": "1.00", "user_id": other_user.pk}, format="json"
    )
    # then
    assert_refused(response, 403, "permission_denied")
    assert_unchanged(before)


def test_a_user_may_name_their_own_user_id(user):
    response = client_for(user).post(
        f"{API}/credit", {"amount": "1.00", "user_id": user.pk}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["to_user_id"] == user.pk


@pytest.mark.parametrize("action", ["credit", "debit"])
def test_an_admin_naming_an_unknown_user_gets_not_found(admin_client, action):
    # given
    before = ledger_snapshot()
    # when
    response = admin_client.post(
        f"{API}/{action}", {"amount": "1.00", "user_id": 987654321}, format="json"
    )
    # then
    assert_refused(response, 404, "not_found")
    assert_unchanged(before)


def test_crediting_an_inactive_account_is_refused(admin_client):
    # given
    frozen = UserFactory(is_active=False)
    before = ledger_snapshot()
    # when
    response = admin_client.post(
        f"{API}/credit", {"amount": "1.00", "user_id": frozen.pk}, format="json"
    )
    # then
    assert_refused(response, 422, "account_inactive")
    assert_unchanged(before)


@pytest.mark.parametrize(
    ("field", "value"),
    [("description", "x" * 501), ("reference", "r" * 256), ("reference", ""), ("user_id", "me")],
)
def test_credit_refuses_bad_fields(user, field, value):
    # given
    before = ledger_snapshot()
    # when
    response = client_for(user).post(
        f"{API}/credit", {"amount": "1.00", field: value}, format="json"
    )
    # then
    error = assert_refused(response, 400, "validation_error")
    assert field in error["details"]
    assert_unchanged(before)


def test_credit_accepts_the_longest_description_and_reference(user):
    response = client_for(user).post(
        f"{API}/credit",
        {"amount": "1.00", "description": "d" * 500, "reference": "r" * 255},
        format="json",
    )
    assert response.status_code == 201


def test_money_endpoints_require_authentication(api_client):
    # given
    before = ledger_snapshot()
    # when
    response = api_client.post(f"{API}/credit", {"amount": "1.00"}, format="json")
    # then
    assert_refused(response, 401, "not_authenticated")
    assert_unchanged(before)


# debit ------------------------------------------------------------------------------------


def test_a_user_debits_their_own_account(funded_user):
    # given
    owner = funded_user("100.00")
    # when
    response = client_for(owner).post(f"{API}/debit", {"amount": "40.10"}, format="json")
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["type"], body["from_user_id"], body["to_user_id"]) == ("debit", owner.pk, None)
    assert body["balance_after"] == "59.90"
    assert balance_of(owner) == Decimal("59.90")


def test_an_admin_debits_any_user(funded_user, admin_client):
    # given
    owner = funded_user("100.00")
    # when
    response = admin_client.post(
        f"{API}/debit", {"amount": "1.00", "user_id": owner.pk}, format="json"
    )
    # then
    assert response.status_code == 201
    assert response.json()["from_user_id"] == owner.pk
    assert response.json()["balance_after"] == "99.00"


def test_a_debit_beyond_the_balance_is_refused(funded_user):
    # given
    owner = funded_user("10.00")
    before = ledger_snapshot()
    # when
    response = client_for(owner).post(f"{API}/debit", {"amount": "10.01"}, format="json")
    # then
    error = assert_refused(response, 422, "insufficient_funds")
    assert error["details"]["currency"] == "USD"
    assert_unchanged(before)


# transfer ---------------------------------------------------------------------------------


def test_a_user_transfers_from_their_own_account(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    # when
    response = client_for(sender).post(
        f"{API}/transfer",
        {"to_user_id": other_user.pk, "amount": "20.00", "description": "rent"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == TRANSACTION_KEYS
    assert (body["type"], body["from_user_id"], body["to_user_id"]) == (
        "transfer",
        sender.pk,
        other_user.pk,
    )
    assert body["balance_after"] == "30.00"
    assert balance_of(sender) == Decimal("30.00")
    assert balance_of(other_user) == Decimal("20.00")


def test_a_transfer_never_reveals_the_recipients_balance(funded_user):
    # given a recipient who already holds 7.77
    sender = funded_user("50.00")
    recipient = funded_user("7.77")
    # when
    response = client_for(sender).post(
        f"{API}/transfer", {"to_user_id": recipient.pk, "amount": "20.00"}, format="json"
    )
    # then the sender sees their own balance and nothing of the recipient's 27.77
    assert response.json()["balance_after"] == "30.00"
    assert "27.77" not in json.dumps(response.json())
    assert balance_of(recipient) == Decimal("27.77")


def test_an_admin_transfers_between_any_two_users(funded_user, other_user, admin_client):
    # given
    sender = funded_user("50.00")
    # when
    response = admin_client.post(
        f"{API}/transfer",
        {"from_user_id": sender.pk, "to_user_id": other_user.pk, "amount": "5.00"},
        format="json",
    )
    # then
    assert response.status_code == 201, response.json()
    assert response.json()["from_user_id"] == sender.pk
    assert response.json()["balance_after"] == "45.00"
    assert balance_of(other_user) == Decimal("5.00")


def test_a_user_naming_another_sender_is_refused(funded_user, other_user):
    # given
    victim = funded_user("50.00")
    thief = funded_user("1.00")
    before = ledger_snapshot()
    # when
    response = client_for(thief).post(
        f"{API}/transfer",
        {"from_user_id": victim.pk, "to_user_id": thief.pk, "amount": "50.00"},
        format="json",
    )
    # then
    assert_refused(response, 403, "permission_denied")
    assert_unchanged(before)


def test_a_transfer_to_an_unknown_recipient_is_not_found(funded_user):
    # given
    sender = funded_user("50.00")
    before = ledger_snapshot()
    # when
    response = client_for(sender).post(
        f"{API}/transfer", {"to_user_id": 987654321, "amount": "1.00"}, format="json"
    )
    # then
    assert_refused(response, 404, "not_found")
    assert_unchanged(before)


def test_a_transfer_to_oneself_is_refused(funded_user):
    # given
    sender = funded_user("50.00")
    before = ledger_snapshot()
    # when
    response = client_for(sender).post(
        f"{API}/transfer", {"to_user_id": sender.pk, "amount": "1.00"}, format="json"
    )
    # then
    assert_refused(response, 422, "same_account")
    assert_unchanged(before)


def test_a_transfer_beyond_the_balance_is_refused(funded_user, other_user):
    # given
    sender = funded_user("5.00")
    before = ledger_snapshot()
    # when
    response = client_for(sender).post(
        f"{API}/transfer", {"to_user_id": other_user.pk, "amount": "5.01"}, format="json"
    )
    # then
    assert_refused(response, 422, "insufficient_funds")
    assert_unchanged(before)


def test_a_transfer_to_an_inactive_recipient_is_refused(funded_user):
    # given
    sender = funded_user("5.00")
    frozen = UserFactory(is_active=False)
    before = ledger_snapshot()
    # when
    response = client_for(sender).post(
        f"{API}/transfer", {"to_user_id": frozen.pk, "amount": "1.00"}, format="json"
    )
    # then
    assert_refused(response, 422, "account_inactive")
    assert_unchanged(before)


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "1.00"},
        {"to_user_id": "somebody", "amount": "1.00"},
        {"to_user_id": 0, "amount": "1.00"},
        {"to_user_id": None, "amount": "1.00"},
    ],
)
def test_a_transfer_needs_a_valid_recipient_id(funded_user, body):
    # given
    sender = funded_user("5.00")
    before = ledger_snapshot()
    # when
    response = client_for(sender).post(f"{API}/transfer", body, format="json")
    # then
    error = assert_refused(response, 400, "validation_error")
    assert "to_user_id" in error["details"]
    assert_unchanged(before)


# read one ---------------------------------------------------------------------------------


@pytest.fixture
def paid(funded_user, other_user):
    """A completed transfer of 20.00 from a sender holding 50.00 to `other_user`."""
    sender = funded_user("50.00")
    return services.transfer(
        actor=sender,
        sender=sender,
        recipient=other_user,
        amount=Decimal("20.00"),
        currency="USD",
        reference="inv-7",
    )


@pytest.mark.parametrize("reader", ["sender", "recipient", "admin", "auditor"])
def test_parties_admins_and_auditors_read_a_transaction(paid, reader, admin_user, auditor):
    # given
    who = {
        "sender": paid.from_user,
        "recipient": paid.to_user,
        "admin": admin_user,
        "auditor": auditor,
    }[reader]
    # when
    response = client_for(who).get(f"{API}/{paid.pk}")
    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == TRANSACTION_KEYS
    assert body["id"] == str(paid.pk)
    assert body["amount"] == "20.00"
    assert body["reference"] == "inv-7"
    assert body["balance_after"] is None


@pytest.mark.parametrize("ident", ["stranger", "unknown", "malformed", "integer"])
def test_others_and_bad_ids_get_not_found(paid, ident):
    # given
    stranger = UserFactory()
    path = {
        "stranger": f"{API}/{paid.pk}",
        "unknown": f"{API}/{uuid.uuid4()}",
        "malformed": f"{API}/not-a-uuid",
        "integer": f"{API}/42",
    }[ident]
    reader = stranger if ident == "stranger" else paid.from_user
    # when
    response = client_for(reader).get(path)
    # then
    assert_refused(response, 404, "not_found")


# reverse ----------------------------------------------------------------------------------


def test_an_admin_reverses_a_transfer(paid, admin_client):
    # when
    response = admin_client.post(f"{API}/{paid.pk}/reverse", {"reason": "fraud"}, format="json")
    # then
    assert response.status_code == 201, response.json()
    reversal = response.json()
    assert set(reversal) == TRANSACTION_KEYS
    assert reversal["type"] == "reversal"
    assert reversal["status"] == "completed"
    assert reversal["reversal_of"] == str(paid.pk)
    assert (reversal["from_user_id"], reversal["to_user_id"]) == (
        paid.to_user_id,
        paid.from_user_id,
    )
    assert reversal["amount"] == "20.00"
    assert reversal["balance_after"] == "0.00"
    assert balance_of(paid.from_user) == Decimal("50.00")
    assert balance_of(paid.to_user) == Decimal("0.00")
    original = admin_client.get(f"{API}/{paid.pk}").json()
    assert original["status"] == "reversed"
    assert original["reversed_by"] == reversal["id"]
    seen_by_sender = client_for(paid.from_user).get(f"{API}/{paid.pk}").json()
    assert seen_by_sender["reversed_by"] == reversal["id"]
    assert client_for(paid.from_user).get(f"{API}/{reversal['id']}").status_code == 200


def test_reversing_twice_is_a_conflict(paid, admin_client):
    # given
    first = admin_client.post(f"{API}/{paid.pk}/reverse", {"reason": "one"}, format="json")
    assert first.status_code == 201
    before = ledger_snapshot()
    # when
    response = admin_client.post(f"{API}/{paid.pk}/reverse", {"reason": "two"}, format="json")
    # then
    assert_refused(response, 409, "conflict")
    assert_unchanged(before)


@pytest.mark.parametrize("role", ["party", "auditor"])
def test_only_an_admin_may_reverse(paid, auditor, role):
    # given
    caller = paid.from_user if role == "party" else auditor
    before = ledger_snapshot()
    # when
    response = client_for(caller).post(f"{API}/{paid.pk}/reverse", {"reason": "x"}, format="json")
    # then
    assert_refused(response, 403, "permission_denied")
    assert_unchanged(before)


def test_a_reversal_is_refused_when_the_recipient_spent_the_money(paid, admin_client):
    # given
    services.debit(actor=paid.to_user, user=paid.to_user, amount=Decimal("15.00"), currency="USD")
    before = ledger_snapshot()
    # when
    response = admin_client.post(f"{API}/{paid.pk}/reverse", {"reason": "late"}, format="json")
    # then
    assert_refused(response, 422, "insufficient_funds")
    assert_unchanged(before)


def test_a_reversal_cannot_itself_be_reversed(paid, admin_client):
    # given
    reversal = admin_client.post(f"{API}/{paid.pk}/reverse", {"reason": "one"}, format="json")
    before = ledger_snapshot()
    # when
    response = admin_client.post(
        f"{API}/{reversal.json()['id']}/reverse", {"reason": "undo"}, format="json"
    )
    # then
    assert_refused(response, 422, "invalid_state")
    assert_unchanged(before)


def test_a_failed_transaction_cannot_be_reversed(funded_user, other_user, admin_client):
    # given an asynchronous transfer the worker failed for lack of funds
    sender = funded_user("1.00")
    txn = services.create_pending(
        actor=sender,
        kind=TransactionType.TRANSFER,
        from_user=sender,
        to_user=other_user,
        amount=Decimal("2.00"),
        currency="USD",
    )
    services.process_pending_transaction(transaction_id=txn.pk)
    shown = admin_client.get(f"{API}/{txn.pk}").json()
    assert (shown["status"], shown["failure_code"]) == ("failed", "insufficient_funds")
    before = ledger_snapshot()
    # when
    response = admin_client.post(f"{API}/{txn.pk}/reverse", {"reason": "x"}, format="json")
    # then
    assert_refused(response, 422, "invalid_state")
    assert_unchanged(before)


def test_a_reversal_needs_a_reason(paid, admin_client):
    # given
    before = ledger_snapshot()
    # when
    response = admin_client.post(f"{API}/{paid.pk}/reverse", {}, format="json")
    # then
    error = assert_refused(response, 400, "validation_error")
    assert "reason" in error["details"]
    assert_unchanged(before)


def test_reversing_an_unknown_transaction_is_not_found(admin_client):
    # given
    before = ledger_snapshot()
    # when
    response = admin_client.post(f"{API}/{uuid.uuid4()}/reverse", {"reason": "x"}, format="json")
    # then
    assert_refused(response, 404, "not_found")
    assert_unchanged(before)


def test_reversing_a_malformed_id_is_not_found(admin_client):
    response = admin_client.post(f"{API}/not-a-uuid/reverse", {"reason": "x"}, format="json")
    assert_refused(response, 404, "not_found")


# history ----------------------------------------------------------------------------------


@pytest.fixture
def story(funded_user, other_user, admin_user):
    """One user's mixed history, oldest first: credit, EUR credit, debit, transfer out,
    transfer in, a reversed credit and its reversal. Another user's credit is not theirs."""
    me = funded_user("100.00")
    txns = [Transaction.objects.get(to_user=me)]
    txns.append(services.credit(actor=me, user=me, amount=Decimal("50.00"), currency="EUR"))
    txns.append(services.debit(actor=me, user=me, amount=Decimal("10.00"), currency="USD"))
    txns.append(
        services.transfer(
            actor=me, sender=me, recipient=other_user, amount=Decimal("20.00"), currency="USD"
        )
    )
    services.credit(actor=other_user, user=other_user, amount=Decimal("5.00"), currency="USD")
    txns.append(
        services.transfer(
            actor=other_user,
            sender=other_user,
            recipient=me,
            amount=Decimal("3.00"),
            currency="USD",
        )
    )
    txns.append(services.credit(actor=me, user=me, amount=Decimal("200.00"), currency="USD"))
    txns.append(services.reverse(actor=admin_user, transaction_id=txns[-1].pk, reason="bounced"))
    for txn in txns:
        txn.refresh_from_db()
    return me, txns


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_history_lists_sent_and_received_newest_first(story):
    # given
    me, txns = story
    # when
    response = client_for(me).get(f"{API}/history")
    # then
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert ids(response) == [str(t.pk) for t in reversed(txns)]
    assert (body["next"], body["previous"]) == (None, None)
    assert all(set(row) == TRANSACTION_KEYS for row in body["results"])
    assert all(row["balance_after"] is None for row in body["results"])
    reversed_credit = next(r for r in body["results"] if r["id"] == str(txns[5].pk))
    assert reversed_credit["status"] == "reversed"
    assert reversed_credit["reversed_by"] == str(txns[6].pk)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"type": "credit"}, [5, 1, 0]),
        ({"type": "transfer"}, [4, 3]),
        ({"type": "reversal"}, [6]),
        ({"status": "reversed"}, [5]),
        ({"status": "completed"}, [6, 4, 3, 2, 1, 0]),
        ({"status": "failed"}, []),
        ({"currency": "EUR"}, [1]),
        ({"currency": "USD", "type": "credit"}, [5, 0]),
        ({"min_amount": "20.00"}, [6, 5, 3, 1, 0]),
        ({"max_amount": "20"}, [4, 3, 2]),
        ({"min_amount": "10.00", "max_amount": "50.00"}, [3, 2, 1]),
    ],
)
def test_history_filters(story, query, expected):
    # given
    me, txns = story
    # when
    response = client_for(me).get(f"{API}/history", query)
    # then
    assert ids(response) == [str(txns[i].pk) for i in expected]


def test_history_time_range_includes_from_and_excludes_to(story):
    # given
    me, txns = story
    # when
    response = client_for(me).get(
        f"{API}/history",
        {"from": txns[2].created_at.isoformat(), "to": txns[5].created_at.isoformat()},
    )
    # then
    assert ids(response) == [str(txns[i].pk) for i in (4, 3, 2)]


@pytest.mark.parametrize(
    "query",
    [
        {"type": "gift"},
        {"status": "lost"},
        {"currency": "XXX"},
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"min_amount": "lots"},
        {"max_amount": "1e3x"},
        {"user_id": "me"},
    ],
)
def test_history_refuses_a_bad_filter(story, query):
    # given
    me, _ = story
    # when
    response = client_for(me).get(f"{API}/history", query)
    # then
    error = assert_refused(response, 400, "validation_error")
    assert set(query) <= set(error["details"])


def test_history_pages_with_cursors(story):
    # given
    me, txns = story
    client = client_for(me)
    # when
    seen, pages = [], []
    url = f"{API}/history?page_size=3"
    while url:
        page = client.get(url).json()
        pages.append(page)
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    # then
    assert seen == [str(t.pk) for t in reversed(txns)]
    assert [len(p["results"]) for p in pages] == [3, 3, 1]
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None
    back = client.get(pages[1]["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in pages[0]["results"]]


def _page(source, url: str) -> tuple[list, str | None, str | None]:
    """The page of `source` that `url` asks for, and its next and previous links."""
    paginator = CursorPagination()
    rows = paginator.paginate_queryset(source, Request(APIRequestFactory().get(url)))
    return [row.pk for row in rows], paginator.get_next_link(), paginator.get_previous_link()


def test_history_pages_as_the_single_query_paged(story):
    # given every transaction at one instant, so that cursors need their offsets
    me, txns = story
    for txn in Transaction.objects.all():
        backdate(txn, to=txns[0].created_at)
    merged = selectors.list_transaction_history(user_id=me.pk)
    single = Transaction.objects.filter(Q(from_user_id=me.pk) | Q(to_user_id=me.pk))
    forward, url = [], f"{API}/history?page_size=2"
    while url:
        # when a page is read, and the one before it
        page, following, previous = _page(single, url)
        # then the merged read answers the same rows and the same links
        assert _page(merged, url) == (page, following, previous)
        if previous:
            assert _page(merged, previous) == _page(single, previous)
        forward += page
        url = following
    assert sorted(forward) == sorted(t.pk for t in txns)
    assert forward == list(single.order_by("-created_at", "-id").values_list("pk", flat=True))


def test_history_reads_each_side_from_the_cursor_on(story):
    # given the second page's cursor
    me, _ = story
    client = client_for(me)
    second = client.get(f"{API}/history", {"page_size": 2}).json()["next"]
    # when
    with CaptureQueriesContext(connection) as queries:
        client.get(second)
    # then the page is one statement: what the user sent and what they received, each
    # from the cursor's instant on and limited to the page, merged in order
    page = next(q["sql"] for q in queries.captured_queries if "UNION ALL" in q["sql"])
    sent, received = page.split("UNION ALL")
    assert '"transactions"."from_user_id" = ' in sent
    assert '"transactions"."to_user_id" = ' in received
    for side in (sent, received):
        assert '"transactions"."created_at" < ' in side
        assert "LIMIT 3" in side


def test_history_page_size_defaults_to_50_and_stops_at_200(user):
    # given
    for _ in range(205):
        services.credit(actor=user, user=user, amount=Decimal("1.00"), currency="USD")
    client = client_for(user)
    # when
    default = client.get(f"{API}/history").json()
    largest = client.get(f"{API}/history", {"page_size": 500}).json()
    # then
    assert len(default["results"]) == 50
    assert len(largest["results"]) == 200
    assert largest["next"] is not None
    rest = client.get(largest["next"]).json()
    assert len(rest["results"]) == 5


@pytest.mark.parametrize("reader", ["admin", "auditor"])
def test_admins_and_auditors_read_anyones_history(story, reader, admin_user, auditor):
    # given
    me, txns = story
    who = admin_user if reader == "admin" else auditor
    # when
    response = client_for(who).get(f"{API}/history", {"user_id": me.pk})
    # then
    assert ids(response) == [str(t.pk) for t in reversed(txns)]


def test_a_user_cannot_read_another_users_history(story, other_user):
    # given
    me, _ = story
    # when
    response = client_for(other_user).get(f"{API}/history", {"user_id": me.pk})
    # then
    assert_refused(response, 403, "permission_denied")


def test_a_user_may_name_themselves_in_history(story):
    me, txns = story
    response = client_for(me).get(f"{API}/history", {"user_id": me.pk})
    assert len(ids(response)) == len(txns)


def test_history_makes_a_fixed_number_of_queries(
    user, other_user, admin_user, django_assert_num_queries
):
    # given a history with reversals in it, read once with few rows and once with many
    client = client_for(user)

    def grow(count: int) -> None:
        for _ in range(count):
            services.credit(actor=user, user=user, amount=Decimal("1.00"), currency="USD")
            txn = services.credit(actor=user, user=user, amount=Decimal("2.00"), currency="USD")
            services.reverse(actor=admin_user, transaction_id=txn.pk, reason="r")
            services.transfer(
                actor=user,
                sender=user,
                recipient=other_user,
                amount=Decimal("1.00"),
                currency="USD",
            )

    grow(1)
    client.get(f"{API}/history")  # warm the currency cache
    # when / then: the read's transaction, authentication, then one page query, however
    # many rows
    with django_assert_num_queries(READ_TRANSACTION_QUERIES + 2):
        small = client.get(f"{API}/history")
    grow(15)
    with django_assert_num_queries(READ_TRANSACTION_QUERIES + 2):
        large = client.get(f"{API}/history")
    assert len(small.json()["results"]) == 4
    assert len(large.json()["results"]) == 50
    assert any(row["reversed_by"] for row in large.json()["results"])


# paths ------------------------------------------------------------------------------------


def test_trailing_slash_and_no_slash_answer_the_same(paid, admin_client):
    # given
    sender = client_for(paid.from_user)
    # when / then
    for path in (f"{API}/history", f"{API}/{paid.pk}"):
        plain, slashed = sender.get(path), sender.get(f"{path}/")
        assert plain.status_code == slashed.status_code == 200
        assert plain.json() == slashed.json()
    for path in (f"{API}/credit", f"{API}/credit/"):
        response = sender.post(path, {"amount": "1.00"}, format="json")
        assert response.status_code == 201, path
    for path in (f"{API}/transfer", f"{API}/transfer/"):
        response = sender.post(
            path, {"to_user_id": paid.to_user_id, "amount": "1.00"}, format="json"
        )
        assert response.status_code == 201, path
    for path in (f"{API}/debit", f"{API}/debit/"):
        response = sender.post(path, {"amount": "1.00"}, format="json")
        assert response.status_code == 201, path
    response = admin_client.post(f"{API}/{paid.pk}/reverse/", {"reason": "slash"}, format="json")
    assert response.status_code == 201
    assert Transaction.objects.get(pk=paid.pk).status == TransactionStatus.REVERSED
    assert (
        Transaction.objects.filter(type=TransactionType.CREDIT, to_user=paid.from_user).count() == 3
    )

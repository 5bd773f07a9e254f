"""Properties of balance history: any instant's balance is the replay of the operations up to
it, and the balance history and the transaction history tell the same story."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.accounts.factories import UserFactory
from tests.conftest import client_for
from transactions import services
from wallet_project.errors import InsufficientFundsError

pytestmark = pytest.mark.django_db

USERS = 3
ONE_MICROSECOND = timedelta(microseconds=1)

operations = st.lists(
    st.tuples(
        st.sampled_from(["credit", "debit", "transfer"]),
        st.integers(0, USERS - 1),  # the account acted on (the sender of a transfer)
        st.integers(1, USERS - 1),  # a transfer's recipient, as an offset from the sender
        st.integers(1, 5000),  # the amount in cents
    ),
    min_size=1,
    max_size=10,
)


@dataclass
class Applied:
    at: datetime
    txn_id: str
    after: dict[int, Decimal]  # the balance of each party after the operation


def apply(users, ops) -> tuple[list[Applied], dict[int, Decimal]]:
    """Run `ops` through the services, predicting each refusal from the model balances."""
    model = {u.pk: Decimal(0) for u in users}
    applied = []
    for kind, index, offset, cents in ops:
        actor, amount = users[index], Decimal(cents) / 100
        recipient = users[(index + offset) % USERS]
        affordable = model[actor.pk] >= amount
        try:
            if kind == "credit":
                txn = services.credit(actor=actor, user=actor, amount=amount, currency="USD")
            elif kind == "debit":
                txn = services.debit(actor=actor, user=actor, amount=amount, currency="USD")
            else:
                txn = services.transfer(
                    actor=actor, sender=actor, recipient=recipient, amount=amount, currency="USD"
                )
        except InsufficientFundsError:
            assert kind != "credit"
            assert not affordable, f"{kind} of {amount} refused with {model[actor.pk]} held"
            continue
        assert kind == "credit" or affordable, f"{kind} of {amount} passed with {model[actor.pk]}"
        if kind == "credit":
            model[actor.pk] += amount
        else:
            model[actor.pk] -= amount
        if kind == "transfer":
            model[recipient.pk] += amount
        parties = {actor.pk} | ({recipient.pk} if kind == "transfer" else set())
        applied.append(Applied(txn.created_at, str(txn.pk), {p: model[p] for p in parties}))
    return applied, model


def replayed_balance(applied: list[Applied], user_id: int, instant: datetime) -> Decimal:
    balance = Decimal(0)
    for step in applied:
        if step.at <= instant and user_id in step.after:
            balance = step.after[user_id]
    return balance


def instants(applied: list[Applied]) -> list[datetime]:
    """Each operation's instant, just before and just after it, and between two operations."""
    found = set()
    for i, step in enumerate(applied):
        found |= {step.at - ONE_MICROSECOND, step.at, step.at + ONE_MICROSECOND}
        if i:
            found.add(applied[i - 1].at + (step.at - applied[i - 1].at) / 2)
    return sorted(found)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_balance_at_any_instant_is_the_replay_up_to_it(db, ops):
    # given three fresh users and a random sequence of operations
    users = UserFactory.create_batch(USERS)
    applied, final = apply(users, ops)
    # when / then every sampled instant answers the replayed balance, for every user
    for user in users:
        client = client_for(user)
        for instant in instants(applied):
            response = client.get("/api/v1/balances/at-time", {"timestamp": instant.isoformat()})
            assert response.status_code == 200, response.json()
            expected = replayed_balance(applied, user.pk, instant)
            assert response.json()["amount"] == f"{expected:.2f}", (user.pk, instant)
        current = client.get("/api/v1/balances/current").json()["balances"]
        held = Decimal(current[0]["amount"]) if current else Decimal(0)
        assert held == final[user.pk]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_balance_history_and_transaction_history_agree(db, ops):
    # given
    users = UserFactory.create_batch(USERS)
    applied, _ = apply(users, ops)
    for user in users:
        client = client_for(user)
        # when
        points = client.get("/api/v1/balances/historical", {"page_size": 200}).json()["results"]
        history = client.get("/api/v1/transactions/history", {"page_size": 200}).json()["results"]
        # then the same transactions, the same order (one oldest first, one newest first)
        assert [p["transaction_id"] for p in points] == [t["id"] for t in reversed(history)]
        mine = [step for step in applied if user.pk in step.after]
        assert [p["transaction_id"] for p in points] == [step.txn_id for step in mine]
        assert [p["amount"] for p in points] == [f"{step.after[user.pk]:.2f}" for step in mine]

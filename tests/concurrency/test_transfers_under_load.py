"""Many threads moving money at once: conservation, no overdraft, no deadlock."""

import random
import time
from decimal import Decimal

import pytest

from balances.models import Balance, BalanceEntry
from tests.accounts.factories import UserFactory
from tests.concurrency.harness import amounts, run_concurrently, total_held
from tests.ledger import assert_ledger_holds
from transactions import services
from transactions.models import Transaction, TransactionType
from wallet_project.errors import InsufficientFundsError

pytestmark = [pytest.mark.concurrency, pytest.mark.django_db(transaction=True)]


def fund(users, amount: str, currency: str = "USD") -> None:
    for user in users:
        services.credit(actor=user, user=user, amount=Decimal(amount), currency=currency)


def test_random_transfers_among_twenty_users_conserve_money():
    # given twenty users holding 100.00 each, and sixteen threads of random transfers
    users = UserFactory.create_batch(20)
    fund(users, "100.00")
    initial = total_held()
    threads, per_thread = 16, 130

    def job(seed: int):
        rng = random.Random(seed)
        done = refused = 0
        for _ in range(per_thread):
            sender, recipient = rng.sample(users, 2)
            amount = Decimal(rng.randint(1, 6000)) / 100
            try:
                services.transfer(
                    actor=sender, sender=sender, recipient=recipient, amount=amount, currency="USD"
                )
                done += 1
            except InsufficientFundsError:
                refused += 1
        return done, refused

    # when
    started = time.monotonic()
    outcomes = run_concurrently([lambda seed=seed: job(seed) for seed in range(threads)])
    elapsed = time.monotonic() - started
    # then no error but a refusal for lack of funds surfaced (no deadlock, no 500)
    assert [o.error for o in outcomes if o.error] == []
    done = sum(o.value[0] for o in outcomes)
    refused = sum(o.value[1] for o in outcomes)
    assert done + refused == threads * per_thread >= 2000
    assert done > refused  # most transfers are affordable: the locks were really contended
    assert total_held() == initial
    assert not Balance.objects.filter(amount__lt=0).exists()
    assert Transaction.objects.filter(type=TransactionType.TRANSFER).count() == done
    assert (
        BalanceEntry.objects.filter(transaction__type=TransactionType.TRANSFER).count() == 2 * done
    )
    assert_ledger_holds()
    assert elapsed < 60


def test_opposite_transfers_at_the_same_time_do_not_deadlock():
    # given
    alice, bob = UserFactory.create_batch(2)
    fund([alice, bob], "1000.00")
    rounds = 40

    def pay(sender, recipient):
        for _ in range(rounds):
            services.transfer(
                actor=sender,
                sender=sender,
                recipient=recipient,
                amount=Decimal("1.00"),
                currency="USD",
            )

    jobs = [lambda: pay(alice, bob), lambda: pay(bob, alice)] * 4
    # when
    outcomes = run_concurrently(jobs)
    # then every transfer went through and the two balances are where they started
    assert [o.error for o in outcomes if o.error] == []
    assert amounts([alice, bob]) == {alice.pk: Decimal("1000.00"), bob.pk: Decimal("1000.00")}
    assert Transaction.objects.filter(type=TransactionType.TRANSFER).count() == 8 * rounds
    assert_ledger_holds()


@pytest.mark.parametrize("ring_size", [3, 5])
def test_transfers_around_a_ring_do_not_deadlock(ring_size):
    # given users paying the next one around a ring, all at once
    users = UserFactory.create_batch(ring_size)
    fund(users, "500.00")
    rounds = 30

    def pay_next(index: int):
        sender, recipient = users[index], users[(index + 1) % ring_size]
        for _ in range(rounds):
            services.transfer(
                actor=sender,
                sender=sender,
                recipient=recipient,
                amount=Decimal("2.50"),
                currency="USD",
            )

    jobs = [lambda i=i: pay_next(i) for i in range(ring_size)] * 2
    # when
    outcomes = run_concurrently(jobs)
    # then
    assert [o.error for o in outcomes if o.error] == []
    assert set(amounts(users).values()) == {Decimal("500.00")}
    assert_ledger_holds()


def test_a_bank_run_never_overdraws_the_account():
    # given one account holding 100.00 and many withdrawals of 7.00 at once
    owner = UserFactory()
    fund([owner], "100.00")
    threads, attempts = 16, 3

    def withdraw():
        outcomes = []
        for _ in range(attempts):
            try:
                services.debit(actor=owner, user=owner, amount=Decimal("7.00"), currency="USD")
                outcomes.append(True)
            except InsufficientFundsError:
                outcomes.append(False)
        return outcomes

    # when
    outcomes = run_concurrently([withdraw] * threads)
    # then exactly as many succeed as the money allows, and not one more
    assert [o.error for o in outcomes if o.error] == []
    successes = sum(sum(o.value) for o in outcomes)
    assert successes * Decimal("7.00") <= Decimal("100.00")
    assert successes == 14
    assert amounts([owner]) == {owner.pk: Decimal("2.00")}
    assert Transaction.objects.filter(type=TransactionType.DEBIT).count() == successes
    assert_ledger_holds()


def test_a_bank_run_mixing_debits_and_transfers_never_overdraws():
    # given
    owner = UserFactory()
    payees = UserFactory.create_batch(4)
    fund([owner], "50.00")

    def drain(index: int):
        succeeded = 0
        for _ in range(5):
            try:
                if index % 2:
                    services.debit(actor=owner, user=owner, amount=Decimal("3.00"), currency="USD")
                else:
                    services.transfer(
                        actor=owner,
                        sender=owner,
                        recipient=payees[index % 4],
                        amount=Decimal("3.00"),
                        currency="USD",
                    )
                succeeded += 1
            except InsufficientFundsError:
                pass
        return succeeded

    # when
    outcomes = run_concurrently([lambda i=i: drain(i) for i in range(12)])
    # then
    assert [o.error for o in outcomes if o.error] == []
    successes = sum(o.value for o in outcomes)
    assert successes == 16
    assert amounts([owner]) == {owner.pk: Decimal("2.00")}
    assert_ledger_holds()

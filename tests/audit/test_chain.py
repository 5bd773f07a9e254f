"""The audit trail: events in the same transaction, hash chains per lock, seals over the stream."""

import itertools
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from audit.chain import GENESIS, event_hash
from audit.models import AuditLog, AuditSeal
from audit.sealing import seal_audit_stream
from audit.services import chain_head
from audit.verification import verify_audit_trail
from balances.models import Balance
from tests.accounts.factories import UserFactory
from transactions import services

pytestmark = pytest.mark.django_db


def _recomputed(event: AuditLog) -> str:
    return event_hash(
        chain=event.chain,
        prev_hash=event.prev_hash,
        entity_type=event.entity_type,
        entity_id=event.entity_id,
        action=event.action,
        details=event.details,
        actor_id=event.actor_id,
        request_id=event.request_id,
        client_ip=event.client_ip,
        created_at=event.created_at,
    )


def test_a_transfer_writes_its_events_in_the_same_transaction(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    before = AuditLog.objects.count()
    # when
    txn = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("5.00"), currency="USD"
    )
    # then
    events = list(AuditLog.objects.order_by("id")[before:])
    assert [e.action for e in events].count("balance.changed") == 2
    completed = next(e for e in events if e.action == "transaction.completed")
    assert completed.entity_id == str(txn.pk)
    assert completed.details["amount"] == "5.00"
    assert all(_recomputed(e) == e.hash for e in events)


def test_balance_events_chain_under_the_balance_row(funded_user, other_user):
    # given
    sender = funded_user("50.00")
    for amount in ("1.00", "2.00", "3.00"):
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=other_user,
            amount=Decimal(amount),
            currency="USD",
        )
    balance = Balance.objects.get(user=sender, currency_id="USD")
    # when
    chain = list(AuditLog.objects.filter(chain=f"balance:{balance.pk}").order_by("id"))
    # then: the row's opening event, then one event per entry
    assert len(chain) == balance.entry_count + 1 == 5
    assert chain[0].prev_hash == GENESIS
    assert chain[0].action == "balance.opened"
    assert chain[0].details == {"user_id": sender.pk, "currency": "USD", "seq": 0}
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert balance.head_hash == chain[-1].hash
    assert [e.details["balance_after"] for e in chain[1:]] == ["50.00", "49.00", "47.00", "44.00"]


def test_chain_head_is_the_newest_event_of_that_chain_only(funded_user, other_user, admin_user):
    # given: a transfer (its chain has one event), then a reversal appends to it
    sender = funded_user("50.00")
    first = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("5.00"), currency="USD"
    )
    second = services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("6.00"), currency="USD"
    )
    services.reverse(actor=admin_user, transaction_id=first.pk, reason="duplicate")
    # when
    heads = {t.pk: chain_head(chain=f"txn:{t.pk}") for t in (first, second)}
    # then
    for txn in (first, second):
        newest = AuditLog.objects.filter(chain=f"txn:{txn.pk}").order_by("-id").first()
        assert heads[txn.pk] == newest.hash
    assert AuditLog.objects.filter(chain=f"txn:{first.pk}").count() == 2
    assert chain_head(chain="txn:00000000-0000-0000-0000-000000000000") == GENESIS
    assert chain_head(chain="") == GENESIS


def test_the_database_refuses_a_fork_in_a_chain(funded_user):
    # given
    user = funded_user("10.00")
    first = AuditLog.objects.filter(chain__startswith="balance:").order_by("id").first()
    # when / then: a second event claiming the same predecessor is refused
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditLog.objects.create(
            entity_type="balance",
            entity_id=first.entity_id,
            action="balance.changed",
            details={},
            created_at=first.created_at,
            chain=first.chain,
            prev_hash=first.prev_hash,
            hash="f" * 64,
        )
    assert user.is_active


def test_the_database_refuses_update_and_delete_of_audit_rows(funded_user):
    # given
    funded_user("10.00")
    event = AuditLog.objects.order_by("id").first()
    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditLog.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditLog.objects.filter(pk=event.pk).delete()
    assert AuditLog.objects.get(pk=event.pk).action == event.action


@pytest.mark.django_db(transaction=True)
def test_verify_audit_passes_on_an_untouched_trail(funded_user, other_user, capsys):
    # given
    sender = funded_user("20.00")
    services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("7.00"), currency="USD"
    )
    seal_audit_stream()
    # when
    call_command("verify_audit", "--no-progress")
    # then
    assert "audit trail intact" in capsys.readouterr().out


def _tamper(sql: str, params: list) -> None:
    """Edit audit rows behind the application's back, trigger disabled for this statement.

    Tests that tamper or seal run with `transaction=True`: a seal only covers events of
    finished transactions, and ALTER TABLE needs no pending deferred checks.
    """
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_names_the_event_whose_content_was_edited(funded_user, other_user):
    # given
    sender = funded_user("20.00")
    services.transfer(
        actor=sender, sender=sender, recipient=other_user, amount=Decimal("7.00"), currency="USD"
    )
    target = AuditLog.objects.filter(action="balance.changed").order_by("id")[1]
    # when
    _tamper(
        "UPDATE audit_logs SET details = jsonb_set(details, '{delta}', '\"-700.00\"') "
        "WHERE id = %s",
        [target.pk],
    )
    # then
    result = verify_audit_trail()
    assert not result.ok
    assert result.first_problem["event_id"] == target.pk
    with pytest.raises(CommandError, match=f"event #{target.pk}"):
        call_command("verify_audit", "--no-progress")


@pytest.mark.django_db(transaction=True)
def test_verify_audit_detects_a_deleted_event_in_a_chain(funded_user, other_user):
    # given
    sender = funded_user("20.00")
    for _ in range(3):
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=other_user,
            amount=Decimal("1.00"),
            currency="USD",
        )
    balance = Balance.objects.get(user=sender)
    chain = list(AuditLog.objects.filter(chain=f"balance:{balance.pk}").order_by("id"))
    # when
    _tamper("DELETE FROM audit_logs WHERE id = %s", [chain[1].pk])
    # then: the event after the hole has a broken link
    result = verify_audit_trail()
    assert result.first_problem["event_id"] == chain[2].pk
    assert "broken link" in result.first_problem["reason"]


@pytest.mark.django_db(transaction=True)
def test_verify_audit_detects_a_deleted_unchained_event_through_the_seal(db):
    # given: events with no chain (a failed login for an unknown name) are sealed
    from accounts.services import record_login

    record_login(user=None, username="ghost", succeeded=False)
    record_login(user=None, username="ghost2", succeeded=False)
    seal = seal_audit_stream()
    assert seal is not None
    assert seal.event_count == 2
    victim = AuditLog.objects.filter(chain="").order_by("id").first()
    # when
    _tamper("DELETE FROM audit_logs WHERE id = %s", [victim.pk])
    # then
    result = verify_audit_trail()
    assert result.first_problem["seal_id"] == seal.pk
    assert "deleted or inserted" in result.first_problem["reason"]


@pytest.mark.django_db(transaction=True)
def test_seals_are_contiguous_and_never_cover_an_event_twice(funded_user):
    # given
    funded_user("5.00")
    first = seal_audit_stream()
    assert seal_audit_stream() is None  # nothing new
    funded_user("6.00")
    # when
    second = seal_audit_stream()
    # then
    assert second.xid_from == first.xid_to
    assert second.prev_hash == first.hash
    assert first.event_count + second.event_count == AuditLog.objects.count()
    assert AuditSeal.objects.count() == 2


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_money_movement_leaves_unbroken_chains_and_seals():
    # given
    users = [UserFactory() for _ in range(6)]
    for user in users:
        services.credit(actor=user, user=user, amount=Decimal("1000.00"), currency="USD")
    barrier = threading.Barrier(8)
    errors: list[Exception] = []

    def worker(seed: int) -> None:
        import random

        rng = random.Random(seed)
        barrier.wait()
        try:
            for _ in range(40):
                a, b = rng.sample(users, 2)
                services.transfer(
                    actor=a, sender=a, recipient=b, amount=Decimal("1.00"), currency="USD"
                )
                if rng.random() < 0.1:
                    seal_audit_stream()
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seal_audit_stream()
    # then
    assert errors == []
    result = verify_audit_trail()
    assert result.ok, result.problems
    assert result.unsealed_events == 0
    sealed = sum(AuditSeal.objects.values_list("event_count", flat=True))
    assert sealed == AuditLog.objects.count()

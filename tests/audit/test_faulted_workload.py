"""After a workload with faults (killed connections, failed movements that opened balances),
`verify_audit`, `replay_events` and `reconcile` all find the ledger and its stream agree."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.utils import timezone

from audit.models import AuditLog
from audit.sealing import seal_audit_stream
from balances.models import Balance
from tests.accounts.factories import UserFactory
from transactions import services
from transactions.models import TransactionStatus
from transactions.services import movements
from transactions.services.batches import BatchItemInput

pytestmark = pytest.mark.django_db(transaction=True)


def _funded(amount: str):
    user = UserFactory()
    services.credit(actor=None, user=user, amount=Decimal(amount), currency="USD")
    return user


def _killed_mid_transfer(sender, recipient) -> None:
    """A transfer whose database session is terminated while it holds its locks."""
    holding = threading.Event()
    release = threading.Event()
    pids: list[int] = []
    real_plan = movements.plan_movement
    failures: list[BaseException] = []

    def plan_then_wait(**kwargs):
        pids.append(connection.connection.info.backend_pid)
        holding.set()
        release.wait(10)
        return real_plan(**kwargs)

    def transfer() -> None:
        try:
            services.transfer(
                actor=sender,
                sender=sender,
                recipient=recipient,
                amount=Decimal("1.00"),
                currency="USD",
            )
        except OperationalError as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    movements.plan_movement = plan_then_wait
    try:
        worker = threading.Thread(target=transfer)
        worker.start()
        assert holding.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pids[0]])
        release.set()
        worker.join(10)
    finally:
        movements.plan_movement = real_plan
    assert failures, "the terminated transfer should have failed"


def test_the_stream_replays_the_live_ledger_after_a_faulted_workload():
    # given a workload where movements fail after opening balances, and sessions are killed
    rich, poor = _funded("100.00"), _funded("1.00")
    fresh = UserFactory.create_batch(4)
    services.transfer(
        actor=rich, sender=rich, recipient=poor, amount=Decimal("5.00"), currency="USD"
    )
    # an async transfer the worker refuses: the recipient's balance was opened for it
    pending = services.create_pending(
        actor=poor,
        kind="transfer",
        from_user=poor,
        to_user=fresh[0],
        amount=Decimal("50.00"),
        currency="USD",
    )
    # a batch whose items to new recipients are refused one by one (the chunk commits)
    services.create_batch(
        actor=poor,
        items=[
            BatchItemInput(to_user_id=fresh[1].pk, amount=Decimal("500.00"), currency="USD"),
            BatchItemInput(to_user_id=fresh[2].pk, amount=Decimal("1.00"), currency="USD"),
        ],
        atomic=False,
    )
    # a scheduled run that fails for lack of funds, to a recipient with no balance yet
    services.create_schedule(
        actor=poor,
        sender=poor,
        recipient=fresh[3],
        amount=Decimal("900.00"),
        currency="USD",
        run_at=timezone.now(),
    )
    services.run_due_schedules(now=timezone.now() + timedelta(seconds=1))
    # a transfer to a new recipient killed while it holds its locks
    _killed_mid_transfer(rich, UserFactory())
    seal_audit_stream()
    pending.refresh_from_db()
    assert pending.status == TransactionStatus.FAILED
    unmoved = Balance.objects.filter(amount=0, entry_count=0)
    assert unmoved.count() >= 2  # balances opened by failed movements, holding nothing
    # then every opened balance has its event, at the head of its chain
    for balance in unmoved:
        opened = AuditLog.objects.get(action="balance.opened", entity_id=str(balance.pk))
        assert opened.chain == f"balance:{balance.pk}"
        assert balance.head_hash == opened.hash
    # and the three checks agree with the live ledger
    call_command("verify_audit", "--no-progress")
    call_command("replay_events", "--no-progress")
    call_command("reconcile")

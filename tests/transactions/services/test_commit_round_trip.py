"""A movement's last statement and its COMMIT travel together; the block still behaves."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.ledger import assert_ledger_holds
from transactions import services
from transactions.models import Transaction
from wallet_project import db

pytestmark = pytest.mark.django_db(transaction=True)


def _funded(amount: str):
    user = UserFactory()
    services.credit(actor=user, user=user, amount=Decimal(amount), currency="USD")
    return user


def test_a_transfer_commits_with_its_last_statement_and_runs_the_commit_hooks():
    # given
    sender, recipient = _funded("10.00"), UserFactory()
    hooks: list[list[Transaction]] = []
    services.on_movements_committed(hooks.append)
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    try:
        # when
        with connection.execute_wrapper(spy):
            txn = services.transfer(
                actor=sender,
                sender=sender,
                recipient=recipient,
                amount=Decimal("4.00"),
                currency="USD",
            )
    finally:
        services.movements._after_commit_hooks.remove(hooks.append)
    # then: the write statement is followed by COMMIT; the hooks saw the committed transfer
    assert seen[-2].startswith("WITH ")
    assert seen[-1] == "COMMIT"
    assert [t.pk for batch in hooks for t in batch] == [txn.pk]
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    assert Balance.objects.get(user=recipient).amount == Decimal("4.00")
    assert_ledger_holds()


def test_a_failing_last_statement_raises_a_django_error_and_writes_nothing():
    # given: the sender's chain head is lost, so its next event would fork the chain
    sender, recipient = _funded("10.00"), UserFactory()
    Balance.objects.filter(user=sender).update(head_hash="")
    events = AuditLog.objects.count()
    # when
    with pytest.raises(IntegrityError):
        services.transfer(
            actor=sender, sender=sender, recipient=recipient, amount=Decimal("4.00"), currency="USD"
        )
    # then: nothing of the transfer was written, and the connection serves the next request
    assert not Transaction.objects.filter(from_user=sender).exists()
    assert Balance.objects.get(user=sender).amount == Decimal("10.00")
    assert AuditLog.objects.count() == events
    assert connection.get_autocommit()
    assert not connection.in_atomic_block
    assert UserFactory().pk


def test_inside_an_enclosing_block_the_statement_runs_alone_and_the_block_decides(monkeypatch):
    # given: an enclosing block that is not durable (as a test case's is)
    batch = db.StatementBatch()
    batch.add(
        "INSERT INTO currencies (code, exponent, enabled, name) VALUES (%s, 2, true, %s)",
        ["ZZZ", "Test"],
    )
    # when
    with transaction.atomic():
        batch.execute_and_commit()
        assert connection.in_atomic_block
        transaction.set_rollback(True)
    # then: the enclosing block rolled it back, so nothing was committed early
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM currencies WHERE code = 'ZZZ'")
        assert cursor.fetchone()[0] == 0

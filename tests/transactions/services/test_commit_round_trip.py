"""A movement's last statement and its COMMIT travel together; the block still behaves."""

from decimal import Decimal
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction

from audit.models import AuditLog
from balances.models import Balance
from tests.accounts.factories import UserFactory
from tests.ledger import assert_ledger_holds
from transactions import services
from transactions.models import Transaction
from wallet_project import statements

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


def _reverse(sender, recipient):
    admin = UserFactory(role="admin")
    original = services.transfer(
        actor=sender, sender=sender, recipient=recipient, amount=Decimal("4.00"), currency="USD"
    )
    return lambda: services.reverse(actor=admin, transaction_id=original.pk, reason="duplicate")


def _complete_pending(sender, recipient):
    with mock.patch.object(services.pending, "enqueue_after_commit"):  # no eager worker run
        pending = services.create_pending(
            actor=sender,
            kind="transfer",
            from_user=sender,
            to_user=recipient,
            amount=Decimal("4.00"),
            currency="USD",
        )
    return lambda: services.process_pending_transaction(transaction_id=pending.pk)


@pytest.mark.parametrize("movement", [_reverse, _complete_pending])
def test_a_reversal_and_a_pending_completion_commit_with_their_last_statement(movement):
    # given
    sender, recipient = _funded("10.00"), UserFactory()
    run = movement(sender, recipient)
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    # when
    with connection.execute_wrapper(spy):
        txn = run()
    # then: one write statement, then COMMIT, as for a transfer
    assert seen[-3] == statements.GENERIC_PLAN
    assert seen[-2].startswith("WITH ")
    assert seen[-1] == "COMMIT"
    assert txn.status == "completed"
    assert not connection.in_atomic_block
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
    write = statements.WriteStatement()
    write.add(
        "INSERT INTO currencies (code, exponent, enabled, name) VALUES (%s, 2, true, %s)",
        ["ZZZ", "Test"],
    )
    # when
    with transaction.atomic():
        write.execute_and_commit()
        assert connection.in_atomic_block
        transaction.set_rollback(True)
    # then: the enclosing block rolled it back, so nothing was committed early
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM currencies WHERE code = 'ZZZ'")
        assert cursor.fetchone()[0] == 0


class _RoundTrips:
    """Counts the round trips on the connection: the server's ReadyForQuery messages."""

    def __init__(self, tmp_path):
        self.path = tmp_path / "protocol.trace"

    def __enter__(self):
        from psycopg import pq

        connection.ensure_connection()
        self.file = self.path.open("w")
        self.pgconn = connection.connection.pgconn
        self.pgconn.trace(self.file.fileno())
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        return self

    def __exit__(self, *exc):
        self.pgconn.untrace()
        self.file.close()
        lines = self.path.read_text().splitlines()
        self.count = sum(1 for line in lines if "ReadyForQuery" in line)
        self.statements = [line.split("\t")[-1] for line in lines if "\tCommandComplete" in line]


def _idempotency(user, key: str):
    from transactions.idempotency import IdempotencyRequest

    return IdempotencyRequest(user_id=user.pk, key=key, fingerprint="f" * 64)


@pytest.mark.parametrize("keyed", [False, True])
def test_a_transfer_takes_two_round_trips_with_its_begin_in_the_first(tmp_path, keyed):
    # given
    sender, recipient = _funded("10.00"), _funded("1.00")  # both balances exist
    idempotency = _idempotency(sender, "two-trips") if keyed else None
    # when
    with _RoundTrips(tmp_path) as trips:
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=recipient,
            amount=Decimal("4.00"),
            currency="USD",
            idempotency=idempotency,
        )
    # then: BEGIN, [claim,] lock; then the write and COMMIT
    assert trips.count == 2
    assert trips.statements[0] == ' "BEGIN"'
    assert trips.statements[-1] == ' "COMMIT"'
    assert connection.get_autocommit()
    assert connection.connection.autocommit
    assert Balance.objects.get(user=recipient).amount == Decimal("5.00")


def test_a_refusal_after_the_pipelined_begin_rolls_everything_back():
    # given
    from wallet_project.errors import InsufficientFundsError

    sender, recipient = _funded("10.00"), UserFactory()
    # when
    with pytest.raises(InsufficientFundsError):
        services.transfer(
            actor=sender,
            sender=sender,
            recipient=recipient,
            amount=Decimal("40.00"),
            currency="USD",
            idempotency=_idempotency(sender, "refused"),
        )
    # then: the claim and the recipient's new balance row went with the rollback
    from transactions.models import IdempotencyKey

    assert not IdempotencyKey.objects.filter(user=sender, key="refused").exists()
    assert not Balance.objects.filter(user=recipient).exists()
    assert connection.get_autocommit()
    assert connection.connection.autocommit
    assert connection.connection.info.transaction_status.name == "IDLE"


def test_a_failing_statement_in_the_first_round_trip_rolls_back_the_block():
    # given
    sender = _funded("10.00")
    # when
    with pytest.raises(IntegrityError), transaction.atomic(durable=True):
        statements.run_pipelined(
            [
                ("UPDATE balances SET amount = amount + 1 WHERE user_id = %s", [sender.pk]),
                ("UPDATE balances SET amount = -1 WHERE user_id = %s", [sender.pk]),
            ]
        )
    # then: the first statement was rolled back with the block; the connection goes on
    assert Balance.objects.get(user=sender).amount == Decimal("10.00")
    assert connection.connection.info.transaction_status.name == "IDLE"
    with transaction.atomic(durable=True):
        (rows,) = statements.run_pipelined(
            [("SELECT amount FROM balances WHERE user_id = %s", [sender.pk])]
        )
    assert rows == [(Decimal("10.000"),)]


def test_statements_after_others_in_the_block_do_not_begin_again():
    # given: the block's transaction already began with an earlier query
    sender = _funded("10.00")
    # when
    with transaction.atomic(durable=True):
        Balance.objects.filter(user=sender).update(amount=Decimal("11.00"))
        began = connection.connection.info.transaction_status.name
        (rows,) = statements.run_pipelined(
            [("SELECT amount FROM balances WHERE user_id = %s", [sender.pk])]
        )
        transaction.set_rollback(True)
    # then: one transaction (the update is seen, and rolled back with it)
    assert began == "INTRANS"
    assert rows == [(Decimal("11.000"),)]
    assert Balance.objects.get(user=sender).amount == Decimal("10.00")


def test_under_manual_transaction_management_psycopg_begins_as_usual():
    # given: autocommit turned off by hand (no atomic block will turn it back on)
    sender = _funded("10.00")
    transaction.set_autocommit(False)
    try:
        # when: a pipelined read, a commit, then a write rolled back
        (rows,) = statements.run_pipelined(
            [("SELECT amount FROM balances WHERE user_id = %s", [sender.pk])]
        )
        transaction.commit()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE balances SET amount = 0 WHERE user_id = %s", [sender.pk])
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    # then: the write was inside a transaction psycopg began, so the rollback undid it
    assert rows == [(Decimal("10.000"),)]
    assert Balance.objects.get(user=sender).amount == Decimal("10.00")


def test_a_movements_statement_is_planned_once_per_connection():
    # given: enough transfers for the statement to be prepared on this connection
    sender, recipient = _funded("100.00"), UserFactory()
    # when
    for _ in range(8):
        services.transfer(
            actor=sender, sender=sender, recipient=recipient, amount=Decimal("1.00"), currency="USD"
        )
    # then: the prepared statement runs its one generic plan, never a fresh custom one
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE 'WITH w0 AS (UPDATE \"balances\"%%'"
        )
        plans = cursor.fetchall()
        cursor.execute("SHOW plan_cache_mode")
        mode = cursor.fetchone()[0]
    assert mode == "auto"  # the setting ended with the movement's transaction
    assert len(plans) == 1
    generic, custom = plans[0]
    assert generic >= 1
    assert custom == 0
    assert_ledger_holds()


def _committing_write(code: str) -> statements.WriteStatement:
    write = statements.WriteStatement()
    write.add(
        "INSERT INTO currencies (code, exponent, enabled, name) VALUES (%s, 2, true, %s)",
        [code, "Test"],
    )
    return write


def _currency_exists(code: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM currencies WHERE code = %s", [code])
        return cursor.fetchone()[0] == 1


def test_no_query_may_follow_the_commit_in_its_block():
    # given
    ran_after_commit: list[bool] = []

    @transaction.atomic(durable=True)
    def write_then_read() -> None:
        transaction.on_commit(lambda: ran_after_commit.append(True))
        _committing_write("ZZY").execute_and_commit()
        Balance.objects.exists()

    # when: a query after the write that committed the block's transaction
    with pytest.raises(RuntimeError, match="outside that transaction"):
        write_then_read()
    # then: refused before it reached the database; the write stays committed, the block's
    # hooks were dropped with it, and the connection serves the next query
    assert ran_after_commit == []
    assert _currency_exists("ZZY")
    assert connection.execute_wrappers == []
    assert connection.connection.info.transaction_status.name == "IDLE"


def test_the_commit_hooks_and_the_next_block_may_query():
    # given
    seen: list[bool] = []
    # when
    with transaction.atomic(durable=True):
        transaction.on_commit(lambda: seen.append(_currency_exists("ZZX")))
        _committing_write("ZZX").execute_and_commit()
    with transaction.atomic(durable=True):
        seen.append(Balance.objects.exists() is False)
    # then
    assert seen == [True, True]
    assert connection.execute_wrappers == []


def test_a_wrapper_around_the_block_keeps_its_place():
    # given
    seen: list[str] = []

    def spy(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    # when: the block ends inside the wrapper's context, with no query after it
    with connection.execute_wrapper(spy):
        with transaction.atomic(durable=True):
            _committing_write("ZZW").execute_and_commit()
        assert connection.execute_wrappers[-1] is spy
    _currency_exists("ZZW")
    # then: the spy was removed when its context ended, and saw only its own queries
    assert connection.execute_wrappers == []
    assert seen[-1] == "COMMIT"

"""Statements to PostgreSQL shaped for few round trips: how the ledger writes.

A money movement's writes are ONE data-modifying statement (`WriteStatement`: every part a
CTE of a single `WITH ... SELECT 1`), sent with its `COMMIT` in one round trip
(`execute_and_commit`); the reads before it are pipelined with the transaction's `BEGIN`
(`run_pipelined`). Rows travel as one `jsonb` parameter (`rows_source`) or stream
through COPY (`copy_rows`).
Timestamps read back come as epoch microseconds (`epoch_micros`).
"""

import json
import time
from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from django.db import connection
from psycopg import pq

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(expression: str) -> str:
    """SQL for the timestamp `expression` as whole microseconds since the epoch (bigint).

    An integer costs far less to load than a timestamp, whose loader runs in Python, and
    it is exact; `from_epoch_micros` turns it back into the same aware datetime.
    """
    return f"(extract(epoch FROM {expression}) * 1000000)::bigint"


def from_epoch_micros(value: int | None) -> datetime | None:
    """The UTC datetime `value` microseconds after the epoch (None stays None)."""
    return None if value is None else EPOCH + timedelta(microseconds=value)


# A movement's statement has the same shape every time but PostgreSQL keeps planning it anew
# (a custom plan per run, about 0.1 ms): the plan it would reuse is estimated dearer,
# not slower. Set for the rest of the transaction, which the statement's COMMIT ends.
GENERIC_PLAN = "SET LOCAL plan_cache_mode = force_generic_plan"


class WriteStatement:
    """One statement of data-modifying parts (each a CTE): one round trip, however many parts.

    Every part sees the same snapshot and the statement is atomic; foreign keys are
    deferred to commit, so parts may reference rows inserted by other parts.
    """

    def __init__(self) -> None:
        self.parts: list[tuple[str, list]] = []

    def add(self, sql: str, params: list) -> None:
        self.parts.append((sql, params))

    def _statement(self) -> tuple[str, list]:
        ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(self.parts))
        params = [p for _, part_params in self.parts for p in part_params]
        return f"WITH {ctes} SELECT 1", params

    def execute(self) -> None:
        if not self.parts:
            return
        sql, params = self._statement()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    def execute_and_commit(self) -> None:
        """Run the statement and `COMMIT` in one round trip (pipelined), if this may commit.

        For the last write of a money transaction that owns the outermost atomic block
        (`atomic(durable=True)`): Django's commit at the end of the block then finds the
        transaction committed and runs the on-commit hooks. An error in either statement is
        raised here as Django's exception and the block rolls back as usual. Inside an
        enclosing block (a test case's) the statement runs alone and the block commits.

        Once committed, the block may run no other query: it would run outside the
        transaction, in one of its own. One raises RuntimeError until the block ends.
        """
        if not self.parts:
            return
        if not _ends_outermost_block():
            self.execute()
            return
        sql, params = self._statement()
        # Exits in reverse order: the pipeline's errors surface first, then become Django's.
        with (
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            connection.connection.pipeline(),
        ):
            cursor.execute(GENERIC_PLAN)
            cursor.execute(sql, params)
            cursor.execute("COMMIT")
        # First among the wrappers: a wrapper context around the movement pops its own.
        connection.execute_wrappers.insert(0, _CommittedBlock(connection))


class _CommittedBlock:
    """Refuses every query of an atomic block whose transaction `execute_and_commit` ended.

    Django replaces the connection's list of on-commit hooks when the transaction ends (the
    hooks are about to run, or it rolled back): from then on queries pass, and the first
    one removes this wrapper (nothing is left to check on the queries after it).
    """

    def __init__(self, db) -> None:
        self.hooks = db.run_on_commit

    def __call__(self, execute, sql, params, many, context):
        db = context["connection"]
        if db.in_atomic_block and db.run_on_commit is self.hooks:
            raise RuntimeError(
                "The transaction of this atomic block was committed with its last write "
                "(execute_and_commit); a query after it would run outside that transaction. "
                "Make the write the block's last query."
            )
        with suppress(ValueError):
            db.execute_wrappers.remove(self)
        return execute(sql, params, many, context)


def run_pipelined(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """Send `statements` in one round trip, in order, in the current transaction; their rows.

    Each runs only after the previous one finished on the server (a statement that waits
    on a lock holds the ones after it back), exactly as if sent one by one. The first
    error is raised as Django's exception; the statements after it did not run.

    If the transaction has not begun on the server yet (the first statements of an atomic
    block), its `BEGIN` goes in the same round trip: psycopg would send it alone and wait
    for it. psycopg is then told not to begin one itself (its autocommit flag; Django's
    own state is untouched, and Django sets the flag again when the block ends).
    """
    cursors = [connection.cursor() for _ in statements]
    pg = connection.connection
    begin = _begins_here(pg)
    try:
        if begin:
            pg.autocommit = True  # (outside the pipeline: inside, setting it costs a round trip)
        with connection.wrap_database_errors, pg.pipeline():
            if begin:
                cursors[0].execute("BEGIN")  # its result is replaced by the statement's own
            for cursor, (sql, params) in zip(cursors, statements, strict=True):
                cursor.execute(sql, params)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def _begins_here(pg) -> bool:
    """True if an atomic block holds a transaction open that psycopg has not begun on the
    server yet, with a plain `BEGIN` (no isolation level or access mode of its own).

    Only a block that turned autocommit off itself (`commit_on_exit`) also turns it back on
    at its end; under `set_autocommit(False)` psycopg begins each transaction as usual.
    """
    return (
        connection.in_atomic_block
        and connection.commit_on_exit
        and not connection.get_autocommit()
        and not pg.autocommit
        and pg.info.transaction_status == pq.TransactionStatus.IDLE
        and pg.isolation_level is None
        and pg.read_only is None
        and pg.deferrable is None
    )


def _ends_outermost_block() -> bool:
    """True inside one durable atomic block with nothing nested or marked for rollback."""
    blocks = connection.atomic_blocks
    return (
        len(blocks) == 1
        and blocks[0].durable
        and not connection.savepoint_ids
        and not connection.needs_rollback
    )


def _json_value(value: object) -> str:
    return str(value)  # Decimal, UUID, datetime: their text form is what PostgreSQL parses


def rows_source(alias: str, columns: list[tuple[str, str]], rows: list[tuple]) -> tuple[str, list]:
    """A typed row source for `rows`, usable after FROM, passed as ONE jsonb parameter.

    One parameter whatever the row count keeps the statement text constant, so the driver
    caches it and the server runs it as a prepared statement; there is no limit on rows.
    """
    names = [name for name, _ in columns]
    payload = json.dumps(
        [dict(zip(names, row, strict=True)) for row in rows],
        default=_json_value,
        separators=(",", ":"),
    )
    record = ", ".join(f"{name} {kind}" for name, kind in columns)
    return f"jsonb_to_recordset(%s::jsonb) AS {alias}({record})", [payload]


def _refuse_queries(*_args: object) -> None:
    raise RuntimeError("No query may run while COPY streams rows on this connection.")


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert `rows` into `table` with `COPY ... FROM STDIN`, in the caller's transaction.

    For thousands of rows: no parameter to encode and parse, and the rows are streamed as
    `rows` yields them, so the database inserts while the caller still computes the next
    ones. Rows are inserted in the order given. Constraints and triggers apply as for
    INSERT. Logged like a query where queries are logged (tests counting them).

    `rows` must not query the database: the connection is busy streaming (a query from
    inside raises RuntimeError instead of waiting forever for the connection).
    """
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    started = time.monotonic()
    with (
        connection.execute_wrapper(_refuse_queries),
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    if connection.queries_logged:
        elapsed = time.monotonic() - started
        connection.queries_log.append({"sql": sql, "time": f"{elapsed:.3f}"})

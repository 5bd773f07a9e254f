"""Statements to PostgreSQL shaped for few round trips: how the ledger writes.

A money movement's writes are ONE data-modifying statement (`WriteStatement`: every part a
CTE of a single `WITH ... SELECT 1`), sent with its `COMMIT` in one round trip
(`execute_and_commit`); the reads before it are pipelined with the transaction's `BEGIN`
(`run_pipelined`). Rows travel as one `jsonb` parameter (`rows_source`) or stream
through COPY (`copy_rows`), their columns named and typed by the model they are written
to (`ModelColumns`), never by hand.
Timestamps read back come as epoch microseconds (`epoch_micros`).
"""

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import cached_property
from operator import attrgetter, itemgetter
from typing import cast, overload

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Field, Model
from psycopg import pq

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(expression: str) -> str:
    """SQL for the timestamp `expression` as whole microseconds since the epoch (bigint).

    An integer costs far less to load than a timestamp, whose loader runs in Python, and
    it is exact; `from_epoch_micros` turns it back into the same aware datetime.
    """
    return f"(extract(epoch FROM {expression}) * 1000000)::bigint"


@overload
def from_epoch_micros(value: int) -> datetime: ...
@overload
def from_epoch_micros(value: None) -> None: ...
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
        and blocks[0].durable  # type: ignore[attr-defined]  # an Atomic attribute the stubs lack
        and not connection.savepoint_ids
        and not connection.needs_rollback
    )


def _json_value(value: object) -> str:
    return str(value)  # Decimal, UUID, datetime: their text form is what PostgreSQL parses


def rows_source(alias: str, columns: list[tuple[str, str]], rows: list[tuple]) -> tuple[str, list]:
    """A typed row source for `rows`, usable after FROM, passed as ONE jsonb parameter.

    `columns` are (name, SQL type) pairs, in the order of each row's values: take them
    from `ModelColumns`, the model the rows are written to, rather than writing them out.
    One parameter whatever the row count keeps the statement text constant, so the driver
    caches it and the server runs it as a prepared statement; there is no limit on rows.
    """
    return _source_sql(alias, columns), [_payload([name for name, _ in columns], rows)]


def _source_sql(alias: str, columns: list[tuple[str, str]]) -> str:
    quote = connection.ops.quote_name
    record = ", ".join(f"{quote(name)} {kind}" for name, kind in columns)
    return f"jsonb_to_recordset(%s::jsonb) AS {alias}({record})"


def _payload(names: Sequence[str], rows: list[tuple]) -> str:
    return json.dumps(
        [dict(zip(names, row, strict=True)) for row in rows],
        default=_json_value,
        separators=(",", ":"),
    )


class ModelColumns:
    """The columns of `model` that one writer fills: names, SQL types and row values, all
    taken from the model's fields, so no column can receive another column's value.

    `fields` are the field names each row carries, in this order (by default every concrete
    field that is neither shared nor omitted, in the model's order); `shared` are fields
    with one value for all the rows of a statement (a timestamp), sent once; `omitted` names
    every other concrete field with the reason this writer leaves it out (an identity, a
    database default, written later). A misspelt field, one listed twice, or a field added
    to the model and not listed stops the writer's module at import (FieldDoesNotExist,
    ImproperlyConfigured).

    A row's values are read from an object's attributes named like the fields' `attname`
    (`row`; `attributes` renames some) or from a dict with those keys (`row_of`). JSON
    fields travel as their JSON text and are cast where written. The statements' text is
    built once per writer.
    """

    def __init__(
        self,
        model: type[Model],
        *,
        fields: Sequence[str] | None = None,
        shared: Sequence[str] = (),
        omitted: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        meta = model._meta
        self.omitted = dict(omitted or {})
        concrete = [f.name for f in meta.concrete_fields]
        if fields is None:
            fields = [n for n in concrete if n not in self.omitted and n not in shared]
        listed = [*fields, *shared, *self.omitted]
        for name in [*listed, *(attributes or {})]:
            meta.get_field(name)  # FieldDoesNotExist for a name the model does not have
        if sorted(listed) != sorted(concrete):
            raise ImproperlyConfigured(
                f"The columns written to {meta.label} must name each of its concrete fields "
                f"once, as written, shared or omitted: missing "
                f"{sorted(set(concrete) - set(listed))}, not concrete "
                f"{sorted(set(listed) - set(concrete))}, listed twice "
                f"{sorted({n for n in listed if listed.count(n) > 1})}."
            )
        self.model = model
        self.fields: tuple[Field, ...] = tuple(cast(Field, meta.get_field(n)) for n in fields)
        self.shared: tuple[Field, ...] = tuple(cast(Field, meta.get_field(n)) for n in shared)
        self.names: tuple[str, ...] = tuple(f.column for f in self.fields)
        renamed = attributes or {}
        self._from_object = _tuple_getter(
            attrgetter, [renamed.get(f.name, f.attname) for f in self.fields]
        )
        self._from_dict = _tuple_getter(itemgetter, [f.attname for f in self.fields])

    def __repr__(self) -> str:
        return f"<ModelColumns {self.model._meta.label}: {', '.join(self.names)}>"

    # ------------------------------------------------------------ rows

    def row(self, obj: object) -> tuple:
        """The values of `obj` for `names`, in order, read from its attributes."""
        return self._from_object(obj)

    def row_of(self, values: Mapping[str, object]) -> tuple:
        """The values in `values` (keyed by the fields' attnames) for `names`, in order."""
        return self._from_dict(values)

    # ------------------------------------------------------------ statements

    @cached_property
    def typed(self) -> list[tuple[str, str]]:
        """(column, SQL type) for each of `names`: the row source's record."""
        return [(f.column, _travel_type(f)) for f in self.fields]

    def insert(self, rows: list[tuple], **shared: object) -> tuple[str, list]:
        """An `INSERT ... SELECT` of `rows`, with the `shared` values, as one statement part."""
        return self._insert_sql, [*self._shared_values(shared), _payload(self.names, rows)]

    def update(self, rows: list[tuple], **shared: object) -> tuple[str, list]:
        """An `UPDATE` of the rows named by their primary key (one of `fields`), one part.

        The keys are also given as an array, sent as text: the planner then finds the rows
        by primary key (the size of a row source is unknown to it).
        """
        key = self.fields.index(self.model._meta.pk)
        keys = "{" + ",".join(str(row[key]) for row in rows) + "}"
        return self._update_sql, [*self._shared_values(shared), _payload(self.names, rows), keys]

    def copy(self, rows: Iterable[tuple], **shared: object) -> None:
        """COPY `rows` (each followed by the `shared` values) into the table (`copy_rows`)."""
        values = self._shared_values(shared)
        if values:
            rows = ((*row, *values) for row in rows)
        copy_rows(self._table, self._quoted((*self.fields, *self.shared)), rows)

    def _shared_values(self, values: Mapping[str, object]) -> list:
        if len(values) != len(self.shared) or any(f.name not in values for f in self.shared):
            raise TypeError(f"{self!r} takes the shared values {[f.name for f in self.shared]}")
        return [values[f.name] for f in self.shared]

    @cached_property
    def _table(self) -> str:
        return connection.ops.quote_name(self.model._meta.db_table)

    def _quoted(self, fields: Iterable[Field]) -> list[str]:
        return [connection.ops.quote_name(f.column) for f in fields]

    def _value(self, field: Field) -> str:
        """SQL for `field`'s value in the row source `v`, cast to its column's type if needed."""
        sql = f"v.{connection.ops.quote_name(field.column)}"
        kind = field.db_type(connection)
        return sql if _travel_type(field) == kind else f"{sql}::{kind}"

    def _placeholders(self) -> list[str]:
        return [f"%s::{f.db_type(connection)}" for f in self.shared]

    @cached_property
    def _insert_sql(self) -> str:
        # The shared values come first, as their parameters do.
        columns = ", ".join(self._quoted((*self.shared, *self.fields)))
        values = ", ".join([*self._placeholders(), *map(self._value, self.fields)])
        return (
            f"INSERT INTO {self._table} ({columns}) "  # noqa: S608
            f"SELECT {values} FROM {_source_sql('v', self.typed)}"
        )

    @cached_property
    def _update_sql(self) -> str:
        pk = self.model._meta.pk
        quote = connection.ops.quote_name
        assignments = [
            *(
                f"{quote(f.column)} = {p}"
                for f, p in zip(self.shared, self._placeholders(), strict=True)
            ),
            *(f"{quote(f.column)} = {self._value(f)}" for f in self.fields if f is not pk),
        ]
        column = quote(pk.column)
        return (
            f"UPDATE {self._table} t SET {', '.join(assignments)} "  # noqa: S608
            f"FROM {_source_sql('v', self.typed)} "
            f"WHERE t.{column} = v.{column} AND t.{column} = ANY(%s::{pk.db_type(connection)}[])"
        )


def _travel_type(field: Field) -> str:
    """The SQL type a value of `field` has in a row source: JSON travels as its text."""
    kind = field.db_type(connection)
    if kind is None:
        raise ImproperlyConfigured(f"{field} has no database column type.")
    return "text" if kind == "jsonb" else kind


def _tuple_getter(getter, names: list[str]):
    """`getter(*names)` that returns a tuple, also for one name."""
    if len(names) == 1:
        get = getter(names[0])
        return lambda obj: (get(obj),)
    return getter(*names)


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

"""The database backend: django-prometheus' PostgreSQL wrapper, with cheaper health checks
and statement metrics whose labelled series are looked up once per connection.

With `CONN_HEALTH_CHECKS`, Django runs `SELECT 1` before the first query of every request
that reuses a connection: one round trip per request. What the check catches is a
connection that went stale while idle (a server restart, a dropped TCP session). Here a
connection idle for less than `HEALTH_CHECK_AFTER_IDLE` seconds since its previous request
(and that met no database error there, and on which the server has sent nothing, as it does
when it ends the session) is trusted; one idle for longer is checked as before.
"""

import functools
import select
import time
from timeit import default_timer

import psycopg
from django.db.backends.postgresql import base as postgresql
from django_prometheus.db import (
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)
from django_prometheus.db.backends.postgresql import base as instrumented


@functools.cache
def counted_cursor(cursor_class: type, alias: str, vendor: str) -> type:
    """`cursor_class` counting statements, their duration and errors by type.

    The same series as django-prometheus' cursor wrapper (`django_db_execute_total`,
    `django_db_query_duration_seconds`, `django_db_errors_total`...), with the labelled
    series bound once here instead of looked up by label on every statement.
    """
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def count_error(exc: BaseException) -> None:
        errors_total.labels(alias, vendor, type(exc).__name__).inc()

    class CountedCursor(cursor_class):
        def execute(self, *args, **kwargs):
            executed.inc()
            started = default_timer()
            try:
                return super().execute(*args, **kwargs)
            except BaseException as exc:
                count_error(exc)
                raise
            finally:
                duration.observe(default_timer() - started)

        def executemany(self, query, params_seq, *args, **kwargs):
            params_seq = list(params_seq)
            executed.inc(len(params_seq))
            executed_many.inc(len(params_seq))
            started = default_timer()
            try:
                return super().executemany(query, params_seq, *args, **kwargs)
            except BaseException as exc:
                count_error(exc)
                raise
            finally:
                duration.observe(default_timer() - started)

    CountedCursor.__name__ = CountedCursor.__qualname__ = f"Counted{cursor_class.__name__}"
    return CountedCursor


class DatabaseWrapper(instrumented.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_boundary_at: float | None = None

    def get_connection_params(self):
        # Django's own parameters, with our counted cursor instead of django-prometheus'.
        params = postgresql.DatabaseWrapper.get_connection_params(self)
        params["cursor_factory"] = counted_cursor(params["cursor_factory"], self.alias, self.vendor)
        return params

    def close_if_unusable_or_obsolete(self) -> None:
        """Called at the start and at the end of every request (Django's request signals)."""
        now = time.monotonic()
        idle = None if self.request_boundary_at is None else now - self.request_boundary_at
        self.request_boundary_at = now
        errors = self.errors_occurred
        super().close_if_unusable_or_obsolete()
        limit = self.settings_dict.get("HEALTH_CHECK_AFTER_IDLE", 0)
        if self.connection is not None and not errors and idle is not None and idle < limit:
            self.health_check_done = not self._server_spoke()

    def _server_spoke(self) -> bool:
        """Whether the server sent something on this idle connection: a server shutting down
        sends each session a FATAL message and closes it, which is then readable. One
        non-blocking poll(2), no round trip; an unreadable socket is trusted as before."""
        try:
            poller = select.poll()
            poller.register(self.connection.fileno(), select.POLLIN | select.POLLHUP)
            return bool(poller.poll(0))
        except (OSError, ValueError, psycopg.Error):
            return True

    def close(self) -> None:
        super().close()
        self.request_boundary_at = None

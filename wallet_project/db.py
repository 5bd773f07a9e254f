"""Database errors as the ledger meets them: the bounded retry of a money transaction on
deadlock or serialization failure, and the 503 for a database that cannot serve.

How statements are shaped and sent (one write statement, pipelined round trips) is
`wallet_project.statements`.
"""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection

from wallet_project.errors import (
    DatabaseUnavailableError,
    ReadTimeoutError,
    ServiceUnavailableError,
)

P = ParamSpec("P")
R = TypeVar("R")
logger = logging.getLogger("wallet.db")

RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
QUERY_CANCELED = "57014"  # statement_timeout (or an operator's pg_cancel_backend)
MAX_ATTEMPTS = 5


def is_lock_conflict(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) in RETRYABLE_SQLSTATES


def database_unavailable(exc: BaseException) -> DatabaseUnavailableError | None:
    """The 503 for a database error that is the database's state, not the request's.

    `OperationalError` is what PostgreSQL and the driver raise when the server cannot serve
    (connection refused or lost, shutting down, too many connections, a statement timeout,
    a lock conflict that outlived its retries); `InterfaceError`, a connection already closed.
    A request that meets one is safe to retry. Constraint violations and bad SQL are not
    among them: they stay what they are.
    """
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable", extra={"error": type(exc.__cause__ or exc).__name__})
        if getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED:
            return ReadTimeoutError()
        return DatabaseUnavailableError()
    return None


def retry_on_lock_conflict(func: Callable[P, R]) -> Callable[P, R]:
    """Re-run `func` (which owns its atomic block) up to MAX_ATTEMPTS times with jitter."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return func(*args, **kwargs)
            except OperationalError as exc:
                if not is_lock_conflict(exc) or connection.in_atomic_block:
                    raise
                if attempt == MAX_ATTEMPTS:
                    logger.warning("lock conflict persisted", extra={"attempts": attempt})
                    raise ServiceUnavailableError(
                        "The ledger is busy; retry the request.", details={"retryable": True}
                    ) from exc
                time.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    return wrapper

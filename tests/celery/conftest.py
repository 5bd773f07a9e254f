"""A real Celery worker (threads, in this process) against the real Redis broker."""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection

from wallet_project.celery import app

QUEUES = ["transactions", "scheduled", "maintenance"]


def _close_worker_connection(**_kwargs) -> None:
    """Each worker thread closes its database connection after a task (tests flush tables)."""
    if threading.current_thread() is not threading.main_thread():
        connection.close()


@contextmanager
def _running_worker(settings, **options):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    with app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(queue)
    task_postrun.connect(_close_worker_connection, weak=False)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)  # the worker sets up logging its way
    try:
        with start_worker(
            app, queues=QUEUES, perform_ping_check=False, loglevel="WARNING", **options
        ) as worker:
            yield worker
    finally:
        task_postrun.disconnect(_close_worker_connection)
        app.conf.task_always_eager = True
        root.setLevel(level)
        root.handlers[:] = handlers


@pytest.fixture
def celery_worker(settings):
    """Four worker threads in this process consuming every queue; Celery is not eager."""
    with _running_worker(settings, pool="threads", concurrency=4, shutdown_timeout=60) as worker:
        yield worker


@pytest.fixture
def celery_worker_processes(settings):
    """Worker processes (prefork) for CPU-heavy work: the pool forks from this process, so
    the children share the test database settings and open their own connections."""
    with _running_worker(settings, pool="prefork", concurrency=3, shutdown_timeout=60) as worker:
        yield worker


@pytest.fixture
def task_runs():
    """How many times each task (by name) has finished on the worker during the test."""
    runs: Counter = Counter()
    lock = threading.Lock()

    def count(sender=None, **_kwargs) -> None:
        with lock:
            runs[sender.name] += 1

    task_postrun.connect(count, weak=False)
    yield runs
    task_postrun.disconnect(count)


def wait_for(condition: Callable[[], object], *, timeout: float = 30.0, every: float = 0.05):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)

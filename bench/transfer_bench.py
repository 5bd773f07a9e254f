"""Transfer throughput and latency: the service layer and the HTTP API, uniform and hot-account.

    DATABASE_URL=... python bench/transfer_bench.py [--clients 1 8 32] [--duration 10]

Each run uses 1,000 funded accounts in its own database (`wallet_bench`, recreated), worker
processes with one thread and one connection per client, and checks conservation afterwards.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DATABASE", "wallet_bench")
INITIAL = Decimal("1000000.00")
# gunicorn: sync workers (threads 1) by default. A keep-alive connection stays with the
# process that accepted it, so with threaded workers a few connections can pile onto one
# process (one GIL) while others idle; a sync worker takes one request per connection
# from the shared accept queue, so every process stays busy. Two per core: a request now
# waits little on the database, and more processes only add switching (4 per core measured
# about 20 % fewer requests/s at 8 clients on 2 cores).
HTTP_WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", str(2 * (os.cpu_count() or 2))))
HTTP_THREADS = int(os.environ.get("BENCH_HTTP_THREADS", "1"))


def bench_database_url() -> str:
    base = os.environ["DATABASE_URL"]
    parsed = urlparse(base)
    return parsed._replace(path=f"/{BENCH_DB}").geturl()


def _django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()


# ------------------------------------------------------------------ setup
def prepare(accounts: int) -> list[int]:
    """Recreate the bench database, migrate, create and fund `accounts` users."""
    import psycopg

    admin_url = urlparse(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [BENCH_DB],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    _django(bench_database_url())
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from transactions import services

    users = User.objects.bulk_create(
        [
            User(username=f"bench{i:04d}", email=f"bench{i:04d}@example.com", password="!")
            for i in range(accounts)
        ]
    )
    for user in users:
        services.credit(actor=user, user=user, amount=INITIAL, currency="USD")
    return [u.pk for u in users]


def conservation_ok(expected_total: Decimal) -> tuple[bool, str]:
    from django.db import connection

    from balances.selectors import LEDGER_CHECKS

    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(amount) FROM balances")
        total = cursor.fetchone()[0]
        problems = []
        for name, sql in LEDGER_CHECKS.items():
            cursor.execute(sql)
            rows = cursor.fetchall()
            if name == "zero_sum_per_currency":
                rows = [r for r in rows if r[1] != 0]
            if rows:
                problems.append(name)
    ok = total == expected_total and not problems
    return ok, f"total {total} (expected {expected_total}) {'; '.join(problems) or 'invariants ok'}"


# ------------------------------------------------------------------ load
def _pair(ids: list[int], hot: bool, rng: random.Random) -> tuple[int, int]:
    if hot:
        return rng.choice(ids[1:]), ids[0]
    a, b = rng.sample(ids, 2)
    return a, b


def _service_worker(args) -> dict:
    database_url, ids, hot, threads, duration, start_at, audit = args
    _django(database_url)
    if not audit:
        _without_audit_events()
    from django.db import connection

    from accounts.models import User
    from transactions import services
    from wallet_project.errors import WalletError

    users = {u.pk: u for u in User.objects.filter(pk__in=ids)}
    connection.close()
    results: list[dict] = []

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        while time.time() < end:
            a, b = _pair(ids, hot, rng)
            began = time.perf_counter()
            try:
                services.transfer(
                    actor=users[a],
                    sender=users[a],
                    recipient=users[b],
                    amount=Decimal(rng.randint(1, 100)),
                    currency="USD",
                )
                latencies.append(time.perf_counter() - began)
            except WalletError as exc:
                errors[exc.code] = errors.get(exc.code, 0) + 1
            except Exception as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        connection.close()
        results.append({"latencies": latencies, "errors": errors})

    workers = [
        threading.Thread(target=loop, args=(random.randrange(10**9),)) for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return _merge(results)


def _without_audit_events() -> None:
    """For the chain-cost comparison only: the same transfer with no audit events written.

    It leaves the balances' chain heads empty, so it runs last on the bench database."""
    from transactions.services import movements

    movements.add_events = lambda batch, *, events: None
    import audit.services

    audit.services.event_hash = lambda **fields: ""


class _Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator shares the machine with the
    server, so every microsecond it spends parsing is one the server does not get
    (http.client parses each response's headers with the email package)."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def _fill(self, sock: socket.socket) -> None:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buffer += chunk

    def _read(self, sock: socket.socket, length: int) -> bytes:
        while len(self.buffer) < length:
            self._fill(sock)
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return data

    def post(self, path: str, body: bytes, headers: str) -> tuple[int, bytes]:
        sock = self.sock or self._connect()
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n".encode()
            + body
        )
        while b"\r\n\r\n" not in self.buffer:
            self._fill(sock)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head[9:12])
        fields = head.lower()
        start = fields.find(b"\r\ncontent-length:")
        if start >= 0:
            stop = fields.find(b"\r\n", start + 2)
            length = int(fields[start + 17 : stop if stop > 0 else len(fields)])
            payload = self._read(sock, length)
        else:  # Transfer-Encoding: chunked
            payload = b""
            while True:
                while b"\r\n" not in self.buffer:
                    self._fill(sock)
                size_line, _, self.buffer = self.buffer.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                payload += self._read(sock, size)
                self._read(sock, 2)  # the CRLF after each chunk
                if size == 0:
                    break
        if b"\r\nconnection: close" in fields:
            self.close()
        return status, payload


def _http_worker(args) -> dict:
    base, tokens, ids, hot, threads, duration, start_at = args
    parsed = urlparse(base)
    results: list[dict] = []
    auth = {key: f"Authorization: Bearer {token}\r\n" for key, token in tokens.items()}

    def loop(seed: int) -> None:
        rng = random.Random(seed)
        conn = _Connection(parsed.hostname, parsed.port)
        latencies: list[float] = []
        errors: dict[str, int] = {}
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        while time.time() < end:
            a, b = _pair(ids, hot, rng)
            body = f'{{"to_user_id": {b}, "amount": "{rng.randint(1, 100)}.00"}}'.encode()
            headers = f"{auth[str(a)]}Idempotency-Key: {uuid.uuid4().hex}\r\n"
            began = time.perf_counter()
            try:
                status, payload = conn.post("/api/v1/transactions/transfer", body, headers)
                if status == 201:
                    latencies.append(time.perf_counter() - began)
                else:
                    code = json.loads(payload).get("error", {}).get("code", str(status))
                    errors[code] = errors.get(code, 0) + 1
            except (OSError, ValueError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                conn.close()
        conn.close()
        results.append({"latencies": latencies, "errors": errors})

    workers = [
        threading.Thread(target=loop, args=(random.randrange(10**9),)) for _ in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return _merge(results)


WRK_SCRIPT = ROOT / "bench" / "wrk" / "transfer.lua"


def wrk_available() -> bool:
    """The HTTP load comes from wrk (C, epoll) when it is installed and not turned off.

    The load generator shares the two cores with the server, PostgreSQL and Redis; the
    Python client spends about 0.3 ms of CPU per request that the server does not get.
    `BENCH_HTTP_CLIENT=python` uses the Python client instead.
    """
    return os.environ.get("BENCH_HTTP_CLIENT", "wrk") == "wrk" and shutil.which("wrk") is not None


def _run_wrk(
    base: str, tokens: dict[str, str], ids: list[int], hot: bool, clients: int, duration: float
) -> dict:
    """`clients` connections from wrk for `duration` seconds; counts, errors and latency."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as accounts:
        entries = ", ".join(f'[{pk}] = "{tokens[str(pk)]}"' for pk in ids)
        accounts.write(f"return {{ids = {{{', '.join(map(str, ids))}}}, tokens = {{{entries}}}}}\n")
    try:
        out = subprocess.run(
            [
                "wrk",
                "--threads",
                str(min(clients, os.cpu_count() or 2)),
                "--connections",
                str(clients),
                "--duration",
                f"{int(duration)}s",
                "--timeout",
                "30s",
                "--script",
                str(WRK_SCRIPT),
                base,
            ],
            env={
                **os.environ,
                "WALLET_BENCH_ACCOUNTS": accounts.name,
                "WALLET_BENCH_HOT": "1" if hot else "0",
            },
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(accounts.name)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "count": report["created"],
        "p50": report["p50_us"] / 1e6,
        "p99": report["p99_us"] / 1e6,
        "errors": report["errors"],
        "duration": duration,
        "client": "wrk",
    }


def _merge(parts: list[dict]) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for part in parts:
        latencies.extend(part["latencies"])
        for code, n in part["errors"].items():
            errors[code] = errors.get(code, 0) + n
    return {"latencies": latencies, "errors": errors}


def _split(clients: int) -> list[int]:
    processes = min(clients, int(os.environ.get("BENCH_PROCESSES", str(os.cpu_count() or 2))))
    return [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]


def _run_pool(worker, make_args, clients: int, duration: float) -> dict:
    start_at = time.time() + 4.0
    shares = _split(clients)
    ctx = mp.get_context("spawn")
    with ctx.Pool(len(shares)) as pool:
        parts = pool.map(worker, [make_args(threads, start_at) for threads in shares])
    merged = _merge(parts)
    merged["duration"] = duration
    return merged


def summarize(name: str, clients: int, result: dict) -> dict:
    if "count" in result:  # from wrk: counted and ranked there
        count, p50, p99 = result["count"], result["p50"], result["p99"]
    else:
        lat = sorted(result["latencies"])
        count = len(lat)
        p50 = statistics.median(lat) if lat else None
        p99 = lat[min(count - 1, int(count * 0.99))] if lat else None
    return {
        "variant": name,
        "clients": clients,
        "tps": count / result["duration"],
        "p50_ms": p50 * 1000 if p50 is not None else None,
        "p99_ms": p99 * 1000 if p99 is not None else None,
        "errors": result["errors"],
        "count": count,
        "client": result.get("client", "python"),
    }


# ------------------------------------------------------------------ HTTP server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, workers: int):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
        "THROTTLE_USER": "100000000/min",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wallet_project.wsgi:application",
            "--workers",
            str(workers),
            "--threads",
            str(HTTP_THREADS),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health/live")
            if conn.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def tokens_for(ids: list[int]) -> dict[str, str]:
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User

    return {str(u.pk): str(AccessToken.for_user(u)) for u in User.objects.filter(pk__in=ids)}


# ------------------------------------------------------------------ main
def run(
    *,
    clients_list: list[int],
    duration: float,
    accounts: int = 1000,
    http_workers: int = HTTP_WORKERS,
    variants: tuple[str, ...] = ("service", "http", "service-noaudit"),
) -> list[dict]:
    ids = prepare(accounts)
    database_url = bench_database_url()
    rows: list[dict] = []
    expected = INITIAL * accounts
    for variant in variants:
        for hot in (False, True):
            if variant == "service-noaudit" and hot:
                continue
            name = f"{variant} {'hot' if hot else 'uniform'}"
            for clients in clients_list:
                if variant == "http":
                    tokens = tokens_for(ids)
                    with gunicorn(database_url, http_workers) as base:
                        if wrk_available():
                            result = _run_wrk(base, tokens, ids, hot, clients, duration)
                        else:
                            result = _run_pool(
                                _http_worker,
                                lambda threads, start_at, base=base, tokens=tokens, hot=hot: (
                                    base,
                                    tokens,
                                    ids,
                                    hot,
                                    threads,
                                    duration,
                                    start_at,
                                ),
                                clients,
                                duration,
                            )
                else:
                    audit = variant == "service"
                    result = _run_pool(
                        _service_worker,
                        lambda threads, start_at, hot=hot, audit=audit: (
                            database_url,
                            ids,
                            hot,
                            threads,
                            duration,
                            start_at,
                            audit,
                        ),
                        clients,
                        duration,
                    )
                row = summarize(name, clients, result)
                ok, note = conservation_ok(expected)
                row["conserved"] = ok
                row["check"] = note
                rows.append(row)
                print(
                    f"{name:24} c={clients:<3} {row['tps']:8.1f}/s p50 {row['p50_ms'] or 0:7.2f} ms "
                    f"p99 {row['p99_ms'] or 0:7.2f} ms errors {row['errors']} "
                    f"{'conserved' if ok else 'NOT CONSERVED: ' + note}",
                    flush=True,
                )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=["service", "http", "service-noaudit"],
        default=["service", "http", "service-noaudit"],
        help="service-noaudit leaves the chain heads empty, so it must come last.",
    )
    parser.add_argument("--json", help="Write the rows to this file.")
    args = parser.parse_args()
    if "service-noaudit" in args.variants[:-1]:
        parser.error("service-noaudit leaves the chain heads empty: put it last")
    rows = run(
        clients_list=args.clients,
        duration=args.duration,
        accounts=args.accounts,
        variants=tuple(args.variants),
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0 if all(r["conserved"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

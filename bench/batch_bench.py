"""Batch transfer throughput: a 10,000-item atomic batch and a chunked batch, through workers.

    DATABASE_URL=... REDIS_URL=... python bench/batch_bench.py [--accounts 1000] [--items 10000]
        [--kinds atomic,chunked]

Recreates its own database (`wallet_batch_bench`), creates and funds the accounts through
the services, starts two Celery worker processes, then submits each batch (an admin
paying between random accounts) and measures from submission until the batch is
finished. Conservation and the ledger invariants are checked after each run.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BATCH_BENCH_DATABASE", "wallet_batch_bench")
INITIAL = Decimal("1000.00")
WORKERS = 2


def _bench_database_url() -> str:
    return urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{BENCH_DB}").geturl()


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = _bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()


def _recreate_database() -> None:
    import psycopg

    admin_url = urlparse(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [BENCH_DB],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def prepare(accounts: int):
    """Migrate, then create `accounts` users (and one admin) and fund them via `credit`."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.models import User
    from transactions import services

    admin = User.objects.create(
        username="bench-admin", email="bench-admin@example.com", role="admin", password="!"
    )
    users = User.objects.bulk_create(
        [
            User(username=f"batch{i:04d}", email=f"batch{i:04d}@example.com", password="!")
            for i in range(accounts)
        ]
    )
    for user in users:
        services.credit(actor=admin, user=user, amount=INITIAL, currency="USD")
    return admin, [u.pk for u in users]


def ledger_ok(expected_total: Decimal) -> tuple[bool, str]:
    """Conservation (the users' total is unchanged) and every ledger invariant."""
    from django.db.models import Sum

    from balances.models import Balance

    sys.path.insert(0, str(ROOT))
    from tests.ledger import ledger_violations

    total = Balance.objects.filter(currency_id="USD").aggregate(s=Sum("amount"))["s"]
    violations = ledger_violations()
    ok = total == expected_total and not violations
    return ok, f"total {total} (expected {expected_total}); violations {violations or 'none'}"


@contextmanager
def worker_processes(count: int):
    """`count` Celery worker processes (one solo worker each) on the bench database."""
    env = {**os.environ, "DATABASE_URL": _bench_database_url(), "LOG_LEVEL": "WARNING"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "wallet_project",
                "worker",
                "-P",
                "solo",
                "-Q",
                "transactions",
                "-n",
                f"batch-bench-{n}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "WARNING",
            ],
            cwd=ROOT,
            env=env,
        )
        for n in range(count)
    ]
    try:
        from wallet_project.celery import app

        deadline = time.monotonic() + 60
        while len(app.control.ping(timeout=1.0) or []) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)


def _items(user_ids: list[int], count: int, seed: int):
    from transactions.services import BatchItemInput

    rng = random.Random(seed)
    items = []
    for _ in range(count):
        sender, recipient = rng.sample(user_ids, 2)
        items.append(
            BatchItemInput(
                from_user_id=sender,
                to_user_id=recipient,
                amount=Decimal(rng.randint(1, 500)) / 100,
                currency="USD",
            )
        )
    return items


def _measure(*, admin, items, atomic: bool, timeout: float = 600.0) -> dict:
    from transactions import services
    from transactions.models import BatchStatus, TransferBatch

    started = time.perf_counter()
    batch = services.create_batch(actor=admin, items=items, atomic=atomic)
    while True:
        current = TransferBatch.objects.get(pk=batch.pk)
        if current.status in (BatchStatus.COMPLETED, BatchStatus.FAILED):
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"batch {batch.pk} did not finish: {current}")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    return {
        "kind": "atomic" if atomic else f"chunked ({WORKERS} workers)",
        "items": len(items),
        "status": current.status,
        "succeeded": current.succeeded,
        "failed": current.failed,
        "seconds": round(elapsed, 3),
        "transfers_per_second": round(current.succeeded / elapsed, 1),
    }


KINDS = {"atomic": True, "chunked": False}


def run(
    accounts: int = 1000, items: int = 10000, kinds: tuple[str, ...] = ("atomic", "chunked")
) -> list[dict]:
    """Set up the bench database, then measure a batch of `items` of each kind, in order."""
    _recreate_database()
    _setup_django()
    admin, user_ids = prepare(accounts)
    expected = INITIAL * accounts
    results = []
    with worker_processes(WORKERS):
        for seed, kind in enumerate(kinds, start=1):
            batch_items = _items(user_ids, items, seed)
            result = _measure(admin=admin, items=batch_items, atomic=KINDS[kind])
            result["ledger_ok"], result["ledger"] = ledger_ok(expected)
            results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument(
        "--kinds",
        default="atomic,chunked",
        help="Comma-separated batches to measure, in order (atomic, chunked; repeats allowed).",
    )
    parser.add_argument("--json", help="Also write the results to this file.")
    args = parser.parse_args()
    kinds = tuple(args.kinds.split(","))
    if not set(kinds) <= set(KINDS):
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    results = run(accounts=args.accounts, items=args.items, kinds=kinds)
    if args.json:
        Path(args.json).write_text(json.dumps(results, default=str))
    print(f"{'batch':<24}{'items':>8}{'status':>11}{'ok':>7}{'seconds':>9}{'transfers/s':>13}")
    for r in results:
        print(
            f"{r['kind']:<24}{r['items']:>8}{r['status']:>11}{r['succeeded']:>7}"
            f"{r['seconds']:>9}{r['transfers_per_second']:>13}   ledger "
            f"{'ok' if r['ledger_ok'] else 'BROKEN: ' + r['ledger']}"
        )
    if not all(r["ledger_ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()

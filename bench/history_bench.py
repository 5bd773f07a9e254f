"""Reads at scale: one account with a million entries must read as fast as a typical one.

    DATABASE_URL=... .venv/bin/python bench/history_bench.py [--reuse] [--json out.json]

Builds, in its own database (`wallet_history_bench`, dropped and made again unless
`--reuse` finds it built), a ledger of 1,000 typical users with about 1,000 balance
entries each and one *big* user with 1,000,000, spread over the same year, then measures
for the big user and a typical one (user 500), interleaved so the machine's drift hits both
alike, over HTTP (gunicorn, JWT, one keep-alive client; median and p95 of
`BENCH_HISTORY_RUNS`, 50 by default) and at the selector (the selector and its cursor page
in-process, no HTTP, authentication or rendering; median), with the shared buffers the
read's statements touch (EXPLAIN ANALYZE BUFFERS), which the machine's speed does not move:

- `balances/at-time` (an instant in the middle of the year);
- `balances/historical` without `interval` (the first page), and `interval=day` over the
  last 30 days, over the whole year, and with no `from`/`to`;
- `transactions/history` page 1 and page 50, 20 rows a page (the cursor reached by
  following `next`; the typical user's 1,001 transactions make 50 pages);
- then the console's pages that read one user's history (`--skip-console` leaves them
  out): the user page, the user's balance entries, the user's transactions, and the CSV
  statement of one day (whose cost follows the rows it exports).

It is not part of `make test`. `BENCH_HISTORY_USERS` and `BENCH_HISTORY_BIG` make a smaller
ledger for a quick look.

Targets: every read of the big user within 1.5x of the typical user's; daily history over a
year under 50 ms at the selector; no read over the read timeout (`API_READ_TIMEOUT_MS`).

The ledger is written with `INSERT ... SELECT generate_series` in one transaction, and is the
ledger the services would have written:
- `transactions`: 500,000 transfers of 1.00 among the typical users (each sends 500 and
  receives 500, evenly over the year), a funding credit of 1,000.00 per typical user the day
  before, and the big user's 1,000,000 movements (credits of 2.00 and debits of 1.00, two
  credits per debit, so the balance never goes below zero); all `completed`, in USD;
- `balance_entries`: one per balance touched (sender -1.00, recipient +1.00), plus the
  world account's leg of every credit and debit (no balance, no user), in time order (ids
  follow `created_at`, as when the services write them), each user's `balance_after` the
  running sum of its deltas in `(created_at, id)` order;
- `balances`: one per user, the sum of its entries, `entry_count`, `last_updated_at`.
The foreign-key triggers are off while the rows go in (`session_replication_role =
replica`; checking 10 million references one by one would take most of the build); the
checks, NOT NULL and unique constraints apply as usual, and afterwards every reference is
checked in bulk, with the ledger invariants of `audit.reconciliation.LEDGER_CHECKS` and each
entry's running `balance_after`. No audit events are written: none of these reads touches
`audit_logs`, and the ledger invariants do not involve them (a fresh `verify_audit` or
`replay_events` on this database would report the missing chains).
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DB = os.environ.get("BENCH_HISTORY_DATABASE", "wallet_history_bench")
USERS = int(os.environ.get("BENCH_HISTORY_USERS", "1000"))
ENTRIES_PER_USER = 1000
BIG_ENTRIES = int(os.environ.get("BENCH_HISTORY_BIG", "1000000"))
SPAN = timedelta(days=365)

_BUILD = """
SET LOCAL session_replication_role = replica;
SET LOCAL work_mem = '512MB';

INSERT INTO users (id, password, is_superuser, username, email, is_staff, is_active,
                   date_joined, role, created_at, updated_at)
SELECT g, '!', false, 'h' || g, 'h' || g || '@example.com', false, true,
       %(t0)s, 'user', %(t0)s, %(t0)s
FROM generate_series(1, %(users)s + 1) g;

-- One row per transaction: k orders each user's movements; the big user is id users + 1.
CREATE TEMP TABLE moves ON COMMIT DROP AS
SELECT k, md5('t' || k)::uuid AS txn, 'transfer' AS type,
       1 + k %% %(users)s AS sender,
       1 + (k + 1 + (k / %(users)s) %% (%(users)s - 1)) %% %(users)s AS recipient,
       1.00::numeric AS amount,
       %(t0)s::timestamptz + k * (%(span)s::interval / %(transfers)s) AS at
FROM generate_series(1, %(transfers)s) k
UNION ALL
SELECT -g, md5('f' || g)::uuid, 'credit', NULL, g, 1000.00,
       %(t0)s::timestamptz - interval '1 day' + g * interval '1 millisecond'
FROM generate_series(1, %(users)s) g
UNION ALL
SELECT %(transfers)s + j, md5('b' || j)::uuid,
       CASE WHEN j %% 3 = 0 THEN 'debit' ELSE 'credit' END,
       CASE WHEN j %% 3 = 0 THEN %(users)s + 1 END,
       CASE WHEN j %% 3 = 0 THEN NULL ELSE %(users)s + 1 END,
       CASE WHEN j %% 3 = 0 THEN 1.00 ELSE 2.00 END,
       %(t0)s::timestamptz + j * (%(span)s::interval / %(big)s)
FROM generate_series(1, %(big)s) j;

INSERT INTO transactions (id, type, status, from_user_id, to_user_id, amount, currency,
                          description, created_at, completed_at, initiated_by_id)
SELECT txn, type, 'completed', sender, recipient, amount, 'USD', '', at, at,
       coalesce(sender, recipient)
FROM moves ORDER BY at, k;

-- One row per entry: the sender's, the recipient's, and the world's leg of a credit or debit.
CREATE TEMP TABLE legs ON COMMIT DROP AS
SELECT k, txn, sender AS user_id, -amount AS delta, at FROM moves WHERE sender IS NOT NULL
UNION ALL
SELECT k, txn, recipient, amount, at FROM moves WHERE recipient IS NOT NULL
UNION ALL
SELECT k, txn, NULL, CASE WHEN sender IS NULL THEN -amount ELSE amount END, at
FROM moves WHERE sender IS NULL OR recipient IS NULL;

INSERT INTO balances (id, user_id, currency, amount, entry_count, head_hash, created_at,
                      last_updated_at)
SELECT user_id, user_id, 'USD', sum(delta), count(*), '', min(at), max(at)
FROM legs WHERE user_id IS NOT NULL GROUP BY user_id;

INSERT INTO balance_entries (balance_id, user_id, currency, transaction_id, delta,
                             balance_after, created_at)
SELECT user_id, user_id, 'USD', txn, delta,
       CASE WHEN user_id IS NOT NULL
            THEN sum(delta) OVER (PARTITION BY user_id ORDER BY at, k) END,
       at
FROM legs ORDER BY at, k, user_id NULLS LAST;

SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users));
SELECT setval(pg_get_serial_sequence('balances', 'id'), (SELECT max(id) FROM balances));
"""

# Every reference the skipped foreign-key triggers would have checked, in bulk.
_REFERENCES = {
    "entries_to_transactions": """
        SELECT count(*) FROM balance_entries e
        WHERE NOT EXISTS (SELECT 1 FROM transactions t WHERE t.id = e.transaction_id)""",
    "entries_to_balances": """
        SELECT count(*) FROM balance_entries e
        WHERE e.balance_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM balances b WHERE b.id = e.balance_id
                          AND b.user_id = e.user_id AND b.currency = e.currency)""",
    "transactions_to_users": """
        SELECT count(*) FROM transactions t
        WHERE (t.from_user_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.from_user_id))
           OR (t.to_user_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.to_user_id))""",
    "running_balance_after": """
        SELECT count(*) FROM (
            SELECT balance_after,
                   sum(delta) OVER (PARTITION BY user_id ORDER BY created_at, id) AS running
            FROM balance_entries WHERE user_id IS NOT NULL) e
        WHERE balance_after <> running""",
}


def _admin_url() -> str:
    return urlparse(os.environ["DATABASE_URL"])._replace(path="/postgres").geturl()


def _bench_url() -> str:
    return urlparse(os.environ["DATABASE_URL"])._replace(path=f"/{DB}").geturl()


def _is_built() -> bool:
    import psycopg

    try:
        with psycopg.connect(_bench_url()) as conn:
            row = conn.execute(
                "SELECT count(*) FROM balances WHERE entry_count >= %s", [BIG_ENTRIES]
            ).fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def _django() -> None:
    os.environ["DATABASE_URL"] = _bench_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()


def build() -> dict:
    """Drop and make the database, migrate, write the ledger, check it; returns timings."""
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [DB]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    _django()
    from django.core.management import call_command
    from django.db import connection, transaction

    from balances.selectors import LEDGER_CHECKS

    call_command("migrate", verbosity=0)
    end = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    params = {
        "t0": end - SPAN,
        "span": SPAN,
        "users": USERS,
        "transfers": USERS * ENTRIES_PER_USER // 2,
        "big": BIG_ENTRIES,
    }
    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in filter(str.strip, _BUILD.split(";\n")):
            cursor.execute(statement, params)
    written = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        problems = {}
        for name, sql in _REFERENCES.items():
            cursor.execute(sql)
            if cursor.fetchone()[0]:
                problems[name] = "broken"
        for name, sql in LEDGER_CHECKS.items():
            cursor.execute(sql)
            rows = cursor.fetchall()
            if name == "zero_sum_per_currency":
                rows = [row for row in rows if row[1] != 0]
            if rows:
                problems[name] = f"{len(rows)} rows"
    if problems:
        raise SystemExit(f"the built ledger breaks its invariants: {problems}")
    return {
        "write_seconds": round(written, 1),
        "total_seconds": round(time.perf_counter() - began, 1),
    }


# ------------------------------------------------------------------ the reads
TYPICAL = USERS // 2
BIG = USERS + 1
RUNS = int(os.environ.get("BENCH_HISTORY_RUNS", "50"))
PAGE = 20  # history pages of 20: a typical user's 1,001 transactions make 50 of them


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _reads(end: datetime) -> list[tuple[str, str, dict]]:
    """(name, path, query) of each read; page 50's query is filled in per user."""
    month = {"interval": "day", "from": _iso(end - timedelta(days=30)), "to": _iso(end)}
    year = {"interval": "day", "from": _iso(end - SPAN), "to": _iso(end)}
    return [
        (
            "balances/at-time (mid-year)",
            "/api/v1/balances/at-time",
            {"timestamp": _iso(end - SPAN / 2)},
        ),
        ("balances/historical, every change, page 1", "/api/v1/balances/historical", {}),
        ("balances/historical, daily, 30 days", "/api/v1/balances/historical", month),
        ("balances/historical, daily, one year", "/api/v1/balances/historical", year),
        (
            "balances/historical, daily, no from/to",
            "/api/v1/balances/historical",
            {"interval": "day"},
        ),
        ("transactions/history, page 1", "/api/v1/transactions/history", {"page_size": PAGE}),
        ("transactions/history, page 50", "/api/v1/transactions/history", {}),
    ]


def _end_of_history() -> datetime:
    from balances.models import Balance

    return Balance.objects.get(user_id=BIG).last_updated_at


def _page_fifty(user_id: int) -> str:
    """The query string of the user's 50th history page (cursor followed from the first)."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from transactions.selectors import list_transaction_history
    from wallet_project.pagination import CursorPagination

    url = f"/api/v1/transactions/history?page_size={PAGE}"
    for _ in range(49):
        paginator = CursorPagination()
        paginator.paginate_queryset(
            list_transaction_history(user_id=user_id), Request(APIRequestFactory().get(url))
        )
        link = urlparse(paginator.get_next_link())
        url = f"{link.path}?{link.query}"
    return url.partition("?")[2]


def _selector_read(name: str, path: str, query: str):
    """The read at the selector: the selector and its cursor page, in-process (no HTTP, no
    authentication, no rendering, no read transaction)."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from balances import selectors as balances
    from balances.views import HistoryPagination
    from transactions.selectors import list_transaction_history
    from wallet_project.pagination import CursorPagination

    request = Request(APIRequestFactory().get(f"{path}?{query}"))
    params = request.query_params
    parse = datetime.fromisoformat

    def read(user_id: int):
        if "at-time" in name:
            return balances.balance_at(
                user_id=user_id, currency="USD", at=parse(params["timestamp"])
            )
        if "balances/historical" in name:
            bounds = {
                k: parse(params[q]) for k, q in (("start", "from"), ("end", "to")) if q in params
            }
            rows = balances.list_balance_history(
                user_id=user_id, interval=params.get("interval"), **bounds
            )
            return HistoryPagination().paginate_queryset(rows, request)
        return CursorPagination().paginate_queryset(
            list_transaction_history(user_id=user_id), request
        )

    return read


def _buffers(read, user_id: int) -> int:
    """Shared buffers the read's statements touched (EXPLAIN ANALYZE BUFFERS of each one)."""
    from django.db import connection

    touched = 0

    def explain(execute, sql, params, many, context):
        nonlocal touched
        if sql.lstrip().upper().startswith(("SELECT", "(SELECT", "WITH")):
            # A cursor of its own: the read's may be a server-side one (a streamed export).
            with connection.connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
                plan = cursor.fetchone()[0][0]["Plan"]
            touched += plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        read(user_id)
    return touched


def _summary(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


class _Http:
    """One keep-alive connection to the server, as a client would hold."""

    def __init__(self, base: str) -> None:
        url = urlparse(base)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def get(self, path: str, token: str) -> tuple[int, float]:
        started = time.perf_counter()
        self.connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = self.connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started


def measure() -> dict:
    """Every read for both users, interleaved (drift hits both alike); returns the rows."""
    from django.conf import settings
    from transfer_bench import HTTP_WORKERS, gunicorn, tokens_for

    end = _end_of_history()
    reads = _reads(end)
    fifty = {user_id: _page_fifty(user_id) for user_id in (TYPICAL, BIG)}
    tokens = tokens_for([TYPICAL, BIG])
    rows, statuses, slowest = [], {}, 0.0
    with gunicorn(_bench_url(), HTTP_WORKERS) as base:
        client = _Http(base)
        for name, path, query in reads:
            queries = {
                user_id: fifty[user_id] if name.endswith("page 50") else urlencode(query)
                for user_id in (TYPICAL, BIG)
            }
            http_times = {TYPICAL: [], BIG: []}
            selector_times = {TYPICAL: [], BIG: []}
            selectors = {u: _selector_read(name, path, q) for u, q in queries.items()}
            for run in range(RUNS + 5):
                for user_id in (TYPICAL, BIG):
                    status, seconds = client.get(f"{path}?{queries[user_id]}", tokens[str(user_id)])
                    statuses[status] = statuses.get(status, 0) + 1
                    slowest = max(slowest, seconds)
                    started = time.perf_counter()
                    selectors[user_id](user_id)
                    elapsed = time.perf_counter() - started
                    if run >= 5:  # the first runs warm caches and prepare statements
                        http_times[user_id].append(seconds)
                        selector_times[user_id].append(elapsed)
            row = {"read": name}
            for label, user_id in (("typical", TYPICAL), ("big", BIG)):
                row[f"{label}_http_ms"] = _summary(http_times[user_id])
                row[f"{label}_selector_ms"] = _summary(selector_times[user_id])[0]
                row[f"{label}_buffers"] = _buffers(selectors[user_id], user_id)
            row["http_ratio"] = row["big_http_ms"][0] / row["typical_http_ms"][0]
            row["selector_ratio"] = row["big_selector_ms"] / row["typical_selector_ms"]
            rows.append(row)
            print(_line(row), flush=True)
    return {
        "rows": rows,
        "statuses": statuses,
        "slowest_ms": round(slowest * 1000, 1),
        "read_timeout_ms": settings.API_READ_TIMEOUT_MS,
    }


def _line(row: dict) -> str:
    t, b = row["typical_http_ms"], row["big_http_ms"]
    return (
        f"| {row['read']} | {t[0]:.1f} / {t[1]:.1f} | {b[0]:.1f} / {b[1]:.1f} | "
        f"{row['http_ratio']:.2f} | {row['typical_selector_ms']:.2f} | "
        f"{row['big_selector_ms']:.2f} | {row['selector_ratio']:.2f} | "
        f"{row['typical_buffers']} / {row['big_buffers']} |"
    )


HEADER = (
    "| read | typical HTTP median / p95 ms | big HTTP median / p95 ms | big / typical | "
    "typical selector ms | big selector ms | big / typical | buffers typical / big |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- |"
)


CONSOLE_RUNS = 10


def _console_pages(user_id: int, day: str) -> list[tuple[str, str]]:
    return [
        ("user page", f"/admin/accounts/user/{user_id}/change/"),
        ("balance entries of the user", f"/admin/balances/balanceentry/?user__id__exact={user_id}"),
        (
            "balance entries of the user, USD, page 20",
            f"/admin/balances/balanceentry/?user__id__exact={user_id}&currency__code__exact=USD&p=20",
        ),
        ("transactions of the user (party)", f"/admin/transactions/transaction/?party={user_id}"),
        (
            "statement CSV, one day",
            f"/admin/accounts/user/{user_id}/statement/?currency=USD&start={day}&end={day}",
        ),
    ]


def console() -> list[dict]:
    """The console's pages that read one user's history, in-process (Django's test client,
    logged in as an admin): median of CONSOLE_RUNS, and the buffers their statements touch."""
    from django.db import connection
    from django.test import Client

    from accounts.models import User

    staff, _ = User.objects.get_or_create(
        username="bench-admin",
        defaults={"email": "bench-admin@example.com", "role": "admin", "is_staff": True},
    )
    client = Client()
    client.force_login(staff)
    day = str((_end_of_history() - timedelta(days=1)).date())

    def get(url: str) -> int | None:
        """Read the page; a CSV's rows are counted."""
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        if not response.streaming:
            return None
        return b"".join(response.streaming_content).count(b"\n") - 1  # less the header

    rows = []
    pages = {user_id: dict(_console_pages(user_id, day)) for user_id in (TYPICAL, BIG)}
    for name in pages[TYPICAL]:
        row = {"page": name}
        times = {TYPICAL: [], BIG: []}
        for run in range(CONSOLE_RUNS + 2):
            for user_id in (TYPICAL, BIG):
                started = time.perf_counter()
                get(pages[user_id][name])
                if run >= 2:
                    times[user_id].append(time.perf_counter() - started)
        for label, user_id in (("typical", TYPICAL), ("big", BIG)):
            url = pages[user_id][name]
            row[f"{label}_ms"] = statistics.median(times[user_id]) * 1000
            row[f"{label}_buffers"] = _buffers(lambda _, url=url: get(url), user_id)
            row[f"{label}_rows"] = get(url)
        row["ratio"] = row["big_ms"] / row["typical_ms"]
        rows.append(row)
        exported = f"{row['typical_rows']} / {row['big_rows']}" if row["big_rows"] else "-"
        print(
            f"| {name} | {row['typical_ms']:.1f} | {row['big_ms']:.1f} | {row['ratio']:.2f} | "
            f"{row['typical_buffers']} / {row['big_buffers']} | {exported} |",
            flush=True,
        )
    connection.close()
    return rows


CONSOLE_HEADER = (
    "| console page | typical ms | big ms | big / typical | buffers typical / big | "
    "rows typical / big |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def verdict(result: dict) -> list[str]:
    rows = result["rows"]
    worst = max(max(r["http_ratio"], r["selector_ratio"]) for r in rows)
    year = next(r for r in rows if r["read"].endswith("one year"))
    refused = {s: n for s, n in result["statuses"].items() if s != 200}
    return [
        f"- every read of the big user within 1.5x of the typical user's: worst ratio "
        f"{worst:.2f} {'✓' if worst <= 1.5 else '✗'}",
        f"- daily history over one year at the selector: {year['big_selector_ms']:.1f} ms "
        f"(big), {year['typical_selector_ms']:.1f} ms (typical), target < 50 ms "
        f"{'✓' if max(year['big_selector_ms'], year['typical_selector_ms']) < 50 else '✗'}",
        f"- slowest HTTP read {result['slowest_ms']} ms, read timeout "
        f"{result['read_timeout_ms']} ms; answers other than 200: {refused or 'none'} "
        f"{'✓' if not refused and result['slowest_ms'] < result['read_timeout_ms'] else '✗'}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse", action="store_true", help="Keep the database if built.")
    parser.add_argument("--json", help="Also write the figures to this file.")
    parser.add_argument("--skip-console", action="store_true", help="Only the API reads.")
    args = parser.parse_args()
    if args.reuse and _is_built():
        _django()
        print(f"reusing {DB}", flush=True)
    else:
        print(f"building {DB}: {build()}", flush=True)
    print(HEADER, flush=True)
    result = measure()
    lines = verdict(result)
    print("\n".join(lines), flush=True)
    if not args.skip_console:
        print(CONSOLE_HEADER, flush=True)
        result["console"] = console()
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if all(line.endswith("✓") for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())

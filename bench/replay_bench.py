"""Replay speed: events per second for `replay_events` over a ledger of 1M balance events.

    DATABASE_URL=... python bench/replay_bench.py [--transfers 500000]

Builds a consistent ledger directly in SQL in its own database (`wallet_replay`): 1,000
funded users and N transfers (2N balance events, entries and their balances), then times
`audit.replay.replay_balances()` and checks it finds no difference.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DB = "wallet_replay"

_BUILD = """
INSERT INTO users (id, password, is_superuser, username, email, is_staff, is_active, date_joined,
                   role, created_at, updated_at)
SELECT g, '!', false, 'r' || g, 'r' || g || '@example.com', false, true, now(), 'user', now(), now()
FROM generate_series(1, %(users)s) g;

CREATE TEMP TABLE legs AS
WITH t AS (
    SELECT k, md5('t' || k)::uuid AS txn, 1 + (k %% %(users)s) AS s,
           1 + ((k * 7 + 3 + CASE WHEN (k * 7 + 3) %% %(users)s = k %% %(users)s THEN 1 ELSE 0 END)
                %% %(users)s) AS r,
           timestamptz '2026-01-01' + k * interval '1 millisecond' AS at
    FROM generate_series(1, %(transfers)s) k)
SELECT k, txn, s AS user_id, -1.00::numeric AS delta, at FROM t
UNION ALL SELECT k, txn, r, 1.00, at FROM t
UNION ALL SELECT -g, md5('c' || g)::uuid, g, 1000000.00, timestamptz '2025-12-31'
FROM generate_series(1, %(users)s) g;

INSERT INTO transactions (id, type, status, from_user_id, to_user_id, amount, currency,
                          description, created_at, completed_at)
SELECT txn, CASE WHEN k < 0 THEN 'credit' ELSE 'transfer' END, 'completed',
       min(CASE WHEN delta < 0 THEN user_id END), max(CASE WHEN delta > 0 THEN user_id END),
       max(abs(delta)), 'USD', '', min(at), min(at)
FROM legs GROUP BY k, txn;

INSERT INTO balances (id, user_id, currency, amount, entry_count, head_hash, created_at,
                      last_updated_at)
SELECT user_id, user_id, 'USD', sum(delta), count(*), '', now(), max(at) FROM legs GROUP BY user_id;

CREATE TEMP TABLE seqd AS
SELECT l.*, row_number() OVER w AS seq, sum(delta) OVER w AS after
FROM legs l WINDOW w AS (PARTITION BY user_id ORDER BY k);

INSERT INTO balance_entries (balance_id, user_id, currency, transaction_id, delta, balance_after,
                             created_at)
SELECT user_id, user_id, 'USD', txn, delta, after, at FROM seqd ORDER BY k;
INSERT INTO balance_entries (balance_id, user_id, currency, transaction_id, delta, balance_after,
                             created_at)
SELECT NULL, NULL, 'USD', txn, -delta, NULL, at FROM seqd WHERE k < 0;

INSERT INTO audit_logs (entity_type, entity_id, action, details, created_at, chain, prev_hash, hash)
SELECT 'balance', user_id::text, 'balance.changed',
       jsonb_build_object('user_id', user_id, 'currency', 'USD', 'delta', delta::text,
                          'balance_after', after::text, 'transaction_id', txn::text, 'seq', seq),
       at, 'balance:' || user_id, md5(user_id || ':' || (seq - 1)) || md5('p'),
       md5(user_id || ':' || seq) || md5('p')
FROM seqd ORDER BY k;

UPDATE balances b SET head_hash = md5(b.user_id || ':' || b.entry_count) || md5('p');
"""


def run(transfers: int = 500_000, users: int = 1000) -> dict:
    import psycopg

    base = os.environ["DATABASE_URL"]
    admin = urlparse(base)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}"')
        conn.execute(f'CREATE DATABASE "{DB}"')
    os.environ["DATABASE_URL"] = urlparse(base)._replace(path=f"/{DB}").geturl()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wallet_project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in filter(str.strip, _BUILD.split(";\n")):
            cursor.execute(statement, {"users": users, "transfers": transfers})
    built = time.perf_counter() - began
    from audit.replay import replay_balances

    began = time.perf_counter()
    report = replay_balances()
    seconds = time.perf_counter() - began
    os.environ["DATABASE_URL"] = base
    return {
        "variant": "replay_events",
        "events": report.events,
        "seconds": round(seconds, 2),
        "events_per_s": round(report.events / seconds),
        "matches_live": report.ok,
        "conserved": report.ok,
        "build_seconds": round(built, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transfers", type=int, default=500_000)
    parser.add_argument("--json", help="Also write the result to this file.")
    args = parser.parse_args()
    result = run(transfers=args.transfers)
    print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0 if result["matches_live"] else 1


if __name__ == "__main__":
    sys.exit(main())

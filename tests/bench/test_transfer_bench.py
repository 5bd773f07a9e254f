"""The transfer benchmark of `make bench` still runs: a tiny run of its service-level
variants on a throwaway database, every row with no error and the ledger conserved."""

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.processes import current_database_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY_RUN = ["--clients", "2", "--duration", "1", "--accounts", "20"]
TINY_RUN += ["--variants", "service", "service-noaudit"]


def test_a_tiny_transfer_bench_runs_and_conserves_the_ledger(db):
    # given a database of the bench's own, next to the test database
    bench_db = f"{settings.DATABASES['default']['NAME']}_transfer_bench"
    environment = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": current_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "BENCH_DATABASE": bench_db,
    }
    try:
        # when
        result = subprocess.run(
            [sys.executable, "bench/transfer_bench.py", *TINY_RUN],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        with psycopg.connect(
            current_database_url().replace("postgres://", "postgresql://"), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}"')
    # then
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if " c=2 " in line]
    assert len(rows) == 3, result.stdout
    assert all("errors {}" in row and row.endswith("conserved") for row in rows), rows

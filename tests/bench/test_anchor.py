"""The SQL anchor of `make bench` is part of the repository and runs against the real PostgreSQL."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = ROOT / "bench" / "anchor" / "pgbench_anchor.sh"


def _bench_run_module():
    """bench/run.py as a module; it puts the repository on sys.path, which is restored."""
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def _pg_env(database: str) -> dict[str, str]:
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "PGHOST": db.get("HOST") or "127.0.0.1",
        "PGUSER": db.get("USER") or "postgres",
        "CLIENTS": "1",
        "DURATION": "1",
        "NACCOUNTS": "100",
        "DB": database,
    }
    if db.get("PORT"):
        env["PGPORT"] = str(db["PORT"])
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def test_the_benchmark_runs_the_anchor_of_the_repository():
    # when
    anchor = _bench_run_module().ANCHOR
    # then
    assert anchor.resolve() == ANCHOR.resolve()
    assert anchor.is_file()
    for name in (
        "wallet_schema.sql",
        "wallet_check.sql",
        "wallet_transfer.pgbench",
        "wallet_transfer_hot.pgbench",
    ):
        assert (anchor.parent / name).is_file(), name


@pytest.mark.skipif(
    not (shutil.which("pgbench") and shutil.which("psql")), reason="pgbench and psql are needed"
)
def test_the_anchor_measures_both_wallet_variants_and_checks_the_ledger():
    # given: a throwaway database named after this run's test database, dropped by the script
    database = f"{settings.DATABASES['default']['TEST']['NAME']}_anchor"
    # when
    result = subprocess.run(
        ["bash", str(ANCHOR), "wallet", "hot"],
        env=_pg_env(database),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # then: one tab-separated line per variant with a positive tps, then the ledger check
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "check ok", result.stdout
    figures = {}
    for line in lines[:-1]:
        variant, clients, tps, latency = line.split("\t")
        figures[(variant, int(clients))] = (float(tps), float(latency))
    assert set(figures) == {("wallet", 1), ("hot", 1)}, result.stdout
    assert all(tps > 0 and latency > 0 for tps, latency in figures.values()), figures

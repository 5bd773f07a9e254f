#!/usr/bin/env bash
# The physical-limit anchor for wallet transfers: what PostgreSQL itself does on this machine.
# `make bench` (bench/run.py) runs it in the same run as the project's own benchmarks,
# against the same server, and reports every project figure as a ratio of this one:
# absolute numbers drift between runs, so figures are compared only within one run.
#
# Usage: PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres bench/anchor/pgbench_anchor.sh [wallet] [hot] [tpcb]
# Needs `psql` and `pgbench` on PATH (bench/run.py adds the embedded PostgreSQL's when missing).
# Env: CLIENTS="1 8 32"  DURATION=20 (s)  NACCOUNTS=1000  DB=wallet_anchor (dropped and recreated)
# Output: one line per run: "variant<TAB>clients<TAB>tps<TAB>mean_latency_ms", then "check ok".
#
# wallet: BEGIN; lock two random account rows in id order (SELECT ... FOR UPDATE); debit with
#         CHECK balance >= 0; credit; insert a transaction row; insert two ledger rows; COMMIT.
# hot:    the same, every transfer credits account 1.
# tpcb:   pgbench's built-in tpcb-like script, scale 10.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLIENTS=${CLIENTS:-"1 8 32"}; DURATION=${DURATION:-20}; NACCOUNTS=${NACCOUNTS:-1000}
DB=${DB:-wallet_anchor}; INITIAL=1000000000
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
variants=("$@"); [ ${#variants[@]} -eq 0 ] && variants=(wallet hot tpcb)
psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true' EXIT
for v in "${variants[@]}"; do
  for c in $CLIENTS; do
    j=$(( c < $(nproc) ? c : $(nproc) ))
    case $v in
      wallet|hot)
        psql -qX -d "$DB" -v naccounts="$NACCOUNTS" -v initial="$INITIAL" -f "$here/wallet_schema.sql" >/dev/null
        script=$here/wallet_transfer.pgbench; [ "$v" = hot ] && script=$here/wallet_transfer_hot.pgbench
        out=$(pgbench -n -M prepared -c "$c" -j "$j" -T "$DURATION" -D naccounts="$NACCOUNTS" -f "$script" "$DB" 2>&1)
        ok=$(psql -qXtA -d "$DB" -v naccounts="$NACCOUNTS" -v initial="$INITIAL" -f "$here/wallet_check.sql" | head -1)
        case $ok in t\|t\|t\|t\|t\|*) ;; *) echo "check FAILED after $v c=$c: $ok"; exit 1;; esac ;;
      tpcb)
        pgbench -i -q -s 10 "$DB" >/dev/null 2>&1
        out=$(pgbench -M prepared -c "$c" -j "$j" -T "$DURATION" "$DB" 2>&1) ;;
      *) echo "unknown variant $v"; exit 2 ;;
    esac
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
    lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
    printf '%s\t%s\t%s\t%s\n' "$v" "$c" "$tps" "$lat"
  done
done
echo "check ok"

#!/usr/bin/env bash
# Benchmarks of the product at a given number of passengers, on SQLite and PostgreSQL, with the
# release binary: the preview of a week, the run against the in-process simulator with zero
# latency (the product's own overhead per charge and payout), and the CSV and XLSX exports.
# Prints one line per measurement: wall time, rows per second and peak RSS.
#
#   bench/run.sh [PASSENGERS ...]          (default: 10000)
#   BENCH_DATABASES="sqlite postgres"      (default: both; PostgreSQL at BENCH_PG, default
#                                           postgres://postgres@127.0.0.1:5432)
#
# Builds `target/release/billing` first if it is missing. Needs GNU time (/usr/bin/time),
# sqlite3 and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/billing
[ -x "$BIN" ] || cargo build --release -p server --bin billing
SIZES=("${@:-10000}")
DATABASES=${BENCH_DATABASES:-sqlite postgres}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
WEEK=$(date -u -d '7 days ago' +%G-W%V)

# measure LABEL ROWS COMMAND...: runs COMMAND under GNU time, prints the line.
measure() {
  local label=$1 rows=$2
  shift 2
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r seconds kib < "$WORK/time"
  awk -v l="$label" -v r="$rows" -v s="$seconds" -v k="$kib" \
    'BEGIN { printf "%-34s %10d rows %9.2f s %12.0f rows/s %8.1f MiB peak RSS\n", l, r, s, (s > 0 ? r / s : r), k / 1024 }'
}

sql() { # sql DB KIND STATEMENT
  if [ "$2" = sqlite ]; then sqlite3 "${1#sqlite://}" "$3"; else psql -q "$1" -Atc "$3"; fi
}

for db_kind in $DATABASES; do
  for n in "${SIZES[@]}"; do
    if [ "$db_kind" = sqlite ]; then
      url="sqlite://$WORK/bench-$n.db"
    else
      name="billing_bench_${n}_$$"
      psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
      url="$PG/$name"
    fi
    export DATABASE_URL=$url RUST_LOG=error
    "$BIN" migrate > /dev/null
    drivers=$(( n / 10 > 0 ? n / 10 : 1 ))
    echo "== $db_kind, $n passengers, $drivers drivers, week $WEEK"
    measure "demo data (set-up, not a target)" "$n" "$BIN" demo-data --passengers "$n" --drivers "$drivers" --weeks 1 --seed 1
    measure "preview (computed and stored)" "$n" "$BIN" preview --week "$WEEK" --format json
    invoices=$(sql "$url" "$db_kind" "SELECT COUNT(*) FROM invoices WHERE week = '$WEEK'")
    payouts=$(sql "$url" "$db_kind" "SELECT COUNT(*) FROM payouts WHERE week = '$WEEK' AND total_minor > 0")
    # No rate limit, enough workers: the product's own overhead.
    sql "$url" "$db_kind" "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('run_settings', '{\"rate_per_second\": 1000000, \"workers\": 16, \"batch\": 32, \"canary_size\": 20}', '2026-01-01T00:00:00Z', 'bench')" > /dev/null
    measure "run, in-process simulator, 0 ms" "$(( invoices + payouts ))" "$BIN" run --week "$WEEK" --approve
    measure "export CSV" "$invoices" "$BIN" export --week "$WEEK" --format csv --output "$WORK/out.csv"
    measure "export XLSX" "$invoices" "$BIN" export --week "$WEEK" --format xlsx --output "$WORK/out.xlsx"
    if [ "$db_kind" = postgres ]; then psql -q "$PG/postgres" -c "DROP DATABASE $name"; fi
  done
done

#!/usr/bin/env bash
# The preview alone, at each size given (default 100000 passengers), on SQLite and PostgreSQL:
# demo data is made once per size and kept as a template (a file, or a PostgreSQL template
# database), then `billing preview` runs on a fresh copy BENCH_REPEAT times (default 1). Prints
# wall time, rows stored per second (invoices, payouts and their lines) and peak RSS. Then the
# what-if of a proposed fee policy version (a 2.50 trip base) on the same week:
# `billing pricing what-if`, which prices the week's rides both ways and stores nothing.
#
#   bench/preview.sh [PASSENGERS ...]
#   BENCH_DATABASES="sqlite postgres" BENCH_PG=postgres://postgres@127.0.0.1:5432 BENCH_REPEAT=1
#   BENCH_CACHE=DIR   (where SQLite templates are kept between calls; default a temporary directory)
#   BENCH_IDS=uuid    (ride and user ids as 36-character UUIDs: `demo-data --ids uuid`; default demo)
#   BENCH_KEEP=DIR    (keep the last copy, its preview stored, for bench/dashboard.sh; prints its URL)
source "$(dirname "$0")/lib.sh"
SIZES=("${@:-100000}")
CACHE=${BENCH_CACHE:-$WORK}
IDS=${BENCH_IDS:-demo}
mkdir -p "$CACHE"
machine

for kind in $DATABASES; do
  for n in "${SIZES[@]}"; do
    drivers=$(( n / 10 > 0 ? n / 10 : 1 ))
    if [ "$kind" = sqlite ]; then
      template=$CACHE/preview_${n}_$IDS.db
      if [ ! -f "$template" ]; then
        DB_KIND=sqlite DATABASE_URL="sqlite://$template" "$BIN" migrate > /dev/null
        DB_KIND=sqlite DATABASE_URL="sqlite://$template" "$BIN" demo-data --passengers "$n" --drivers "$drivers" \
          --weeks 1 --complete-weeks-only --seed 1 --ids "$IDS" > /dev/null
        sqlite3 "$template" "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
      fi
    else
      template=billing_bench_preview_${n}_$IDS
      if [ "$(psql -q "$PG/postgres" -Atc "SELECT COUNT(*) FROM pg_database WHERE datname = '$template'")" = 0 ]; then
        psql -q "$PG/postgres" -c "CREATE DATABASE $template"
        DATABASE_URL="$PG/$template" "$BIN" migrate > /dev/null
        DATABASE_URL="$PG/$template" "$BIN" demo-data --passengers "$n" --drivers "$drivers" \
          --weeks 1 --complete-weeks-only --seed 1 --ids "$IDS" > /dev/null
      fi
    fi
    echo "== $kind, $n passengers, $drivers drivers, $IDS ids, week $WEEK"
    for _ in $(seq "${BENCH_REPEAT:-1}"); do
      if [ "$kind" = sqlite ]; then
        cp "$template" "$WORK/copy.db"
        rm -f "$WORK/copy.db-wal" "$WORK/copy.db-shm"
        export DB_KIND=sqlite DATABASE_URL="sqlite://$WORK/copy.db"
      else
        copy=billing_bench_preview_copy_$$
        psql -q "$PG/postgres" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $copy" \
          -c "CREATE DATABASE $copy TEMPLATE $template"
        [ -n "${BENCH_KEEP:-}" ] || CLEANUP+=("psql -q '$PG/postgres' -c 'DROP DATABASE IF EXISTS $copy WITH (FORCE)'")
        export DB_KIND=postgres DATABASE_URL="$PG/$copy"
      fi
      rows=$(sql "SELECT COUNT(*) FROM ride_seats")
      measure "preview: seats read" "$rows" "$BIN" preview --week "$WEEK"
      stored=$(sql "SELECT (SELECT COUNT(*) FROM invoices) + (SELECT COUNT(*) FROM invoice_lines) + (SELECT COUNT(*) FROM payouts) + (SELECT COUNT(*) FROM payout_lines)")
      awk -v r="$stored" -v s="$LAST_SECONDS" 'BEGIN { printf "%-40s %10d rows %9s   %12.0f rows/s\n", "  rows stored (invoices, payouts, lines)", r, "", r / s }'
      for who in finance admin; do
        echo "bench password $who" | "$BIN" staff add --email "$who@bench.test" --role "$who" > /dev/null 2>&1 || true
      done
      "$BIN" pricing propose --as finance@bench.test --week "$(date -u +%G-W%V)" --base 2.50 --per-km 0.35 \
        --platform-fee-bps 1500 --no-show-fee 3.00 > /dev/null
      id=$(sql "SELECT MAX(id) FROM fee_policy_versions")
      measure "what-if: seats read, twice priced" "$rows" "$BIN" pricing what-if "$id" --week "$WEEK" --as admin@bench.test
      grep -m1 passengers "$WORK/out" || true
    done
    if [ -n "${BENCH_KEEP:-}" ]; then
      if [ "$kind" = sqlite ]; then
        mkdir -p "$BENCH_KEEP" && sqlite3 "$WORK/copy.db" "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
        cp "$WORK/copy.db" "$BENCH_KEEP/preview_${n}_$IDS.db"
        echo "kept: sqlite://$BENCH_KEEP/preview_${n}_$IDS.db"
      else
        echo "kept: $DATABASE_URL"
      fi
    fi
  done
done

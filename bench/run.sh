#!/usr/bin/env bash
# The core benchmarks, at each size given (default 10000 passengers, about five rides each),
# on SQLite and on PostgreSQL, with the release binary:
#   1. the preview of the week (every invoice and payout computed and stored);
#   2. the run with no rate limit against the simulator with zero latency (the product's own
#      cost per charge and payout), paused once about a third of the way through to measure the
#      kill switch (from `billing pause` returning to the last provider call), then resumed by a
#      second `billing run`; beside it, the raw limit: the same number of rows inserted into the
#      same database with plain batched INSERTs (1,000 rows per statement and commit);
#   3. the CSV and XLSX exports of the week.
# Prints one line per measurement: wall time, rows per second and peak RSS.
#
#   bench/run.sh [PASSENGERS ...]
#   BENCH_DATABASES="sqlite postgres" BENCH_PG=postgres://postgres@127.0.0.1:5432
#   BENCH_WORKERS=16 BENCH_BATCH=32   (the run's workers per process and items per claim)
#   BENCH_KEEP=DIR                    (keep each SQLite file, or print the PostgreSQL URL, for
#                                      bench/dashboard.sh)
#
# The simulator is `billing psp-sim` in its own process, not the run's in-process one, because
# the run is resumed by a second process after the pause and the provider must remember the
# first one's customers.
source "$(dirname "$0")/lib.sh"
SIZES=("${@:-10000}")
machine

# epoch SQL-TIME-EXPR: the expression in seconds since 1970, in the current database's dialect.
epoch() {
  if [ "$DB_KIND" = sqlite ]; then echo "((julianday($1) - 2440587.5) * 86400.0)"; else echo "EXTRACT(EPOCH FROM $1)"; fi
}

for kind in $DATABASES; do
  for n in "${SIZES[@]}"; do
    fresh_database "$kind" "core_$n"
    drivers=$(( n / 10 > 0 ? n / 10 : 1 ))
    echo "== $kind, $n passengers, $drivers drivers, week $WEEK"
    measure "demo data (set-up, not a target)" "$n" \
      "$BIN" demo-data --passengers "$n" --drivers "$drivers" --weeks 1 --complete-weeks-only --seed 1
    measure "preview (computed, stored, printed)" "$n" "$BIN" preview --week "$WEEK"
    preview_rss=$(awk '{print $2}' "$WORK/time")
    invoices=$(sql "SELECT COUNT(*) FROM invoices WHERE week = '$WEEK'")
    payouts=$(sql "SELECT COUNT(*) FROM payouts WHERE week = '$WEEK'")
    rides=$(sql "SELECT COUNT(*) FROM rides")
    echo "   ($rides rides, $invoices invoices, $payouts payouts)"

    # The simulator, in its own process, at zero latency.
    "$BIN" psp-sim --addr 127.0.0.1:0 > "$WORK/sim.out" 2> "$WORK/sim.err" &
    sim=$!
    CLEANUP+=("kill $sim")
    until grep -q listening "$WORK/sim.out" 2> /dev/null; do sleep 0.1; done
    export PSP_URL=$(sed -n 's/.*listening on //p' "$WORK/sim.out") PSP_API_KEY=sk_test_bench PSP_PROVISION=test
    run_settings 1000000 "${BENCH_WORKERS:-16}" "${BENCH_BATCH:-32}"

    # First leg, paused about a third of the way through the invoices.
    /usr/bin/time -f '%e %M' -o "$WORK/leg1" "$BIN" run --week "$WEEK" --approve > /dev/null 2> "$WORK/leg1.err" &
    leg=$!
    while kill -0 $leg 2> /dev/null; do
      # The run's running totals: a few rows (counting the charges would read the whole run
      # five times a second beside it).
      charged=$(sql "SELECT COALESCE(SUM(charges_charged), 0) FROM run_tallies" 2> /dev/null || echo 0)
      [ "${charged:-0}" -ge $(( invoices / 3 )) ] && break
      sleep 0.2
    done
    if "$BIN" pause --week "$WEEK" --reason "benchmark of the kill switch" > /dev/null 2>&1; then
      paused_at=$(date +%s.%N)
      wait $leg || true
      last=$(sql "SELECT MAX(t) FROM (SELECT $(epoch 'MAX(started_at)') AS t FROM charge_attempts UNION ALL SELECT $(epoch 'MAX(started_at)') FROM transfer_attempts) x")
      awk -v p="$paused_at" -v l="$last" -v c="$(sql "SELECT COUNT(*) FROM charges WHERE state = 'charged'")" \
        'BEGIN { printf "%-40s %10d charged; last attempt written %+.0f ms after `billing pause` returned\n", "kill switch (pause mid-run)", c, (l - p) * 1000 }'
      "$BIN" resume --week "$WEEK" --reason "benchmark goes on" > /dev/null
      /usr/bin/time -f '%e %M' -o "$WORK/leg2" "$BIN" run --week "$WEEK" > /dev/null 2> "$WORK/leg2.err" \
        || { cat "$WORK/leg2.err" >&2; exit 1; }
    else
      wait $leg || true
      echo "kill switch: the run completed before a third of it could be paused" && echo "0 0" > "$WORK/leg2"
    fi
    # (GNU time writes "Command exited with non-zero status 3" first when a leg was paused.)
    read -r s1 k1 < <(tail -n1 "$WORK/leg1")
    read -r s2 k2 < <(tail -n1 "$WORK/leg2")
    state=$(sql "SELECT phase || '/' || control FROM runs WHERE week = '$WEEK'")
    movements=$(sql "SELECT (SELECT COUNT(*) FROM charges WHERE state = 'charged') + (SELECT COUNT(*) FROM transfers WHERE state = 'paid')")
    inserted=$(sql "SELECT (SELECT COUNT(*) FROM charges) + (SELECT COUNT(*) FROM transfers) + (SELECT COUNT(*) FROM charge_attempts) + (SELECT COUNT(*) FROM transfer_attempts) + (SELECT COUNT(*) FROM ledger_transactions) + (SELECT COUNT(*) FROM ledger_postings)")
    awk -v a="$s1" -v b="$s2" -v m="$movements" -v k1="$k1" -v k2="$k2" -v st="$state" 'BEGIN {
      t = a + b; k = (k1 > k2 ? k1 : k2);
      printf "%-40s %10d moves %8.2f s %12.0f moves/s %8.1f MiB peak RSS (%s)\n", "run, psp-sim at 0 ms, no rate limit", m, t, m / t, k / 1024, st }'
    run_seconds=$(awk -v a="$s1" -v b="$s2" 'BEGIN { print a + b }')
    kill $sim; wait $sim 2> /dev/null || true
    unset PSP_URL PSP_API_KEY PSP_PROVISION

    # The raw limit: as many rows as the run inserted, with plain batched INSERTs.
    sql "CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, reference TEXT NOT NULL UNIQUE, amount_minor BIGINT NOT NULL, at TEXT NOT NULL)" > /dev/null
    gen() {
      awk -v n="$inserted" 'BEGIN {
        for (i = 1; i <= n; i++) {
          if ((i - 1) % 1000 == 0) printf "BEGIN; INSERT INTO bench_raw (id, reference, amount_minor, at) VALUES ";
          printf "(%d, '\''raw-%d'\'', %d, '\''2026-11-28T00:00:00.000000Z'\'')", i, i, i % 10000;
          if (i % 1000 == 0 || i == n) printf ";\nCOMMIT;\n"; else printf ",";
        } }'
    }
    if [ "$kind" = sqlite ]; then
      measure "raw batched INSERTs (the limit)" "$inserted" sh -c "$(declare -f gen); inserted=$inserted gen | sqlite3 '${DATABASE_URL#sqlite://}'"
    else
      measure "raw batched INSERTs (the limit)" "$inserted" sh -c "$(declare -f gen); inserted=$inserted gen | psql -q '$DATABASE_URL' > /dev/null"
    fi
    awk -v r="$run_seconds" -v w="$LAST_SECONDS" -v i="$inserted" 'BEGIN {
      printf "%-40s %10d rows: the run took %.1fx the raw time (%.0f%% of the raw rate)\n", "run versus raw", i, r / w, 100 * w / r }'
    sql "DROP TABLE bench_raw" > /dev/null

    measure "export CSV" "$invoices" "$BIN" export --week "$WEEK" --format csv --output "$WORK/out.csv"
    measure "export XLSX" "$invoices" "$BIN" export --week "$WEEK" --format xlsx --output "$WORK/out.xlsx"
    if [ -n "${BENCH_KEEP:-}" ]; then
      mkdir -p "$BENCH_KEEP"
      if [ "$kind" = sqlite ]; then
        sqlite3 "${DATABASE_URL#sqlite://}" "PRAGMA wal_checkpoint(TRUNCATE)" > /dev/null
        cp "${DATABASE_URL#sqlite://}" "$BENCH_KEEP/core_$n.db"
        echo "   kept sqlite://$BENCH_KEEP/core_$n.db"
      else
        CLEANUP=("${CLEANUP[@]/*core_${n}_$$*/}")
        echo "   kept $DATABASE_URL"
      fi
    fi
  done
done

#!/usr/bin/env bash
# Provider-bound runs: `billing psp-sim` with 200 ms latency in its own process, the run at a
# configured rate limit with enough workers to keep that many calls in flight, on SQLite and
# PostgreSQL. Two complete weeks of demo data: the run of the first week makes every rider's
# customer and card at the provider without a limit (not measured); the run of the second week
# is measured at the limit. Prints the Stripe API requests the simulator received per second of
# the measured run (charges, transfers, the canary's checks and the reconciliation after) as a
# fraction of the limit, and the run's events (phases, reconciliation) in seconds from its start.
#
# Between the two runs the script waits BENCH_SETUP_GAP seconds (default 61): reconciliation
# lists from a minute before the week's first attempt, and a week after the run before it that
# minute holds none of that run's payments; without the wait it would (a benchmark artefact).
#
#   bench/provider.sh [RATE:PASSENGERS ...]   (default: 100:1000 1000:10000, two minutes each)
#   BENCH_DATABASES, BENCH_PG, BENCH_LATENCY_MS=200, BENCH_SETUP_GAP=61, BENCH_INFLIGHT=4
source "$(dirname "$0")/lib.sh"
CASES=("${@:-100:1000 1000:10000}")
read -r -a CASES <<< "${CASES[*]}"
LATENCY=${BENCH_LATENCY_MS:-200}
machine

requests() { curl -sf "$PSP_URL/sim/stats" | sed 's/.*"requests":\([0-9]*\).*/\1/'; }

for kind in $DATABASES; do
  for case in "${CASES[@]}"; do
    rate=${case%%:*}
    n=${case##*:}
    fresh_database "$kind" "provider_$rate"
    drivers=$(( n / 10 > 0 ? n / 10 : 1 ))
    "$BIN" demo-data --passengers "$n" --drivers "$drivers" --weeks 2 --complete-weeks-only --seed 1 > /dev/null
    "$BIN" psp-sim --addr 127.0.0.1:0 --latency-ms "$LATENCY" > "$WORK/sim.out" 2> "$WORK/sim.err" &
    sim=$!
    CLEANUP+=("kill $sim")
    until grep -q listening "$WORK/sim.out" 2> /dev/null; do sleep 0.1; done
    export PSP_URL=$(sed -n 's/.*listening on //p' "$WORK/sim.out") PSP_API_KEY=sk_test_bench PSP_PROVISION=test

    # Set-up: every rider's customer and card, every driver's account, at no limit.
    run_settings 1000000 64 32
    "$BIN" preview --week "$WEEK_BEFORE" > /dev/null
    "$BIN" run --week "$WEEK_BEFORE" --approve > /dev/null 2>&1
    sleep "${BENCH_SETUP_GAP:-61}"

    # Claimed at once: BENCH_INFLIGHT (default 4) times the rate times the latency, in workers
    # of 32. Each call waits for its own turn under the limit, so claimed calls beyond those in
    # flight only wait; fewer leave the limit unused while a worker records its batch.
    workers=$(( (${BENCH_INFLIGHT:-4} * rate * LATENCY / 1000 + 31) / 32 ))
    [ "$workers" -ge 1 ] || workers=1
    run_settings "$rate" "$workers" 32
    "$BIN" preview --week "$WEEK" > /dev/null
    before=$(requests)
    measure "run at $rate calls/s, ${LATENCY} ms latency" "$n" "$BIN" run --week "$WEEK" --approve
    after=$(requests)
    state=$(sql "SELECT phase || '/' || control FROM runs WHERE week = '$WEEK'")
    awk -v r="$rate" -v q="$(( after - before ))" -v s="$LAST_SECONDS" -v w="$workers" -v st="$state" 'BEGIN {
      printf "%-40s %10d requests %7.2f s %8.1f requests/s = %.1f%% of %d/s (%d workers x 32; %s)\n",
        "  achieved", q, s, q / s, 100 * q / s / r, r, w, st }'
    # Where the run's time went: its events, in seconds from its start.
    events="FROM run_events e JOIN runs r ON r.id = e.run_id WHERE r.week = '$WEEK' ORDER BY e.id"
    if [ "$kind" = sqlite ]; then
      sql "SELECT printf('%8.1f s  %s: %s', (julianday(e.at) - julianday(r.started_at)) * 86400.0, e.kind, e.message) $events"
    else
      sql "SELECT lpad(to_char(EXTRACT(EPOCH FROM e.at - r.started_at), 'FM99990.0'), 8) || ' s  ' || e.kind || ': ' || e.message $events"
    fi
    kill $sim; wait $sim 2> /dev/null || true
  done
done

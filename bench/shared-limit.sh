#!/usr/bin/env bash
# The provider account's limit shared by several processes: three `billing run` processes work
# one run against one `billing psp-sim` (50 ms latency) with `rate_per_second` set to the limit.
# Prints the most Stripe API requests the simulator received in any one second of the run
# (`GET /sim/stats?since_ms=`, windows of a hundred 10 ms slots) against the limit, and whether
# the run completed. The riders' customers and cards are made first by a run of the week before,
# at no limit (not measured).
#
#   bench/shared-limit.sh [PASSENGERS]   (default 1500)
#   BENCH_DATABASES, BENCH_PG, BENCH_RATE=100, BENCH_PROCESSES=3, BENCH_SETUP_GAP=61
source "$(dirname "$0")/lib.sh"
N=${1:-1500}
RATE=${BENCH_RATE:-100}
PROCESSES=${BENCH_PROCESSES:-3}
machine

for kind in $DATABASES; do
  fresh_database "$kind" "shared_limit"
  "$BIN" demo-data --passengers "$N" --drivers $(( N / 10 )) --weeks 2 --complete-weeks-only --seed 1 > /dev/null
  "$BIN" psp-sim --addr 127.0.0.1:0 --latency-ms 50 > "$WORK/sim.out" 2> "$WORK/sim.err" &
  sim=$!
  CLEANUP+=("kill $sim")
  until grep -q listening "$WORK/sim.out" 2> /dev/null; do sleep 0.1; done
  export PSP_URL=$(sed -n 's/.*listening on //p' "$WORK/sim.out") PSP_API_KEY=sk_test_bench PSP_PROVISION=test
  run_settings 1000000 16 32
  "$BIN" run --week "$WEEK_BEFORE" --approve > /dev/null 2>&1
  sleep "${BENCH_SETUP_GAP:-61}"

  run_settings "$RATE" 4 8
  "$BIN" preview --week "$WEEK" > /dev/null
  since=$(date +%s%3N)
  start=$(date +%s.%N)
  pids=()
  "$BIN" run --week "$WEEK" --approve > /dev/null 2> "$WORK/run0.err" &
  pids+=($!)
  sleep 1
  for i in $(seq 2 "$PROCESSES"); do
    "$BIN" run --week "$WEEK" > /dev/null 2> "$WORK/run$i.err" &
    pids+=($!)
  done
  codes=()
  for pid in "${pids[@]}"; do wait "$pid" && codes+=(0) || codes+=($?); done
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  stats=$(curl -sf "$PSP_URL/sim/stats?since_ms=$since")
  most=$(echo "$stats" | sed 's/.*"max_per_second":\([0-9]*\).*/\1/')
  state=$(sql "SELECT phase || '/' || control FROM runs WHERE week = '$WEEK'")
  printf "%-10s %d processes at %d calls/s: at most %d requests in any second (%.1f%% of the limit); %s in %.1f s; exit codes %s\n" \
    "$kind" "$PROCESSES" "$RATE" "$most" "$(echo "100 * $most / $RATE" | bc -l)" "$state" "$seconds" "${codes[*]}"
  kill $sim; wait $sim 2> /dev/null || true
  unset PSP_URL PSP_API_KEY PSP_PROVISION
done

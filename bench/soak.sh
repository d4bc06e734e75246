#!/usr/bin/env bash
# Soak: N seeded chaos runs per database (SQLite and PostgreSQL side by side), each a week of 40
# invoices worked by three `billing run` processes against `billing psp-sim` with every fault
# mixed in: timeouts after the charge, 5xx and 429 errors, ambiguous answers (408, 424, an HTML
# page, a reset), declines, a SIGKILL at a seeded moment, and in half the seeds every process
# killed and the run resumed a day later (the simulator's clock and the attempts moved 25 hours).
# Each seed is checked against the simulator's ledger: every invoice charged at most once and
# for its amount, every driver paid once, the books balanced, nothing lost. A failure names its
# seed; `CHAOS_SEED=S` replays it (`cargo test -p server --test chaos`).
#
#   bench/soak.sh N        (the test binary in debug, as CI builds it; a seed takes a few seconds)
#
# The soak runs copies of the chaos test and of `billing`, made once it has built them, so that
# a build beside it (an hour is long) cannot change the binaries under it.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:?usage: bench/soak.sh N}
started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build -q -p server --bin billing
test_exe=$(cargo test -q -p server --test chaos --no-run --message-format=json \
  | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "chaos":
        print(m["executable"])')
cp target/debug/billing "$work/billing"
cp "$test_exe" "$work/chaos"
set +e
BILLING_BIN="$work/billing" CHAOS_SEEDS=$N tests/with-postgres.sh "$work/chaos" --nocapture > "$work/log" 2>&1
status=$?
set -e
grep -E '^chaos |^test |panicked|seed [0-9]+' "$work/log" || tail -20 "$work/log"
echo "soak: $N seeds per database in $(( $(date +%s) - started )) s, exit $status"
exit "$status"

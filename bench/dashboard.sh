#!/usr/bin/env bash
# The dashboard under load: `billing serve` (release) on a database that bench/run.sh kept
# (BENCH_KEEP), and wrk from a second process: 50 connections for 30 s on each of the
# server-rendered pages staff use most (user search, an invoice, the week's preview, the
# overview, a run's live progress), signed in as an admin. Prints requests/s, p50 and p99.
#
#   BENCH_KEEP=/tmp/bench bench/run.sh 1000000
#   bench/dashboard.sh sqlite:///tmp/bench/core_1000000.db [postgres://…/billing_bench_core_1000000_…]
#   BENCH_DURATION=30s BENCH_CONNECTIONS=50 BENCH_PAGES="/weeks/2026-W47 /"   (default: the five)
#   BENCH_RATE=300: open loop instead: oha sends a constant 300 requests/s whatever the answers'
#   latency (--latency-correction: a request's time counts from when it should have been sent),
#   the p99 being what a user waits for at that load rather than a queue's length.
# Needs wrk (Debian's package wrk) or, with BENCH_RATE, oha (`cargo install oha`), and curl.
source "$(dirname "$0")/lib.sh"
RATE=${BENCH_RATE:-}
if [ -n "$RATE" ]; then
  command -v oha > /dev/null || cargo install --locked oha > /dev/null
else
  command -v wrk > /dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk > /dev/null; }
fi
DURATION=${BENCH_DURATION:-30s}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
machine

for url in "$@"; do
  export DATABASE_URL=$url
  case $url in sqlite:*) DB_KIND=sqlite ;; *) DB_KIND=postgres ;; esac
  email="bench-$$@bench.test"
  echo "dashboard benchmark password" | "$BIN" staff add --email "$email" --role admin > /dev/null
  start_serve
  curl -sf -o /dev/null -c "$WORK/jar" -H "Origin: $base" -H "Sec-Fetch-Site: same-origin" \
    --data-urlencode "email=$email" --data-urlencode "password=dashboard benchmark password" -d next=/ "$base/login"
  cookie=$(sed 's/^#HttpOnly_//' "$WORK/jar" | awk '!/^#/ && NF >= 7 { print $6 "=" $7 }' | tail -n1)
  [ -n "$cookie" ] || { echo "signing in failed" >&2; exit 1; }
  invoices=$(sql "SELECT COUNT(*) FROM invoices")
  invoice=$(sql "SELECT id FROM invoices ORDER BY id LIMIT 1 OFFSET $(( invoices / 2 ))")
  # A rider's id in the middle of the id order, whatever the ids' shape (demo's p4711, UUIDs).
  rider=$(sql "SELECT user_id FROM invoices WHERE id = $invoice")
  run=$(sql "SELECT id FROM runs ORDER BY id DESC LIMIT 1")
  echo "== $DB_KIND: $(sql "SELECT COUNT(*) FROM users") users, $invoices invoices, $(sql "SELECT COUNT(*) FROM rides") rides"
  read -r -a pages <<< "${BENCH_PAGES:-/users?q=${rider:0:8} /invoices/$invoice /users/$rider /weeks/$WEEK / ${run:+/runs/$run}}"
  for page in "${pages[@]}"; do
    status=$(curl -s -o "$WORK/page" -w '%{http_code}' -H "Cookie: $cookie" "$base$page")
    [ "$status" = 200 ] || { echo "$page answered $status" >&2; exit 1; }
    if [ -n "$RATE" ]; then
      oha --no-tui -z "$DURATION" -q "$RATE" --latency-correction -c "$CONNECTIONS" -H "Cookie: $cookie" "$base$page" > "$WORK/oha"
      awk -v p="$page" -v size="$(wc -c < "$WORK/page")" '
        /Requests\/sec:/ { rps = $2 }
        function ms(value, unit) { return unit ~ /^s/ ? value * 1000 : unit ~ /^(µs|us)/ ? value / 1000 : value }
        /^ *50(\.00)?% in/ { p50 = ms($3, $4) } /^ *99(\.00)?% in/ { p99 = ms($3, $4) }
        /^ *\[[0-9]+\] [0-9]+ responses/ { code = $1; gsub(/[][]/, "", code); if (code != 200) bad = bad " " $2 " x " code }
        /aborted due to deadline/ { cut = $1; gsub(/[][]/, "", cut) }
        END { printf "%-28s %9.0f requests/s  p50 %6.2fms  p99 %6.2fms  (%d bytes%s%s)\n", p, rps, p50, p99, size,
          (bad ? ", not 200:" bad : ""), (cut ? ", " cut " cut off at the end" : "") }' "$WORK/oha"
      continue
    fi
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Cookie: $cookie" "$base$page" > "$WORK/wrk"
    awk -v p="$page" -v size="$(wc -c < "$WORK/page")" '
      /Requests\/sec/ { rps = $2 }
      /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
      /Non-2xx/ { bad = $NF }
      END { printf "%-28s %9.0f requests/s  p50 %8s  p99 %8s  (%d bytes%s)\n", p, rps, p50, p99, size, (bad ? ", " bad " non-2xx" : "") }' "$WORK/wrk"
  done
  kill $server; wait $server 2> /dev/null || true
done

#!/usr/bin/env bash
# Ride ingestion over HTTP: `billing serve` (release) on a fresh database holding
# BENCH_PASSENGERS passengers and a tenth as many drivers (`billing demo-data --weeks 0`, users
# only), the last complete week opened twice first (its draft stored, its kept ride count
# taken), then RIDES new rides of that week sent as `POST /api/v1/rides` batches of BENCH_BATCH
# by BENCH_SENDERS senders at once. Prints the rides per second over the sending, checks that
# every ride was stored and that the week's kept count is its number of rides, then times the
# next opening of the week (the draft recomputed with the new rides).
#
#   bench/ingest.sh 1000000        (BENCH_PASSENGERS=100000 BENCH_BATCH=10000 BENCH_SENDERS=2
#                                   BENCH_IDS=demo|uuid BENCH_DATABASES="sqlite postgres"
#                                   BENCH_ORDER=random|time: rides' end times drawn at random
#                                   over the week, or rising from batch to batch as rides
#                                   arrive when they are sent as they end)
# Needs curl, python3, sqlite3 and psql.
source "$(dirname "$0")/lib.sh"
RIDES=${1:-1000000}
PASSENGERS=${BENCH_PASSENGERS:-100000}
BATCH=${BENCH_BATCH:-10000}
SENDERS=${BENCH_SENDERS:-2}
IDS=${BENCH_IDS:-demo}
ORDER=${BENCH_ORDER:-random}
machine
echo "# $RIDES rides in batches of $BATCH, $SENDERS senders, $PASSENGERS passengers, ids $IDS, end times $ORDER, week $WEEK"

for kind in $DATABASES; do
  fresh_database "$kind" "ingest_$RIDES"
  "$BIN" demo-data --passengers "$PASSENGERS" --drivers $(( PASSENGERS / 10 )) --weeks 0 \
    --complete-weeks-only --ids "$IDS" > /dev/null
  sql "SELECT id || '|' || name FROM users ORDER BY id" > "$WORK/users"
  token=$(staff_token admin)
  start_serve
  key=$(curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"name": "bench"}' "$base/api/v1/api-keys" | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
  # Opens the week until its draft is stored (a request waits 20 s for a recomputation, then is
  # answered 409 while it goes on) and prints the seconds that took.
  open_week() {
    local from=$SECONDS status
    until status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base/api/v1/weeks/$WEEK/preview") \
      && [ "$status" = 200 ]; do
      [ "$status" = 409 ] || { echo "opening the week answered $status" >&2; exit 1; }
    done
    echo $(( SECONDS - from ))
  }
  open_week > /dev/null
  open_week > /dev/null
  # The batches, written before the clock starts: rides of the week with one or two passengers
  # (users named P… ride, users named D… drive; by id shape, the demo's or UUIDs).
  rm -rf "$WORK/batches" && mkdir "$WORK/batches"
  python3 - "$WORK/users" "$WORK/batches" "$RIDES" "$BATCH" "$WEEK" "$IDS" "$ORDER" <<'PY'
import datetime, json, random, sys, uuid
users, out, rides, batch, week, ids, order = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
everyone = [line.strip().split("|", 1) for line in open(users) if line.strip()]
# demo-data names drivers "… D12" and passengers "… P4711", whatever the ids' shape.
drivers = [i for i, name in everyone if name.split()[-1].startswith("D")]
passengers = [i for i, name in everyone if name.split()[-1].startswith("P")]
rng = random.Random(1)
monday = datetime.datetime.fromisocalendar(int(week[:4]), int(week[6:]), 1).replace(tzinfo=datetime.timezone.utc)
for b in range(0, rides, batch):
    body = []
    for n in range(b, min(b + batch, rides)):
        minute = rng.randrange(60, 7 * 24 * 60 - 1) if order == "random" else 60 + n * (7 * 24 * 60 - 61) // rides
        ended = monday + datetime.timedelta(minutes=minute)
        seats = rng.sample(passengers, 2 if rng.random() < 0.4 else 1)
        body.append({
            "ride_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)) if ids == "uuid" else f"ingest-{n}",
            "driver_id": rng.choice(drivers),
            "distance_m": rng.randrange(2000, 40000),
            "started_at": (ended - datetime.timedelta(minutes=25)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seats": [{"passenger_id": p, "attendance": "completed"} for p in seats],
        })
    with open(f"{out}/{b // batch:06d}.json", "w") as f:
        json.dump({"rides": body}, f)
PY
  before=$(date +%s.%N)
  ls "$WORK"/batches/*.json | xargs -P "$SENDERS" -I{} curl -sf -o {}.out -H "Authorization: Bearer $key" \
    -H 'Content-Type: application/json' --data-binary @{} "$base/api/v1/rides"
  after=$(date +%s.%N)
  created=$(python3 -c 'import glob, json, sys; print(sum(json.load(open(f))["created"] for f in glob.glob(sys.argv[1] + "/*.out")))' "$WORK/batches")
  stored=$(sql "SELECT COUNT(*) FROM rides")
  kept=$(sql "SELECT MAX(rides) FROM week_ride_counts")
  [ "$created" = "$RIDES" ] && [ "$stored" = "$RIDES" ] && [ "$kept" = "$RIDES" ] \
    || { echo "created $created, stored $stored, kept count $kept: expected $RIDES" >&2; exit 1; }
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$server/status")
  awk -v k="$kind" -v r="$RIDES" -v s="$(echo "$after - $before" | bc)" -v m="$rss" \
    'BEGIN { printf "%-9s ingestion: %d rides in %.2f s = %.0f rides/s; kept count %d; serve peak RSS %.1f MiB\n", k, r, s, r / s, r, m / 1024 }'
  reopened=$(open_week)
  echo "$kind opening the week after: $reopened s until its draft was stored (recomputed with $RIDES rides)"
  kill $server; wait $server 2> /dev/null || true
done

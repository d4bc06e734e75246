#!/usr/bin/env bash
# Approving (freezing) a stored draft week: `billing serve` (release) on a database whose week
# has its preview stored (bench/preview.sh with BENCH_KEEP keeps one), then
# `POST /api/v1/weeks/:week/approve` with the draft's content hash, timed by curl; the server's
# peak RSS is read from /proc. The database is changed (the week approved): use a copy.
#
#   bench/approve.sh URL...      (BENCH_WEEK, default the last complete week)
# Needs curl.
source "$(dirname "$0")/lib.sh"
WEEK=${BENCH_WEEK:-$WEEK}
machine

for url in "$@"; do
  export DATABASE_URL=$url
  case $url in sqlite:*) DB_KIND=sqlite ;; *) DB_KIND=postgres ;; esac
  hash=$(sql "SELECT content_hash FROM weeks WHERE week = '$WEEK' AND status = 'previewed'")
  [ -n "$hash" ] || { echo "$url: $WEEK has no draft to approve" >&2; exit 1; }
  token=$(staff_token finance)
  start_serve
  rides=$(sql "SELECT COUNT(*) FROM billed_rides")
  # The approval is timed until the week reads approved: an answer may come first (a request
  # lasts 30 s at most; the approval goes on in its own task).
  from=$(date +%s.%N)
  curl -s -o "$WORK/answer" -w '%{http_code}' -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"content_hash\": \"$hash\"}" "$base/api/v1/weeks/$WEEK/approve" > "$WORK/status" &
  request=$!
  until [ "$(sql "SELECT status FROM weeks WHERE week = '$WEEK'")" = approved ]; do sleep 0.2; done
  took=$(echo "$(date +%s.%N) - $from" | bc)
  wait $request
  billed=$(sql "SELECT COUNT(*) FROM billed_rides")
  rss=$(awk '/VmHWM/ { print $2 }' "/proc/$server/status")
  printf '%s approving %s: approved after %.1f s (HTTP %s); %d rides billed; serve peak RSS %d MiB\n' \
    "$DB_KIND" "$WEEK" "$took" "$(cat "$WORK/status")" $(( billed - rides )) $(( rss / 1024 ))
  kill $server; wait $server 2> /dev/null || true
done

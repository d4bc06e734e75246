# Helpers shared by the benchmark scripts (sourced, not run).
# BENCH_DATABASES="sqlite postgres" (default both); PostgreSQL at BENCH_PG
# (default postgres://postgres@127.0.0.1:5432); the release binary target/release/billing, or
# BENCH_BIN (another build's binary, to compare two builds on the same data).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=${BENCH_BIN:-$PWD/target/release/billing}
[ -x "$BIN" ] || cargo build --release -p server --bin billing
DATABASES=${BENCH_DATABASES:-sqlite postgres}
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
WORK=$(mktemp -d)
CLEANUP=()
cleanup() {
  for c in "${CLEANUP[@]}"; do eval "$c" || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# The week before this one, and the one before it (ISO weeks, UTC).
WEEK=$(date -u -d '7 days ago' +%G-W%V)
WEEK_BEFORE=$(date -u -d '14 days ago' +%G-W%V)
export RUST_LOG=error

# measure LABEL ROWS COMMAND...: runs COMMAND under GNU time and prints one line: wall time,
# rows per second and peak RSS. The command's stdout is left in $WORK/out.
measure() {
  local label=$1 rows=$2
  shift 2
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/out" 2> "$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r seconds kib < "$WORK/time"
  awk -v l="$label" -v r="$rows" -v s="$seconds" -v k="$kib" \
    'BEGIN { printf "%-40s %10d rows %9.2f s %12.0f rows/s %8.1f MiB peak RSS\n", l, r, s, (s > 0 ? r / s : r), k / 1024 }'
  LAST_SECONDS=$seconds
}

# sql STATEMENT: runs it on $DATABASE_URL and prints the rows.
sql() {
  if [ "$DB_KIND" = sqlite ]; then sqlite3 "${DATABASE_URL#sqlite://}" "$1"; else psql -q "$DATABASE_URL" -Atc "$1"; fi
}

# fresh_database KIND NAME: a new, migrated database; exports DATABASE_URL and DB_KIND.
fresh_database() {
  DB_KIND=$1
  if [ "$1" = sqlite ]; then
    DATABASE_URL="sqlite://$WORK/$2.db"
  else
    local name="billing_bench_$2_$$"
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
    CLEANUP+=("psql -q '$PG/postgres' -c 'DROP DATABASE IF EXISTS $name WITH (FORCE)'")
    DATABASE_URL="$PG/$name"
  fi
  export DATABASE_URL DB_KIND
  "$BIN" migrate > /dev/null
}

# run_settings RATE WORKERS BATCH: what the next run uses.
run_settings() {
  local value="{\"rate_per_second\": $1, \"workers\": $2, \"batch\": $3, \"canary_size\": 20}"
  sql "DELETE FROM settings WHERE key = 'run_settings'" > /dev/null
  sql "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('run_settings', '$value', '2026-01-01T00:00:00Z', 'bench')" > /dev/null
}

# The machine the figures come from.
machine() {
  echo "# $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB," \
    "$(sqlite3 --version | cut -d' ' -f1) sqlite3 CLI, $(psql -V | cut -d' ' -f3) psql, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
}

# start_serve: `billing serve` (against the simulator's name, the dashboard's site) on
# $DATABASE_URL at a free port, in the background, stopped at exit; sets $server (its pid) and
# $base (http://127.0.0.1:PORT) once it serves.
start_serve() {
  PSP_URL=sim LEPTOS_SITE_ROOT=target/site "$BIN" serve --addr 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
  server=$!
  CLEANUP+=("kill $server")
  until grep -q serving "$WORK/serve.out" 2> /dev/null; do sleep 0.1; done
  base=$(sed -n 's/.*serving \(http:[^ ]*\).*/\1/p' "$WORK/serve.out")
}

# staff_token ROLE: adds a staff member of ROLE to $DATABASE_URL and prints a personal access
# token of theirs for the JSON API.
staff_token() {
  local email="bench-$$-$1@bench.test"
  echo "benchmark password of $1" | "$BIN" staff add --email "$email" --role "$1" > /dev/null
  "$BIN" staff token --email "$email" --name bench 2> /dev/null
}

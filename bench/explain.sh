#!/usr/bin/env bash
# The query plans of the hot queries, on a database bench/run.sh kept (BENCH_KEEP): how the
# run claims a batch, checks its invoices and the cap, how exports page, how staff search, and how
# an invoice's page reads its audit trail and the audit page filters by actor.
#
#   bench/explain.sh sqlite:///tmp/bench/core_1000000.db postgres://…/billing_bench_core_1000000_…
source "$(dirname "$0")/lib.sh"
for url in "$@"; do
  export DATABASE_URL=$url
  case $url in sqlite:*) DB_KIND=sqlite; explain="EXPLAIN QUERY PLAN" ;; *) DB_KIND=postgres; explain="EXPLAIN" ;; esac
  run=$(sql "SELECT MAX(id) FROM runs")
  ids=$(sql "SELECT invoice_id FROM charges ORDER BY invoice_id LIMIT 32 OFFSET 5000" | paste -sd, -)
  users=$(sql "SELECT '''' || user_id || '''' FROM charges ORDER BY invoice_id LIMIT 32 OFFSET 5000" | paste -sd, -)
  lock=""
  if [ "$DB_KIND" = postgres ]; then lock=" FOR UPDATE SKIP LOCKED"; fi
  echo "== $DB_KIND"
  while IFS='|' read -r name query; do
    echo "-- $name"
    sql "$explain $query" | sed 's/^/   /'
  done <<QUERIES
claim a batch|UPDATE charges SET lease_owner = 'w', lease_until = '2030-01-01' WHERE invoice_id IN (SELECT invoice_id FROM charges WHERE run_id = $run AND seq <= 9223372036854775807 AND state IN ('pending', 'declined') AND next_at <= '2030-01-01' AND (lease_until IS NULL OR lease_until < '2030-01-01') ORDER BY seq LIMIT 32$lock) RETURNING invoice_id
check the batch's invoice lines|SELECT invoice_id, ride_id, amount_minor, attendance, ended_at, late FROM invoice_lines WHERE invoice_id IN ($ids)
the cap: charged per passenger in the run|SELECT c.user_id, SUM(a.amount_minor) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE a.outcome = 'succeeded' AND c.run_id = $run AND c.user_id IN ($users) GROUP BY c.user_id
export page|SELECT i.id FROM invoices i JOIN weeks w ON w.week = i.week AND w.status = 'approved' JOIN users u ON u.id = i.user_id LEFT JOIN charges c ON c.invoice_id = i.id LEFT JOIN charge_attempts a ON a.invoice_id = i.id AND a.outcome = 'succeeded' WHERE i.week = '$WEEK' AND i.id > 500000 ORDER BY i.id LIMIT 1000
user search by name prefix|SELECT id, name, email, phone FROM users WHERE name_key >= 'ana p47' AND name_key < 'ana p48' ORDER BY name_key LIMIT 20
an invoice's audit trail (Db::object_changes)|SELECT id, action FROM audit_log WHERE object_type = 'invoice' AND object_id = '499956' AND action NOT IN ('invoice.view', 'user.search', 'user.view') ORDER BY id DESC LIMIT 100
the audit page filtered by actor (Db::audit_page)|SELECT id, action FROM audit_log WHERE actor = 'ana@example.com' ORDER BY id DESC LIMIT 51
QUERIES
done

//! Reports' storage: aggregates of the ledger's postings by the billing week their transaction
//! is attributed to (an indexed column), and the invoices of a range of weeks, page by page, for
//! exports.

use chrono::{DateTime, Utc};

use super::Db;
use crate::with_pool;

/// One aggregate of postings: (transaction kind, account class, sum in minor units, postings).
pub type LedgerSum = (String, String, i64, i64);

/// The account without its user (`passenger_receivable:p1` is of class `passenger_receivable`).
const ACCOUNT_CLASS: &str = "CASE WHEN p.account LIKE 'passenger_receivable:%' THEN 'passenger_receivable' \
     WHEN p.account LIKE 'driver_payable:%' THEN 'driver_payable' ELSE p.account END";

/// One invoice as exports list it: a row, or a JSON array of its fields in this order.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct ExportRow {
    pub invoice_id: i64,
    pub week: String,
    pub user_id: String,
    pub user_name: String,
    pub currency: String,
    pub total_minor: i64,
    pub lines: i64,
    /// The charge's state once the week's run has it.
    pub charge_state: Option<String>,
    /// When the successful charge was made.
    pub charged_at: Option<DateTime<Utc>>,
    pub payment_intent: Option<String>,
    pub refunded_minor: i64,
}

impl Db {
    /// The ledger's postings of weeks `from` to `to` in `currency`, summed by transaction kind
    /// and account class.
    pub async fn ledger_sums(
        &self,
        from: &str,
        to: &str,
        currency: &str,
    ) -> Result<Vec<LedgerSum>, sqlx::Error> {
        let sql = format!(
            "SELECT t.kind, {ACCOUNT_CLASS} AS class, CAST(SUM(p.amount_minor) AS BIGINT), COUNT(*) \
             FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id \
             WHERE t.week >= $1 AND t.week <= $2 AND t.currency = $3 GROUP BY t.kind, class ORDER BY t.kind, class"
        );
        with_pool!(self, pool => sqlx::query_as(&sql).bind(from).bind(to).bind(currency).fetch_all(pool).await)
    }

    /// Charged and refunded per week, weeks `from` to `to`: (week, kind, sum).
    pub async fn ledger_by_week(
        &self,
        from: &str,
        to: &str,
        currency: &str,
    ) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT t.week, t.kind, CAST(SUM(p.amount_minor) AS BIGINT) FROM ledger_transactions t \
                 JOIN ledger_postings p ON p.transaction_id = t.id \
                 WHERE t.week >= $1 AND t.week <= $2 AND t.currency = $3 \
                 AND ((t.kind = 'charge' AND p.account = 'provider_clearing') OR (t.kind = 'refund' AND p.account = 'refunds')) \
                 GROUP BY t.week, t.kind ORDER BY t.week",
            )
            .bind(from)
            .bind(to)
            .bind(currency)
            .fetch_all(pool)
            .await
        })
    }

    /// Refunds in the ledger of weeks `from` to `to`, by reason: (reason, count, sum).
    pub async fn refunds_by_reason(
        &self,
        from: &str,
        to: &str,
        currency: &str,
    ) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT r.reason, COUNT(*), CAST(SUM(p.amount_minor) AS BIGINT) FROM ledger_transactions t \
                 JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'refunds' \
                 JOIN refunds r ON r.id = CAST(substr(t.reference, 8) AS BIGINT) \
                 WHERE t.kind = 'refund' AND t.week >= $1 AND t.week <= $2 AND t.currency = $3 \
                 GROUP BY r.reason ORDER BY r.reason",
            )
            .bind(from)
            .bind(to)
            .bind(currency)
            .fetch_all(pool)
            .await
        })
    }

    /// The disputes of weeks `from` to `to` in `currency` by their status now: (status, count),
    /// in status order.
    pub async fn disputes_by_status(
        &self,
        from: &str,
        to: &str,
        currency: &str,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT status, COUNT(*) FROM disputes WHERE week >= $1 AND week <= $2 AND currency = $3 \
                 GROUP BY status ORDER BY status",
            )
            .bind(from)
            .bind(to)
            .bind(currency)
            .fetch_all(pool)
            .await
        })
    }

    /// The weeks of the latest `limit` completed runs, newest first.
    pub async fn completed_weeks(&self, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT week FROM runs WHERE phase = 'completed' ORDER BY week DESC LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await
        })
    }

    /// Up to `limit` invoices of weeks up to `to` after `after` (a week and an invoice id; from
    /// `(first week, 0)`), in (week, id) order: a range scan of the index `invoices_week_id`,
    /// whatever the page.
    pub async fn export_page(
        &self,
        to: &str,
        after: (&str, i64),
        limit: i64,
    ) -> Result<Vec<ExportRow>, sqlx::Error> {
        let (mut week, mut id) = (after.0.to_owned(), after.1);
        let mut rows: Vec<ExportRow> = Vec::new();
        // One week at a time, so that each page is a seek into (week, id).
        loop {
            let page: Vec<ExportRow> = match self {
                Db::Sqlite(pool) => {
                    let json: String = sqlx::query_scalar(&format!(
                        "SELECT json_group_array(json_array({EXPORT_FIELDS})) FROM ({EXPORT_ROWS})"
                    ))
                    .bind(&week)
                    .bind(id)
                    .bind(limit - rows.len() as i64)
                    .fetch_one(pool)
                    .await?;
                    let mut page: Vec<ExportRow> =
                        serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                    // In invoice order, which the aggregate is not asked to keep (ordering inside
                    // it made SQLite sort the page again); the rows come sorted, and sorting a
                    // sorted page is one pass over it.
                    page.sort_by_key(|row| row.invoice_id);
                    page
                }
                Db::Postgres(pool) => {
                    sqlx::query_as(EXPORT_ROWS)
                        .bind(&week)
                        .bind(id)
                        .bind(limit - rows.len() as i64)
                        .fetch_all(pool)
                        .await?
                }
            };
            rows.extend(page);
            if rows.len() as i64 >= limit {
                return Ok(rows);
            }
            let next: Option<String> = with_pool!(self, pool => {
                sqlx::query_scalar("SELECT MIN(week) FROM invoices WHERE week > $1 AND week <= $2")
                    .bind(&week)
                    .bind(to)
                    .fetch_one(pool)
                    .await?
            });
            match next {
                Some(next) => (week, id) = (next, 0),
                None => return Ok(rows),
            }
        }
    }
}

/// A page of one week's invoices for an export (`$1` the week, `$2` the last invoice id of the
/// page before, `$3` how many).
///
/// The charges' and attempts' own `> $2` say what `= i.id` implies: PostgreSQL merge-joins them,
/// and without it read both indexes from their first entry on every page (at 1M, 841 ms a page
/// half way through the week instead of 50 ms: the export was quadratic).
const EXPORT_ROWS: &str = "SELECT i.id AS invoice_id, i.week, i.user_id, u.name AS user_name, i.currency, i.total_minor, i.lines, \
     c.state AS charge_state, a.finished_at AS charged_at, a.provider_id AS payment_intent, \
     CAST(COALESCE((SELECT SUM(r.amount_minor) FROM refunds r WHERE r.invoice_id = i.id AND r.state = 'succeeded' AND r.kind = 'customer'), 0) AS BIGINT) AS refunded_minor \
     FROM invoices i JOIN weeks w ON w.week = i.week AND w.status = 'approved' \
     JOIN users u ON u.id = i.user_id LEFT JOIN charges c ON c.invoice_id = i.id AND c.invoice_id > $2 \
     LEFT JOIN charge_attempts a ON a.invoice_id = i.id AND a.outcome = 'succeeded' AND a.invoice_id > $2 \
     WHERE i.week = $1 AND i.id > $2 ORDER BY i.id LIMIT $3";

/// [`EXPORT_ROWS`]' columns in [`ExportRow`]'s order. On SQLite the page comes as one JSON array of
/// these arrays: read row by row, each row crossed from sqlx's SQLite thread to the reader by
/// itself, with an allocation per field, which took most of an export's time (`perf`: thread
/// switches, locks, malloc). PostgreSQL's rows come over a socket, and building the JSON there
/// made its export slower (8.2 s instead of 6.7 s at 1M), so it reads them as rows.
const EXPORT_FIELDS: &str =
    "invoice_id, week, user_id, user_name, currency, total_minor, lines, charge_state, charged_at, \
     payment_intent, refunded_minor";

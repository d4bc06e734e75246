//! A customer's history for support: who they are, their weeks, and each list of their rides,
//! invoices, charge attempts, refunds and payouts, newest first, by keyset pages over indexed
//! columns (a user's rows, never a scan of everyone's).

use chrono::{DateTime, Utc};

use super::weeks::{currency_of, decode_msg};
use super::{rfc3339, Db};
use crate::with_pool;
use app::model::customer::{ChargeAttemptView, CustomerInvoice, CustomerPayout, CustomerRide};
use app::model::money::{BillingCurrency, Money};
use app::model::refund::LedgerEntryView;

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    pub created_at: DateTime<Utc>,
}

/// One week of a user's invoice: week, invoice id, total, charge state, refunded (succeeded).
pub type WeekRow = (String, i64, i64, Option<String>, i64);

type AttemptRow = (
    i64,
    String,
    i64,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    String,
    i64,
);

const SELECT_ATTEMPTS: &str =
    "SELECT a.invoice_id, i.week, a.attempt, a.idempotency_key, a.amount_minor, a.outcome, \
     a.provider_id, a.detail, a.worker, a.started_at, a.finished_at, i.currency, a.id FROM charge_attempts a \
     JOIN invoices i ON i.id = a.invoice_id";

fn attempt_view(row: AttemptRow) -> Result<ChargeAttemptView, sqlx::Error> {
    let (
        invoice_id,
        week,
        attempt,
        key,
        amount,
        outcome,
        provider_id,
        detail,
        worker,
        started,
        finished,
        currency,
        _,
    ) = row;
    Ok(ChargeAttemptView {
        invoice_id,
        week,
        attempt,
        idempotency_key: key,
        amount: Money::from_minor(amount, currency_of(&currency)?),
        outcome,
        provider_id,
        detail,
        worker,
        started_at: rfc3339(started),
        finished_at: finished.map(rfc3339),
        millis: finished.map(|f| (f - started).num_milliseconds()),
    })
}

impl Db {
    /// One user.
    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT id, name, email, phone, language, created_at FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })
    }

    /// Whether the user drives (has a ride as driver).
    pub async fn is_driver(&self, id: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM rides WHERE driver_id = $1)").bind(id).fetch_one(pool).await
        })
    }

    /// The user's invoices of the weeks from `first` to `last` (`YYYY-Www`, inclusive), with
    /// their charge state and what was refunded of each.
    pub async fn user_weeks(&self, id: &str, first: &str, last: &str) -> Result<Vec<WeekRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.week, i.id, i.total_minor, c.state, \
                 CAST(COALESCE((SELECT SUM(r.amount_minor) FROM refunds r WHERE r.invoice_id = i.id AND r.state = 'succeeded' AND r.kind = 'customer'), 0) AS BIGINT) \
                 FROM invoices i LEFT JOIN charges c ON c.invoice_id = i.id \
                 WHERE i.user_id = $1 AND i.week >= $2 AND i.week <= $3 ORDER BY i.week",
            )
            .bind(id)
            .bind(first)
            .bind(last)
            .fetch_all(pool)
            .await
        })
    }

    /// What the user was charged and refunded in all, and how many refunds are still open.
    pub async fn user_totals(&self, id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT CAST(COALESCE((SELECT SUM(amount_minor) FROM charges WHERE user_id = $1 AND state = 'charged'), 0) AS BIGINT), \
                 CAST(COALESCE((SELECT SUM(amount_minor) FROM refunds WHERE user_id = $1 AND state = 'succeeded' AND kind = 'customer'), 0) AS BIGINT), \
                 (SELECT COUNT(*) FROM refunds WHERE user_id = $1 AND state IN ('awaiting_approval', 'pending', 'failed'))",
            )
            .bind(id)
            .fetch_one(pool)
            .await
        })
    }

    /// The user's invoices of weeks before `before` (`2026-W49`; one invoice per week), newest
    /// week first, each with its week's status.
    pub async fn user_invoices(
        &self,
        id: &str,
        before: &str,
        limit: i64,
    ) -> Result<Vec<CustomerInvoice>, sqlx::Error> {
        type Row = (i64, String, i64, i64, Option<String>, i64, String, String);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.id, i.week, i.total_minor, i.lines, c.state, \
                 CAST(COALESCE((SELECT SUM(r.amount_minor) FROM refunds r WHERE r.invoice_id = i.id AND r.state = 'succeeded' AND r.kind = 'customer'), 0) AS BIGINT), \
                 i.currency, w.status FROM invoices i JOIN weeks w ON w.week = i.week \
                 LEFT JOIN charges c ON c.invoice_id = i.id \
                 WHERE i.user_id = $1 AND i.week < $2 ORDER BY i.week DESC LIMIT $3",
            )
            .bind(id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, week, total, lines, charge, refunded, currency, status)| {
                let currency = currency_of(&currency)?;
                Ok(CustomerInvoice {
                    id,
                    week,
                    total: Money::from_minor(total, currency),
                    lines,
                    charge,
                    refunded: Money::from_minor(refunded, currency),
                    approved: status == "approved",
                })
            })
            .collect()
    }

    /// The user's charge attempts with ids below `before`, newest first.
    pub async fn user_charge_attempts(
        &self,
        id: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(i64, ChargeAttemptView)>, sqlx::Error> {
        let sql = format!("{SELECT_ATTEMPTS} WHERE i.user_id = $1 AND a.id < $2 ORDER BY a.id DESC LIMIT $3");
        let rows: Vec<AttemptRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).bind(before).bind(limit).fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|row| {
                let row_id = row.12;
                Ok((row_id, attempt_view(row)?))
            })
            .collect()
    }

    /// Every charge attempt of an invoice, newest first.
    pub async fn invoice_charge_attempts(
        &self,
        invoice_id: i64,
    ) -> Result<Vec<ChargeAttemptView>, sqlx::Error> {
        let sql = format!("{SELECT_ATTEMPTS} WHERE a.invoice_id = $1 ORDER BY a.attempt DESC");
        let rows: Vec<AttemptRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(invoice_id).fetch_all(pool).await?);
        rows.into_iter().map(attempt_view).collect()
    }

    /// The user's rides, as passenger or driver, that ended before the cursor `(ended_at,
    /// ride_id)`, newest first, with what each was billed.
    pub async fn user_rides(
        &self,
        id: &str,
        before: Option<(DateTime<Utc>, String)>,
        limit: i64,
        currency: BillingCurrency,
    ) -> Result<Vec<(DateTime<Utc>, CustomerRide)>, sqlx::Error> {
        // No cursor: from a date after every ride (not `MAX_UTC`, whose text SQLite would
        // compare as smaller than every stored date).
        let end_of_time =
            DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").map_err(|e| decode_msg(e.to_string()))?;
        let (at, ride) = before.unwrap_or((end_of_time.with_timezone(&Utc), String::new()));
        let open = ride.is_empty();
        type Row = (String, String, String, DateTime<Utc>, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT * FROM ( \
                   SELECT r.ride_id, 'passenger' AS role, r.driver_id, r.ended_at, r.distance_m, \
                     (SELECT l.amount_minor FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id \
                      AND l.ride_id = r.ride_id WHERE i.user_id = $1 ORDER BY i.id DESC LIMIT 1) AS billed, \
                     (SELECT l.invoice_id FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id \
                      AND l.ride_id = r.ride_id WHERE i.user_id = $1 ORDER BY i.id DESC LIMIT 1) AS invoice_id \
                   FROM ride_seats s JOIN rides r ON r.ride_id = s.ride_id WHERE s.passenger_id = $1 \
                   UNION ALL \
                   SELECT r.ride_id, 'driver' AS role, r.driver_id, r.ended_at, r.distance_m, NULL, NULL \
                   FROM rides r WHERE r.driver_id = $1 \
                 ) x WHERE x.ended_at < $2 OR (x.ended_at = $2 AND ($4 OR x.ride_id < $3)) \
                 ORDER BY x.ended_at DESC, x.ride_id DESC LIMIT $5",
            )
            .bind(id)
            .bind(at)
            .bind(&ride)
            .bind(open)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(ride_id, role, driver_id, ended_at, distance_m, billed, invoice_id)| {
                let ride = CustomerRide {
                    ride_id,
                    role,
                    driver_id,
                    ended_at: String::new(),
                    distance_m,
                    billed: billed.map(|m| Money::from_minor(m, currency)),
                    invoice_id,
                };
                (ended_at, ride)
            })
            .collect())
    }

    /// The driver's payouts with ids below `before`, newest first.
    pub async fn user_payouts(
        &self,
        id: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<CustomerPayout>, sqlx::Error> {
        type Row = (i64, String, i64, String, Option<String>);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT p.id, p.week, p.total_minor, p.currency, t.state FROM payouts p \
                 LEFT JOIN transfers t ON t.payout_id = p.id WHERE p.driver_id = $1 AND p.id < $2 ORDER BY p.id DESC LIMIT $3",
            )
            .bind(id)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(id, week, total, currency, transfer)| {
                Ok(CustomerPayout {
                    id,
                    week,
                    total: Money::from_minor(total, currency_of(&currency)?),
                    transfer,
                })
            })
            .collect()
    }

    /// The ledger transactions of an invoice: its charge, its write-off and its refunds.
    pub async fn invoice_ledger(&self, invoice_id: i64) -> Result<Vec<LedgerEntryView>, sqlx::Error> {
        type Row = (i64, String, String, String, DateTime<Utc>, String, i64);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                // One seek into (kind, reference) per kind of reference (the invoice's, its
                // refunds', its disputes'), whatever plan the statistics of the moment would give
                // an OR of them.
                "SELECT t.id, t.kind, t.reference, t.currency, t.created_at, p.account, p.amount_minor \
                 FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id \
                 WHERE t.kind IN ('charge', 'write_off') AND t.reference = $1 \
                 UNION ALL \
                 SELECT t.id, t.kind, t.reference, t.currency, t.created_at, p.account, p.amount_minor \
                 FROM refunds r JOIN ledger_transactions t ON t.kind = 'refund' AND t.reference = 'refund-' || CAST(r.id AS TEXT) \
                 JOIN ledger_postings p ON p.transaction_id = t.id WHERE r.invoice_id = $2 \
                 UNION ALL \
                 SELECT t.id, t.kind, t.reference, t.currency, t.created_at, p.account, p.amount_minor \
                 FROM disputes d JOIN ledger_transactions t ON t.kind IN ('dispute.withdrawal', 'dispute.won', 'dispute.lost') \
                 AND t.reference = d.provider_id \
                 JOIN ledger_postings p ON p.transaction_id = t.id WHERE d.invoice_id = $2 \
                 ORDER BY 1, 7 DESC",
            )
            .bind(format!("invoice-{invoice_id}"))
            .bind(invoice_id)
            .fetch_all(pool)
            .await?
        });
        let mut entries: Vec<LedgerEntryView> = Vec::new();
        for (id, kind, reference, currency, at, account, minor) in rows {
            let posting = (account, Money::from_minor(minor, currency_of(&currency)?));
            match entries.last_mut() {
                Some(last) if last.transaction_id == id => last.postings.push(posting),
                _ => entries.push(LedgerEntryView {
                    transaction_id: id,
                    kind,
                    reference,
                    created_at: rfc3339(at),
                    postings: vec![posting],
                }),
            }
        }
        Ok(entries)
    }
}

/// A ride cursor `ENDED_AT|RIDE_ID` back into its parts.
pub fn ride_cursor(text: &str) -> Result<(DateTime<Utc>, String), sqlx::Error> {
    let (at, ride) = text.split_once('|').ok_or_else(|| decode_msg("a ride cursor"))?;
    let at = DateTime::parse_from_rfc3339(at).map_err(|e| decode_msg(e.to_string()))?.with_timezone(&Utc);
    Ok((at, ride.to_owned()))
}

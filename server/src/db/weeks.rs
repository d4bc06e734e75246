//! A week's stored preview and its approval.
//!
//! The preview of a week is stored (`weeks`, `invoices`, `payouts` and their lines) with a hash of
//! what it was computed from (`inputs_hash`: the number of the week's rides, which are only ever
//! added, the ids of the late rides waiting, the pricing settings and the applied waivers) and a
//! hash of its content.
//! A draft is replaced whenever its inputs change. Approving freezes it, in one transaction that
//! holds the freeze lock, checks that no waiver of the week waits for a decision, that the inputs
//! are still the ones the draft was made from and that the approver saw this content, records
//! every billed ride once (`billed_rides`' primary key) and empties the late rides it took.
//!
//! The freeze lock: on SQLite the approval's `BEGIN IMMEDIATE` (the single writer); on PostgreSQL
//! an advisory lock, exclusive for the approval and shared by every ride being stored, so a ride
//! is either in the approved set or queued as late, never neither.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::QueryBuilder;

use super::audit::{Actor, NewAuditEntry};
use super::rides::{attendance_from, attendance_str};
use super::writes::Writes;
use super::{begin_writing, Db};
use crate::billing::anomalies::Anomalies;
use crate::billing::plan::{invoice_hash, WeekHasher, WeekPlan};
use crate::billing::planner::{LeanInvoice, LeanLine, LeanPayout, LeanPayoutLine, LeanPlan};
use crate::with_pool;
use app::model::billing::{Invoice, InvoiceLine, Payout, PayoutLine, Ride, WeekTotals};
use app::model::money::{BillingCurrency, Money};
use app::model::preview::{
    Anomaly, InvoiceDetail, InvoiceLineView, InvoicePage, InvoiceQuery, InvoiceRow, PayoutPage, PayoutRow,
    WeekStatus, DEFAULT_PAGE, MAX_PAGE,
};
use app::model::week::BillingWeek;

/// The PostgreSQL advisory lock key of the freeze ("billfrz").
pub const FREEZE_LOCK: i64 = 0x0062_696c_6c66_727a;

const COUNT_RIDES: &str = "SELECT COUNT(*) FROM rides WHERE ended_at >= $1 AND ended_at < $2";
const KEPT_COUNT: &str = "SELECT rides FROM week_ride_counts WHERE starts_at = $1 AND ends_at = $2";
const LATE_IDS: &str = "SELECT ride_id FROM late_rides WHERE ended_at < $1 ORDER BY ride_id";
const APPLIED_WAIVERS: &str = "SELECT id FROM waivers WHERE week = $1 AND state = 'applied' ORDER BY id";
/// Rows per multi-row INSERT (SQLite allows 32,766 parameters per statement).
const CHUNK: usize = 500;

/// What a draft was computed from. Rides are never changed or deleted, so their number says
/// which rides of the week there were; `waivers` are the ids of its applied waivers (a waiver is
/// applied once and only ever leaves that state, so their ids say which). Without waivers, the
/// hash is the one drafts had before waivers existed.
pub fn inputs_hash(settings_key: &str, rides: i64, late: &[String], waivers: &[i64]) -> String {
    use sha2::{Digest, Sha256};
    let json = if waivers.is_empty() {
        serde_json::to_vec(&("inputs/1", settings_key, rides, late))
    } else {
        serde_json::to_vec(&("inputs/2", settings_key, rides, late, waivers))
    }
    .expect("plain data serialises");
    format!("{:x}", Sha256::digest(json))
}

/// A week's stored preview, without its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWeek {
    pub week: BillingWeek,
    pub currency: BillingCurrency,
    pub status: WeekStatus,
    pub inputs_hash: String,
    pub content_hash: String,
    pub totals: WeekTotals,
    pub payouts: u64,
    pub late_lines: u64,
    pub flagged: u64,
    pub anomalies: Vec<Anomaly>,
    pub computed_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    /// The fee policy version it was priced with (`None`: the built-in policy).
    pub fee_policy_version: Option<i64>,
}

/// Why a week was not approved. Nothing is changed by any of these.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("{0} has no preview to approve; open its preview first")]
    NotPreviewed(BillingWeek),
    #[error("the rides or waivers of {0} changed since this preview was made; review the new preview")]
    Stale(BillingWeek),
    #[error("the preview of {week} is now {current}, not the one approved; review it again")]
    Changed { week: BillingWeek, current: String },
    #[error("ride {ride_id} is already billed in {billed_in}")]
    AlreadyBilled { ride_id: String, billed_in: String },
    #[error("waiver {waiver} of {user_id}'s invoice of {week} waits for a finance or admin decision; approve or reject it first")]
    WaiverAwaiting { week: BillingWeek, waiver: i64, user_id: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl ApproveError {
    /// What the refusal is about: the approved content hash, or the week.
    pub fn field(&self) -> &'static str {
        match self {
            ApproveError::Changed { .. } => "content_hash",
            _ => "week",
        }
    }
}

/// The stored ids of a week's invoices (by passenger) and payouts (by driver).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentIds {
    pub invoices: HashMap<String, i64>,
    pub payouts: HashMap<String, i64>,
}

/// What an approval did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approved {
    /// This call froze the week.
    Now(StoredWeek),
    /// It was frozen before, with this same content.
    Before(StoredWeek),
}

/// A stored invoice as the preview's JSON writes it (see [`Db::invoice_documents`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceDocument {
    pub id: i64,
    pub user_id: String,
    pub total_minor: i64,
    pub lines: Vec<DocumentLine>,
}

/// One line of an [`InvoiceDocument`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentLine {
    pub ride_id: String,
    pub amount_minor: i64,
    pub attendance: app::model::pricing::Attendance,
    pub ended_at: DateTime<Utc>,
    pub late: bool,
}

type WeekRow = (
    Option<i64>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<String>,
);

fn decode<E: std::error::Error + Send + Sync + 'static>(e: E) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

pub(crate) fn decode_msg(message: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(message.into().into())
}

pub(crate) fn currency_of(code: &str) -> Result<BillingCurrency, sqlx::Error> {
    BillingCurrency::from_code(code).map_err(decode)
}

fn anomalies_of(json: &str) -> Result<Vec<Anomaly>, sqlx::Error> {
    serde_json::from_str(json).map_err(decode)
}

/// `prefix` and the first string after every string that starts with it, for an indexed
/// prefix search (`x >= low AND x < high`) that compares bytes, as both databases do here.
fn prefix_range(prefix: &str) -> (String, String) {
    (prefix.to_owned(), format!("{prefix}{}", char::MAX))
}

impl Db {
    /// The ids of a stored week's invoices, by passenger, and of its payouts, by driver: the
    /// ids the provider's metadata, the dashboard's addresses, the exports and the API use. A
    /// draft's are replaced when it is recomputed; an approved week's never change.
    pub async fn document_ids(&self, week: BillingWeek) -> Result<DocumentIds, sqlx::Error> {
        let week = week.to_string();
        type Ids = Vec<(String, i64)>;
        let (invoices, payouts): (Ids, Ids) = with_pool!(self, pool => {
            let invoices = sqlx::query_as("SELECT user_id, id FROM invoices WHERE week = $1")
                .bind(&week)
                .fetch_all(pool)
                .await?;
            let payouts = sqlx::query_as("SELECT driver_id, id FROM payouts WHERE week = $1")
                .bind(&week)
                .fetch_all(pool)
                .await?;
            (invoices, payouts)
        });
        Ok(DocumentIds { invoices: invoices.into_iter().collect(), payouts: payouts.into_iter().collect() })
    }

    /// The fingerprint of a week's inputs now: the number of its rides, and the late rides of
    /// earlier weeks waiting for an approval. The number is the week range's kept count
    /// (`week_ride_counts`), one row read however many rides the week has; the first time a
    /// range is asked for, its rides are counted once (see [`Db::count_week_rides`]).
    pub async fn week_fingerprint(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(i64, Vec<String>), sqlx::Error> {
        let (kept, late): (Option<i64>, Vec<String>) = with_pool!(self, pool => {
            let kept = sqlx::query_scalar(KEPT_COUNT).bind(start).bind(end).fetch_optional(pool).await?;
            (kept, sqlx::query_scalar(LATE_IDS).bind(start).fetch_all(pool).await?)
        });
        let rides = match kept {
            Some(rides) => rides,
            None => self.count_week_rides(start, end).await?,
        };
        Ok((rides, late))
    }

    /// Counts the rides that ended in `[start, end)` and keeps the count, which every ride stored
    /// afterwards adds to ([`super::writes::Writes::count_new_rides`]). Counted as the only
    /// writer (SQLite's `BEGIN IMMEDIATE`; PostgreSQL's exclusive freeze lock, which waits for
    /// the transactions storing rides, each holding it shared), so no ride is missed or counted
    /// twice.
    async fn count_week_rides(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            if let Db::Postgres(_) = self {
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FREEZE_LOCK).execute(&mut *tx).await?;
            }
            // As the only writer, the count is exact: it replaces a count kept meanwhile.
            let rides: i64 = sqlx::query_scalar(
                "INSERT INTO week_ride_counts (starts_at, ends_at, rides) \
                 SELECT $1, $2, COUNT(*) FROM rides WHERE ended_at >= $1 AND ended_at < $2 \
                 ON CONFLICT (starts_at, ends_at) DO UPDATE SET rides = excluded.rides RETURNING rides",
            )
            .bind(start)
            .bind(end)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(rides)
        })
    }

    /// Forgets the kept count of `[start, end)`, so that the next fingerprint counts the rides
    /// again: what an approval that found the draft stale does, in case the count was wrong.
    async fn forget_week_count(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM week_ride_counts WHERE starts_at = $1 AND ends_at = $2")
                .bind(start)
                .bind(end)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The rides that arrived after their own (approved) week, ended before `before`.
    pub async fn late_rides_before(&self, before: DateTime<Utc>) -> Result<Vec<Ride>, sqlx::Error> {
        let rows: Vec<super::rides::RideRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT r.ride_id, r.driver_id, r.distance_m, r.started_at, r.ended_at, s.passenger_id, s.attendance \
                 FROM late_rides l JOIN rides r ON r.ride_id = l.ride_id JOIN ride_seats s ON s.ride_id = r.ride_id \
                 WHERE l.ended_at < $1 ORDER BY r.ended_at, r.ride_id, s.passenger_id",
            )
            .bind(before)
            .fetch_all(pool)
            .await?
        });
        super::rides::group_rides(rows)
    }

    /// The recent weeks before `week` with a stored preview: their totals, and per passenger
    /// the sum of their invoices and the number of weeks they had one.
    pub async fn history(
        &self,
        week: BillingWeek,
        weeks: u32,
    ) -> Result<crate::billing::anomalies::History, sqlx::Error> {
        let week_text = week.to_string();
        let recent: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT week, charged_minor FROM weeks WHERE week < $1 ORDER BY week DESC LIMIT $2")
                .bind(&week_text)
                .bind(i64::from(weeks))
                .fetch_all(pool)
                .await?
        });
        let Some(oldest) = recent.last().map(|(w, _)| w.clone()) else {
            return Ok(Default::default());
        };
        let users: Vec<(String, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT user_id, CAST(SUM(total_minor) AS BIGINT), COUNT(*) FROM invoices WHERE week >= $1 AND week < $2 GROUP BY user_id",
            )
            .bind(&oldest)
            .bind(&week_text)
            .fetch_all(pool)
            .await?
        });
        Ok(crate::billing::anomalies::History {
            users: users.into_iter().map(|(u, sum, n)| (u, (sum, n as u32))).collect(),
            week_totals: recent.into_iter().map(|(_, total)| total).collect(),
        })
    }

    /// Stores `plan` as the week's draft preview, replacing the previous draft. Returns its
    /// content hash, or `None`, changing nothing, when the week was approved meanwhile.
    pub async fn store_preview(
        &self,
        plan: &LeanPlan,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        inputs_hash: &str,
        anomalies: &Anomalies,
        fee_policy_version: Option<i64>,
    ) -> Result<Option<String>, sqlx::Error> {
        let week = plan.week.to_string();
        let currency = plan.currency.code();
        let now = super::now();
        let late_lines = plan.late_lines() as i64;
        let flagged = anomalies.flagged() as i64;
        let week_anomalies = serde_json::to_string(&anomalies.week).expect("anomalies serialise");
        // The week's content hash is computed as its invoices and payouts are stored, each one's
        // hash computed once, and set on the week's row before the transaction commits.
        let mut hasher = WeekHasher::new(plan.week, plan.currency);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let stored = sqlx::query(
                "INSERT INTO weeks (week, starts_at, ends_at, currency, status, inputs_hash, content_hash, invoices, \
                 payouts, charged_minor, fees_minor, payouts_minor, late_lines, flagged, anomalies, computed_at, \
                 fee_policy_version) \
                 VALUES ($1, $2, $3, $4, 'previewed', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 ON CONFLICT (week) DO UPDATE SET currency = excluded.currency, inputs_hash = excluded.inputs_hash, \
                 content_hash = excluded.content_hash, invoices = excluded.invoices, payouts = excluded.payouts, \
                 charged_minor = excluded.charged_minor, fees_minor = excluded.fees_minor, \
                 payouts_minor = excluded.payouts_minor, late_lines = excluded.late_lines, \
                 flagged = excluded.flagged, anomalies = excluded.anomalies, computed_at = excluded.computed_at, \
                 fee_policy_version = excluded.fee_policy_version WHERE weeks.status = 'previewed'",
            )
            .bind(&week)
            .bind(start)
            .bind(end)
            .bind(currency)
            .bind(inputs_hash)
            .bind("")
            .bind(plan.invoices().len() as i64)
            .bind(plan.payouts().len() as i64)
            .bind(plan.totals.charged.minor())
            .bind(plan.totals.fees.minor())
            .bind(plan.totals.payouts.minor())
            .bind(late_lines)
            .bind(flagged)
            .bind(&week_anomalies)
            .bind(now)
            .bind(fee_policy_version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if stored == 0 {
                return Ok(None);
            }
            // The draft it replaces, lines first (they have no foreign key to cascade from).
            for statement in [
                "DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM invoices WHERE week = $1)",
                "DELETE FROM payout_lines WHERE payout_id IN (SELECT id FROM payouts WHERE week = $1)",
                "DELETE FROM invoices WHERE week = $1",
                "DELETE FROM payouts WHERE week = $1",
            ] {
                sqlx::query(statement).bind(&week).execute(&mut *tx).await?;
            }

            // Invoices a chunk at a time, each chunk followed by its lines (their ids known), as
            // the plan lists them. Only the statements of full chunks are kept prepared: one of
            // 500 rows is tens of kilobytes in SQLite, and a cache of the last chunks of every
            // size held 18 MB.
            let mut invoices = plan.invoices();
            loop {
                let chunk: Vec<LeanInvoice> = invoices.by_ref().take(CHUNK).collect();
                if chunk.is_empty() {
                    break;
                }
                let mut insert = QueryBuilder::new(
                    "INSERT INTO invoices (week, user_id, currency, total_minor, lines, late_lines, content_hash, anomalies, flagged) ",
                );
                insert.push_values(&chunk, |mut row, invoice| {
                    let user_id = invoice.user_id();
                    let found = anomalies.of(invoice);
                    let digest = invoice.digest();
                    hasher.invoice(&user_id, &digest);
                    row.push_bind(&week)
                        .push_bind(user_id.into_owned())
                        .push_bind(currency)
                        .push_bind(invoice.total().minor())
                        .push_bind(invoice.len() as i64)
                        .push_bind(invoice.late_lines() as i64)
                        .push_bind(format!("{digest:x}"))
                        .push_bind(found.unwrap_or("[]").to_owned())
                        .push_bind(found.is_some());
                });
                insert.push(" RETURNING id, user_id");
                let ids: HashMap<String, i64> =
                    insert.build_query_as().persistent(chunk.len() == CHUNK).fetch_all(&mut *tx).await?.into_iter().map(|(id, user)| (user, id)).collect();
                let lines: Vec<(i64, LeanLine)> =
                    chunk.iter().flat_map(|i| {
                        let id = ids[&*i.user_id()];
                        i.lines().map(move |l| (id, l))
                    }).collect();
                tx.invoice_lines(&lines).await?;
            }

            let mut payouts = plan.payouts();
            loop {
                let chunk: Vec<LeanPayout> = payouts.by_ref().take(CHUNK).collect();
                if chunk.is_empty() {
                    break;
                }
                let mut insert = QueryBuilder::new(
                    "INSERT INTO payouts (week, driver_id, currency, gross_minor, fees_minor, total_minor, rides, content_hash) ",
                );
                insert.push_values(&chunk, |mut row, payout| {
                    let digest = payout.digest();
                    let driver_id = payout.driver_id();
                    hasher.payout(&driver_id, &digest);
                    let (gross, fees) = payout.gross_and_fees();
                    row.push_bind(&week)
                        .push_bind(driver_id.into_owned())
                        .push_bind(currency)
                        .push_bind(gross.minor())
                        .push_bind(fees.minor())
                        .push_bind(payout.total().minor())
                        .push_bind(payout.len() as i64)
                        .push_bind(format!("{digest:x}"));
                });
                insert.push(" RETURNING id, driver_id");
                let ids: HashMap<String, i64> =
                    insert.build_query_as().persistent(chunk.len() == CHUNK).fetch_all(&mut *tx).await?.into_iter().map(|(id, driver)| (driver, id)).collect();
                let lines: Vec<(i64, LeanPayoutLine)> =
                    chunk.iter().flat_map(|p| {
                        let id = ids[&*p.driver_id()];
                        p.lines().map(move |l| (id, l))
                    }).collect();
                tx.payout_lines(&lines).await?;
            }
            let content_hash = hasher.finish_with(plan.waivers());
            sqlx::query("UPDATE weeks SET content_hash = $1 WHERE week = $2")
                .bind(&content_hash)
                .bind(&week)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(content_hash))
        })
    }

    /// The stored invoices of a week, in user-id order (byte by byte, whatever the database's
    /// collation), as `(user_id, lines, late lines, total in minor units)`, read as they come.
    pub async fn each_invoice_total<E: From<sqlx::Error>>(
        &self,
        week: BillingWeek,
        mut each: impl FnMut(String, i64, i64, i64) -> Result<(), E>,
    ) -> Result<(), E> {
        use futures::TryStreamExt;
        let text = week.to_string();
        let order = match self {
            Db::Sqlite(_) => "user_id",
            Db::Postgres(_) => "user_id COLLATE \"C\"",
        };
        let sql = format!(
            "SELECT user_id, lines, late_lines, total_minor FROM invoices WHERE week = $1 ORDER BY {order}"
        );
        with_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, (String, i64, i64, i64)>(&sql).bind(&text).fetch(pool);
            while let Some((user, lines, late, total)) = rows.try_next().await? {
                each(user, lines, late, total)?;
            }
        });
        Ok(())
    }

    /// The week's stored preview, if it has one.
    pub async fn stored_week(&self, week: BillingWeek) -> Result<Option<StoredWeek>, sqlx::Error> {
        let text = week.to_string();
        let row: Option<WeekRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT fee_policy_version, currency, status, inputs_hash, content_hash, invoices, payouts, \
                 charged_minor, fees_minor, payouts_minor, late_lines, flagged, anomalies, computed_at, approved_at, \
                 approved_by FROM weeks WHERE week = $1",
            )
            .bind(&text)
            .fetch_optional(pool)
            .await?
        });
        let Some(row) = row else { return Ok(None) };
        let (
            fee_policy_version,
            currency,
            status,
            inputs_hash,
            content_hash,
            invoices,
            payouts,
            charged,
            fees,
            paid,
            late,
            flagged,
            anomalies,
            computed_at,
            approved_at,
            approved_by,
        ) = row;
        let currency = currency_of(&currency)?;
        let money = |minor| Money::from_minor(minor, currency);
        Ok(Some(StoredWeek {
            week,
            currency,
            status: WeekStatus::parse(&status)
                .ok_or_else(|| decode_msg(format!("week status {status:?}")))?,
            inputs_hash,
            content_hash,
            totals: WeekTotals {
                invoices: invoices as u64,
                charged: money(charged),
                fees: money(fees),
                payouts: money(paid),
            },
            payouts: payouts as u64,
            late_lines: late as u64,
            flagged: flagged as u64,
            anomalies: anomalies_of(&anomalies)?,
            computed_at,
            approved_at,
            approved_by,
            fee_policy_version,
        }))
    }

    /// The fee policy version a frozen week was approved with: `None` when the week is not
    /// approved, `Some(None)` for the built-in policy.
    pub async fn stored_week_policy_version(
        &self,
        week: BillingWeek,
    ) -> Result<Option<Option<i64>>, sqlx::Error> {
        Ok(self
            .stored_week(week)
            .await?
            .filter(|s| s.status == WeekStatus::Approved)
            .map(|s| s.fee_policy_version))
    }

    /// Freezes the week's draft, if it is still made from the week's current inputs (computed
    /// with `settings_key`) and its content is `expected_hash`. See the module's comment.
    pub async fn approve_week(
        &self,
        actor: &Actor,
        week: BillingWeek,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        settings_key: &str,
        expected_hash: &str,
    ) -> Result<Approved, ApproveError> {
        let text = week.to_string();
        let now = super::now();
        let outcome: Result<Option<()>, ApproveError> = with_pool!(self, pool => {
            async {
                let mut tx = pool.begin_with(begin_writing(self)).await?;
                if let Db::Postgres(_) = self {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(FREEZE_LOCK).execute(&mut *tx).await?;
                }
                let row: Option<(String, String, String)> =
                    sqlx::query_as("SELECT status, content_hash, inputs_hash FROM weeks WHERE week = $1")
                        .bind(&text)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((status, content_hash, stored_inputs)) = row else {
                    return Err(ApproveError::NotPreviewed(week));
                };
                if content_hash != expected_hash {
                    return Err(ApproveError::Changed { week, current: content_hash });
                }
                if status == WeekStatus::Approved.as_str() {
                    return Ok(None);
                }
                // A waiver waiting for a decision is decided first: what is approved is final.
                let waiting: Option<(i64, String)> = sqlx::query_as(
                    "SELECT id, user_id FROM waivers WHERE week = $1 AND state = 'awaiting_approval' ORDER BY id LIMIT 1",
                )
                .bind(&text)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((waiver, user_id)) = waiting {
                    return Err(ApproveError::WaiverAwaiting { week, waiver, user_id });
                }
                let rides: i64 = sqlx::query_scalar(COUNT_RIDES).bind(start).bind(end).fetch_one(&mut *tx).await?;
                let late: Vec<String> = sqlx::query_scalar(LATE_IDS).bind(start).fetch_all(&mut *tx).await?;
                let waivers: Vec<i64> = sqlx::query_scalar(APPLIED_WAIVERS).bind(&text).fetch_all(&mut *tx).await?;
                if inputs_hash(settings_key, rides, &late, &waivers) != stored_inputs {
                    return Err(ApproveError::Stale(week));
                }
                let updated = sqlx::query(
                    "UPDATE weeks SET status = 'approved', approved_at = $2, approved_by = $3 \
                     WHERE week = $1 AND status = 'previewed' AND content_hash = $4",
                )
                .bind(&text)
                .bind(now)
                .bind(&actor.name)
                .bind(expected_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(ApproveError::Stale(week));
                }
                // The rides the week bills are its payout lines' rides, one line each: a ride on
                // an invoice is always on a payout (a charged share is part of the ride's gross;
                // `waivers_keep_the_totals_balanced` checks it). In key order, so the index is
                // filled from one end rather than at random places (5 times faster at 100k).
                let billed = sqlx::query(
                    "INSERT INTO billed_rides (ride_id, week) \
                     SELECT pl.ride_id, $1 FROM payout_lines pl JOIN payouts p ON p.id = pl.payout_id WHERE p.week = $1 \
                     ORDER BY pl.ride_id",
                )
                .bind(&text)
                .execute(&mut *tx)
                .await;
                if let Err(sqlx::Error::Database(e)) = &billed {
                    if e.is_unique_violation() {
                        drop(tx);
                        return Err(self.already_billed(&text).await?);
                    }
                }
                billed?;
                sqlx::query("DELETE FROM late_rides WHERE ended_at < $1").bind(start).execute(&mut *tx).await?;
                let mut entry = NewAuditEntry::new(actor, "week.approve", "week", &text);
                entry.after = Some(json!({ "content_hash": expected_hash, "inputs_hash": stored_inputs }));
                tx.audit(&entry).await?;
                tx.commit().await?;
                Ok(Some(()))
            }
            .await
        });
        if let Err(ApproveError::Stale(_)) = &outcome {
            self.forget_week_count(start, end).await?;
        }
        let stored = self.stored_week(week).await?.ok_or(ApproveError::NotPreviewed(week))?;
        Ok(match outcome? {
            Some(_) => Approved::Now(stored),
            None => Approved::Before(stored),
        })
    }

    /// The first ride of `week`'s draft that another week already billed.
    async fn already_billed(&self, week: &str) -> Result<ApproveError, sqlx::Error> {
        let row: Option<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT b.ride_id, b.week FROM billed_rides b JOIN payout_lines pl ON pl.ride_id = b.ride_id \
                 JOIN payouts p ON p.id = pl.payout_id WHERE p.week = $1 AND b.week <> $1 ORDER BY b.ride_id LIMIT 1",
            )
            .bind(week)
            .fetch_optional(pool)
            .await?
        });
        let (ride_id, billed_in) =
            row.ok_or_else(|| decode_msg("a ride was billed twice but none is found"))?;
        Ok(ApproveError::AlreadyBilled { ride_id, billed_in })
    }

    /// A page of the week's invoices: user id or name starting with `q` (case-insensitive for
    /// names), after the user id `after`, in user-id order. Two indexed queries (by id, by
    /// name) merged, so a page costs the same at a million invoices as at ten.
    pub async fn invoice_page(&self, query: &InvoiceQuery) -> Result<InvoicePage, sqlx::Error> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let after = query.after.clone().unwrap_or_default();
        let q = query.q.trim();
        let flagged = if query.flagged_only { " AND i.flagged = TRUE" } else { "" };
        let columns = "SELECT i.id, i.user_id, u.name, i.currency, i.total_minor, i.lines, i.late_lines, \
                       i.anomalies, c.state FROM";
        let joined = "JOIN users u ON u.id = i.user_id LEFT JOIN charges c ON c.invoice_id = i.id";
        // By user id: the page's invoices first, then their passengers and charges (joined
        // first, PostgreSQL merged the whole users index from its start, drivers included).
        let by_id = |range: &str| {
            format!(
                "{columns} (SELECT * FROM invoices i WHERE i.week = $1 AND i.user_id > $2{flagged}{range} \
                 ORDER BY i.user_id LIMIT $3) i {joined} ORDER BY i.user_id"
            )
        };
        type Row = (i64, String, String, String, i64, i64, i64, String, Option<String>);
        let mut rows: Vec<Row> = Vec::new();
        let searches: Vec<(String, (String, String))> = if q.is_empty() {
            vec![(by_id(""), (String::new(), String::new()))]
        } else {
            vec![
                (by_id(" AND i.user_id >= $4 AND i.user_id < $5"), prefix_range(q)),
                (
                    format!(
                        "{columns} invoices i {joined} WHERE i.week = $1 AND i.user_id > $2{flagged} \
                         AND u.name_key >= $4 AND u.name_key < $5 ORDER BY i.user_id LIMIT $3"
                    ),
                    prefix_range(&super::rides::name_key(q)),
                ),
            ]
        };
        for (sql, (low, high)) in &searches {
            let found: Vec<Row> = with_pool!(self, pool => {
                let mut statement = sqlx::query_as(sql).bind(&query.week).bind(&after).bind(i64::from(limit) + 1);
                if !q.is_empty() {
                    statement = statement.bind(low).bind(high);
                }
                statement.fetch_all(pool).await?
            });
            rows.extend(found);
        }
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        rows.dedup_by(|a, b| a.0 == b.0);
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_after = if more { rows.last().map(|r| r.1.clone()) } else { None };
        let rows = rows
            .into_iter()
            .map(|(id, user_id, user_name, currency, total, lines, late, anomalies, charge)| {
                Ok(InvoiceRow {
                    id,
                    user_id,
                    user_name,
                    total: Money::from_minor(total, currency_of(&currency)?),
                    lines: lines as u32,
                    late_lines: late as u32,
                    anomalies: anomalies_of(&anomalies)?,
                    charge,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(InvoicePage { rows, next_after })
    }

    /// The id of `user_id`'s invoice of `week`, if there is one.
    pub async fn invoice_id(&self, week: BillingWeek, user_id: &str) -> Result<Option<i64>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT id FROM invoices WHERE week = $1 AND user_id = $2")
                .bind(week.to_string())
                .bind(user_id)
                .fetch_optional(pool)
                .await
        })
    }

    /// One invoice with its lines (and each line's ride), in the order the rides ended.
    pub async fn invoice_detail(&self, id: i64) -> Result<Option<InvoiceDetail>, sqlx::Error> {
        type Head = (String, String, String, String, i64, String, String, String);
        let head: Option<Head> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.week, w.status, i.user_id, u.name, i.total_minor, i.currency, i.content_hash, i.anomalies \
                 FROM invoices i JOIN users u ON u.id = i.user_id JOIN weeks w ON w.week = i.week WHERE i.id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some((week, status, user_id, user_name, total, currency, content_hash, anomalies)) = head else {
            return Ok(None);
        };
        let currency = currency_of(&currency)?;
        type Line = (String, String, i64, String, DateTime<Utc>, DateTime<Utc>, i64, bool);
        let lines: Vec<Line> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT l.ride_id, r.driver_id, l.amount_minor, l.attendance, r.started_at, r.ended_at, r.distance_m, l.late \
                 FROM invoice_lines l JOIN rides r ON r.ride_id = l.ride_id WHERE l.invoice_id = $1 \
                 ORDER BY r.ended_at, l.ride_id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        let lines = lines
            .into_iter()
            .map(|(ride_id, driver_id, amount, attendance, started_at, ended_at, distance_m, late)| {
                Ok(InvoiceLineView {
                    ride_id,
                    driver_id,
                    amount: Money::from_minor(amount, currency),
                    attendance: attendance_from(&attendance)?,
                    started_at,
                    ended_at,
                    ended_local: String::new(),
                    distance_m,
                    late,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Some(InvoiceDetail {
            id,
            week: BillingWeek::parse(&week).map_err(decode_msg)?,
            status: WeekStatus::parse(&status)
                .ok_or_else(|| decode_msg(format!("week status {status:?}")))?,
            user_id,
            user_name,
            total: Money::from_minor(total, currency),
            content_hash,
            lines,
            anomalies: anomalies_of(&anomalies)?,
            waivers: Vec::new(),
            waiver_request_id: String::new(),
            time_zone: String::new(),
        }))
    }

    /// A page of the week's payouts after the driver id `after`, in driver-id order.
    pub async fn payout_page(
        &self,
        week: BillingWeek,
        after: &str,
        limit: u32,
    ) -> Result<PayoutPage, sqlx::Error> {
        let limit = limit.clamp(1, MAX_PAGE);
        type Row = (i64, String, String, String, i64, i64, i64, i64, Option<String>);
        let mut rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT p.id, p.driver_id, u.name, p.currency, p.gross_minor, p.fees_minor, p.total_minor, p.rides, \
                 t.state FROM payouts p JOIN users u ON u.id = p.driver_id \
                 LEFT JOIN transfers t ON t.payout_id = p.id WHERE p.week = $1 AND p.driver_id > $2 \
                 ORDER BY p.driver_id LIMIT $3",
            )
            .bind(week.to_string())
            .bind(after)
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?
        });
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_after = if more { rows.last().map(|r| r.1.clone()) } else { None };
        let rows = rows
            .into_iter()
            .map(|(id, driver_id, driver_name, currency, gross, fees, total, rides, transfer)| {
                let currency = currency_of(&currency)?;
                Ok(PayoutRow {
                    id,
                    driver_id,
                    driver_name,
                    gross: Money::from_minor(gross, currency),
                    fees: Money::from_minor(fees, currency),
                    total: Money::from_minor(total, currency),
                    rides: rides as u32,
                    transfer,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(PayoutPage { rows, next_after })
    }

    /// The stored invoices and payouts of a week, as a plan (for the CLI and the JSON API).
    /// Up to `limit` of a stored week's invoices after user `after` (in user-id byte order), each
    /// with its stored id and lines (in the order they ended): one page of the preview's JSON,
    /// read so that a week of any size is written a page at a time.
    pub async fn invoice_documents(
        &self,
        week: BillingWeek,
        after: &str,
        limit: i64,
    ) -> Result<Vec<InvoiceDocument>, sqlx::Error> {
        let text = week.to_string();
        let heads: Vec<(i64, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, user_id, total_minor FROM invoices WHERE week = $1 AND user_id > $2 \
                 ORDER BY user_id LIMIT $3",
            )
            .bind(&text)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let (Some(first), Some(last)) = (heads.first(), heads.last()) else { return Ok(Vec::new()) };
        // The page's lines in one range read: its invoices are consecutive in user order, and
        // their ids were given in that order when the week was stored.
        type LineRow = (i64, String, i64, String, DateTime<Utc>, bool);
        let rows: Vec<LineRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT l.invoice_id, l.ride_id, l.amount_minor, l.attendance, l.ended_at, l.late \
                 FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id \
                 WHERE i.week = $1 AND i.user_id >= $2 AND i.user_id <= $3 \
                 ORDER BY i.user_id, l.ended_at, l.ride_id",
            )
            .bind(&text)
            .bind(&first.1)
            .bind(&last.1)
            .fetch_all(pool)
            .await?
        });
        let mut documents: Vec<InvoiceDocument> = heads
            .into_iter()
            .map(|(id, user_id, total_minor)| InvoiceDocument { id, user_id, total_minor, lines: Vec::new() })
            .collect();
        let index: HashMap<i64, usize> = documents.iter().enumerate().map(|(n, d)| (d.id, n)).collect();
        for (invoice, ride_id, amount_minor, attendance, ended_at, late) in rows {
            let Some(&n) = index.get(&invoice) else { continue };
            let attendance = attendance_from(&attendance)?;
            documents[n].lines.push(DocumentLine { ride_id, amount_minor, attendance, ended_at, late });
        }
        Ok(documents)
    }

    /// Up to `limit` of a stored week's payouts after driver `after` (in driver-id byte order):
    /// (stored id, driver, total, rides, fees) in minor units.
    pub async fn payout_documents(
        &self,
        week: BillingWeek,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, i64, i64, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, driver_id, total_minor, rides, fees_minor FROM payouts \
                 WHERE week = $1 AND driver_id > $2 ORDER BY driver_id LIMIT $3",
            )
            .bind(week.to_string())
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    pub async fn stored_plan(&self, stored: &StoredWeek) -> Result<WeekPlan, sqlx::Error> {
        let week = stored.week;
        let text = week.to_string();
        let money = |minor| Money::from_minor(minor, stored.currency);
        type InvoiceLineRow = (String, String, i64, String, DateTime<Utc>, bool);
        let rows: Vec<InvoiceLineRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.user_id, l.ride_id, l.amount_minor, l.attendance, l.ended_at, l.late \
                 FROM invoices i JOIN invoice_lines l ON l.invoice_id = i.id WHERE i.week = $1 \
                 ORDER BY i.user_id, l.ended_at, l.ride_id",
            )
            .bind(&text)
            .fetch_all(pool)
            .await?
        });
        let mut invoices: Vec<Invoice> = Vec::new();
        for (user_id, ride_id, amount, attendance, ended_at, late) in rows {
            let line = InvoiceLine {
                ride_id,
                amount: money(amount),
                attendance: attendance_from(&attendance)?,
                ended_at,
                late,
            };
            match invoices.last_mut() {
                Some(last) if last.user_id == user_id => last.lines.push(line),
                _ => invoices.push(Invoice { user_id, week, lines: vec![line], total: money(0) }),
            }
        }
        for invoice in &mut invoices {
            invoice.total = money(invoice.lines.iter().map(|l| l.amount.minor()).sum());
        }
        type PayoutLineRow = (String, String, i64, i64, i64, bool);
        let rows: Vec<PayoutLineRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT p.driver_id, l.ride_id, l.gross_minor, l.fee_minor, l.net_minor, l.late \
                 FROM payouts p JOIN payout_lines l ON l.payout_id = p.id JOIN rides r ON r.ride_id = l.ride_id \
                 WHERE p.week = $1 ORDER BY p.driver_id, r.ended_at, l.ride_id",
            )
            .bind(&text)
            .fetch_all(pool)
            .await?
        });
        let mut payouts: Vec<Payout> = Vec::new();
        for (driver_id, ride_id, gross, fee, net, late) in rows {
            let line = PayoutLine { ride_id, gross: money(gross), fee: money(fee), net: money(net), late };
            match payouts.last_mut() {
                Some(last) if last.driver_id == driver_id => last.lines.push(line),
                _ => payouts.push(Payout { driver_id, week, lines: vec![line], total: money(0) }),
            }
        }
        for payout in &mut payouts {
            payout.total = money(payout.lines.iter().map(|l| l.net.minor()).sum());
        }
        // In the planner's order (user and driver ids byte by byte), whatever the database's
        // collation: a week reads the same stored as just planned.
        invoices.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        payouts.sort_by(|a, b| a.driver_id.cmp(&b.driver_id));
        Ok(WeekPlan { week, invoices, payouts, totals: stored.totals.clone() })
    }

    /// Checks a stored invoice against its content hash, recomputed from its stored lines: the
    /// run calls this before it charges. `Ok(false)` when the content no longer matches.
    pub async fn invoice_matches_hash(&self, id: i64) -> Result<bool, sqlx::Error> {
        let checked = self.invoices_match_hashes(&[id]).await?;
        checked.get(&id).map(Option::is_some).ok_or(sqlx::Error::RowNotFound)
    }

    /// [`Db::invoice_matches_hash`] for a batch of invoices, in two queries: for each one whose
    /// stored lines still add up to its total and hash to its approved content hash, that frozen
    /// total (what may be charged); `None` for one that does not. An id with no invoice is
    /// missing from the answer.
    pub async fn invoices_match_hashes(&self, ids: &[i64]) -> Result<HashMap<i64, Option<i64>>, sqlx::Error> {
        type Head = (i64, String, String, String, i64, String);
        type LineRow = (i64, String, i64, String, DateTime<Utc>, bool);
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let (heads, rows): (Vec<Head>, Vec<LineRow>) = with_pool!(self, pool => {
            let mut heads = QueryBuilder::new(
                "SELECT id, week, user_id, currency, total_minor, content_hash FROM invoices WHERE id IN (",
            );
            super::push_in_list(&mut heads, ids.iter().copied());
            let mut lines = QueryBuilder::new(
                "SELECT invoice_id, ride_id, amount_minor, attendance, ended_at, late FROM invoice_lines WHERE invoice_id IN (",
            );
            super::push_in_list(&mut lines, ids.iter().copied());
            (heads.build_query_as().fetch_all(pool).await?, lines.build_query_as().fetch_all(pool).await?)
        });
        let mut lines_of: HashMap<i64, Vec<LineRow>> = HashMap::new();
        for row in rows {
            lines_of.entry(row.0).or_default().push(row);
        }
        let mut checked = HashMap::with_capacity(heads.len());
        for (id, week, user_id, currency, total, hash) in heads {
            let currency = currency_of(&currency)?;
            let lines = lines_of
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, ride_id, amount, attendance, ended_at, late)| {
                    Ok(InvoiceLine {
                        ride_id,
                        amount: Money::from_minor(amount, currency),
                        attendance: attendance_from(&attendance)?,
                        ended_at,
                        late,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let week = BillingWeek::parse(&week).map_err(decode_msg)?;
            let invoice = Invoice { user_id, week, lines, total: Money::from_minor(total, currency) };
            let sum: i64 = invoice.lines.iter().map(|l| l.amount.minor()).sum();
            checked.insert(id, (sum == total && invoice_hash(&invoice) == hash).then_some(total));
        }
        Ok(checked)
    }
}

/// A draft's lines, written inside the transaction that stores the draft (their invoice's or
/// payout's id known): SQLite takes them as INSERTs of [`CHUNK`] rows, prepared once; PostgreSQL
/// by COPY, one stream of rows per call with no statement to parse or parameters to bind.
trait DraftLines {
    async fn invoice_lines(&mut self, lines: &[(i64, LeanLine)]) -> Result<(), sqlx::Error>;
    async fn payout_lines(&mut self, lines: &[(i64, LeanPayoutLine)]) -> Result<(), sqlx::Error>;
}

impl DraftLines for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn invoice_lines(&mut self, lines: &[(i64, LeanLine)]) -> Result<(), sqlx::Error> {
        for lines in lines.chunks(CHUNK) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO invoice_lines (invoice_id, ride_id, amount_minor, attendance, ended_at, late) ",
            );
            insert.push_values(lines, |mut row, (id, line)| {
                row.push_bind(*id)
                    .push_bind(&line.ride.ride_id)
                    .push_bind(line.amount.minor())
                    .push_bind(attendance_str(line.attendance))
                    .push_bind(line.ride.ended_at)
                    .push_bind(line.ride.late);
            });
            insert.build().persistent(lines.len() == CHUNK).execute(&mut **self).await?;
        }
        Ok(())
    }

    async fn payout_lines(&mut self, lines: &[(i64, LeanPayoutLine)]) -> Result<(), sqlx::Error> {
        for lines in lines.chunks(CHUNK) {
            let mut insert = QueryBuilder::new(
                "INSERT INTO payout_lines (payout_id, ride_id, gross_minor, fee_minor, net_minor, late) ",
            );
            insert.push_values(lines, |mut row, (id, line)| {
                row.push_bind(*id)
                    .push_bind(&line.ride.ride_id)
                    .push_bind(line.gross.minor())
                    .push_bind(line.fee.minor())
                    .push_bind(line.net.minor())
                    .push_bind(line.ride.late);
            });
            insert.build().persistent(lines.len() == CHUNK).execute(&mut **self).await?;
        }
        Ok(())
    }
}

impl DraftLines for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn invoice_lines(&mut self, lines: &[(i64, LeanLine)]) -> Result<(), sqlx::Error> {
        let mut rows = CopyRows::with_capacity(lines.len());
        for (id, line) in lines {
            rows.field(id)
                .text(&line.ride.ride_id)
                .field(line.amount.minor())
                .text(attendance_str(line.attendance))
                .field(line.ride.ended_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
                .last(line.ride.late);
        }
        rows.copy(
            self,
            "COPY invoice_lines (invoice_id, ride_id, amount_minor, attendance, ended_at, late) FROM STDIN",
        )
        .await
    }

    async fn payout_lines(&mut self, lines: &[(i64, LeanPayoutLine)]) -> Result<(), sqlx::Error> {
        let mut rows = CopyRows::with_capacity(lines.len());
        for (id, line) in lines {
            rows.field(id)
                .text(&line.ride.ride_id)
                .field(line.gross.minor())
                .field(line.fee.minor())
                .field(line.net.minor())
                .last(line.ride.late);
        }
        rows.copy(
            self,
            "COPY payout_lines (payout_id, ride_id, gross_minor, fee_minor, net_minor, late) FROM STDIN",
        )
        .await
    }
}

/// Rows in COPY's text format: fields separated by tabs, rows ended by newlines, a text field's
/// backslashes, tabs and line breaks escaped.
struct CopyRows(String);

impl CopyRows {
    fn with_capacity(rows: usize) -> CopyRows {
        CopyRows(String::with_capacity(rows * 96))
    }

    /// A field whose text needs no escaping (numbers, times), and the tab after it.
    fn field(&mut self, value: impl std::fmt::Display) -> &mut CopyRows {
        use std::fmt::Write;
        write!(self.0, "{value}\t").expect("writing to a string");
        self
    }

    /// A text field, escaped, and the tab after it.
    fn text(&mut self, value: &str) -> &mut CopyRows {
        for c in value.chars() {
            match c {
                '\\' => self.0.push_str("\\\\"),
                '\t' => self.0.push_str("\\t"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                c => self.0.push(c),
            }
        }
        self.0.push('\t');
        self
    }

    /// A row's last field, a boolean, and the row's end.
    fn last(&mut self, value: bool) {
        self.0.push_str(if value { "t\n" } else { "f\n" });
    }

    async fn copy(self, conn: &mut sqlx::PgConnection, statement: &str) -> Result<(), sqlx::Error> {
        if self.0.is_empty() {
            return Ok(());
        }
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(self.0.into_bytes()).await?;
        copy.finish().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::CopyRows;

    #[test]
    fn copy_rows_escape_text_and_end_each_row() {
        let mut rows = CopyRows::with_capacity(2);
        rows.field(7).text("r\\1\tx\ny\r").field("2026-12-01T10:00:00.000001Z").last(true);
        rows.field(8).text("plain").field(-3).last(false);
        assert_eq!(rows.0, "7\tr\\\\1\\tx\\ny\\r\t2026-12-01T10:00:00.000001Z\tt\n8\tplain\t-3\tf\n");
    }
}

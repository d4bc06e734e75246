//! Waivers' storage. The database keeps the promises: a request id is one waiver (unique); a
//! line, or an invoice, is waived at most once while a waiver of it is applied or waiting (the
//! partial unique indexes of `0022_waivers.sql`); an approval is another person's (a CHECK). Every
//! change is written with its audit entry in one transaction that holds the freeze lock in shared
//! mode (PostgreSQL; SQLite's `BEGIN IMMEDIATE` is the single writer) and checks that the week is
//! still a draft: a week's approval, which holds that lock exclusively, sees every waiver
//! committed before it and none after.

use chrono::{DateTime, Utc};

use super::audit::NewAuditEntry;
use super::writes::Writes;
use super::{begin_writing, now, Db};
use crate::billing::waived::WaivedKey;
use crate::with_pool;
use app::model::waiver::WaiverPart;

/// A waiver as stored, with its line's ride when it has one.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WaiverRow {
    pub id: i64,
    pub request_id: String,
    pub week: String,
    pub user_id: String,
    pub ride_id: Option<String>,
    pub part: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub note: String,
    pub state: String,
    pub requested_by: String,
    pub requested_by_id: Option<i64>,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    /// The ride's driver, distance and times (a line's waiver).
    pub driver_id: Option<String>,
    pub distance_m: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

const SELECT_WAIVER: &str =
    "SELECT w.id, w.request_id, w.week, w.user_id, w.ride_id, w.part, w.amount_minor, \
     w.currency, w.reason, w.note, w.state, w.requested_by, w.requested_by_id, w.requested_at, w.decided_by, \
     w.decided_at, w.decision_note, r.driver_id, r.distance_m, r.started_at, r.ended_at \
     FROM waivers w LEFT JOIN rides r ON r.ride_id = w.ride_id";

/// A waiver to write: its fields are checked, its state decided (applied, or waiting for
/// approval); the database does the rest.
#[derive(Clone, Debug)]
pub struct WaiverInsert {
    pub request_id: String,
    pub week: String,
    pub user_id: String,
    pub ride_id: Option<String>,
    pub part: WaiverPart,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: &'static str,
    pub note: String,
    /// `applied` or `awaiting_approval`.
    pub state: &'static str,
    pub requested_by: String,
    pub requested_by_id: Option<i64>,
    /// The audit entry written with it.
    pub audit: NewAuditEntry,
}

/// What writing a waiver came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaiverInserted {
    /// Written now.
    Created(WaiverRow),
    /// This request id was written before: that waiver, unchanged.
    Existing(WaiverRow),
    /// Refused: the line (or invoice) already has this waiver, applied or waiting.
    Taken(WaiverRow),
    /// Refused: the week is approved (its waivers are frozen with it).
    Frozen,
    /// Refused: the week has no stored preview.
    NotPreviewed,
}

/// What a decision or a withdrawal came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaiverChanged {
    /// Changed now: the waiver after.
    Done(WaiverRow),
    /// No such waiver.
    NotFound,
    /// Refused: its week is approved.
    Frozen(WaiverRow),
    /// Refused: it is not in a state this change applies to (decided meanwhile).
    NotOpen(WaiverRow),
}

/// Whether `e` is a unique constraint's refusal.
fn unique_violation<T>(result: &Result<T, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.is_unique_violation())
}

impl Db {
    /// The applied waivers of `week`, in id order: what its draft is planned with and what its
    /// inputs hash and content hash name.
    pub async fn applied_waivers(&self, week: &str) -> Result<Vec<WaivedKey>, sqlx::Error> {
        let rows: Vec<(i64, String, Option<String>, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, user_id, ride_id, part FROM waivers WHERE week = $1 AND state = 'applied' ORDER BY id",
            )
            .bind(week)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(waived_key).collect()
    }

    /// The waivers of `week` (of one passenger when `user_id` is given), oldest first.
    pub async fn waivers_of_week(
        &self,
        week: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<WaiverRow>, sqlx::Error> {
        with_pool!(self, pool => {
            match user_id {
                Some(user) => {
                    let sql = format!("{SELECT_WAIVER} WHERE w.week = $1 AND w.user_id = $2 ORDER BY w.id");
                    sqlx::query_as(&sql).bind(week).bind(user).fetch_all(pool).await
                }
                None => {
                    let sql = format!("{SELECT_WAIVER} WHERE w.week = $1 ORDER BY w.id");
                    sqlx::query_as(&sql).bind(week).fetch_all(pool).await
                }
            }
        })
    }

    /// One waiver.
    pub async fn waiver(&self, id: i64) -> Result<Option<WaiverRow>, sqlx::Error> {
        let sql = format!("{SELECT_WAIVER} WHERE w.id = $1");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
    }

    /// The waiver of a request id.
    pub async fn waiver_by_request(&self, request_id: &str) -> Result<Option<WaiverRow>, sqlx::Error> {
        let sql = format!("{SELECT_WAIVER} WHERE w.request_id = $1");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(request_id).fetch_optional(pool).await)
    }

    /// Writes a waiver once per request id, with its audit entry, while its week is a draft and
    /// its line (or invoice) has no other open waiver. See the module's comment.
    pub async fn insert_waiver(&self, new: &WaiverInsert) -> Result<WaiverInserted, sqlx::Error> {
        let at = now();
        let by_request = format!("{SELECT_WAIVER} WHERE w.request_id = $1");
        let open = format!(
            "{SELECT_WAIVER} WHERE w.week = $1 AND w.user_id = $2 AND w.state IN ('awaiting_approval', 'applied') \
             AND (w.ride_id = $3 OR (w.ride_id IS NULL AND $4)) ORDER BY w.id LIMIT 1"
        );
        let ride = new.ride_id.clone().unwrap_or_default();
        let whole = new.ride_id.is_none();
        let outcome: Result<Option<WaiverInserted>, sqlx::Error> = with_pool!(self, pool => {
            async {
                let mut tx = pool.begin_with(begin_writing(self)).await?;
                tx.share_freeze_lock().await?;
                let existing: Option<WaiverRow> =
                    sqlx::query_as(&by_request).bind(&new.request_id).fetch_optional(&mut *tx).await?;
                if let Some(existing) = existing {
                    tx.rollback().await?;
                    return Ok(Some(WaiverInserted::Existing(existing)));
                }
                let status: Option<String> = sqlx::query_scalar("SELECT status FROM weeks WHERE week = $1")
                    .bind(&new.week)
                    .fetch_optional(&mut *tx)
                    .await?;
                match status.as_deref() {
                    None => {
                        tx.rollback().await?;
                        return Ok(Some(WaiverInserted::NotPreviewed));
                    }
                    Some("previewed") => {}
                    Some(_) => {
                        tx.rollback().await?;
                        return Ok(Some(WaiverInserted::Frozen));
                    }
                }
                let taken: Option<WaiverRow> = sqlx::query_as(&open)
                    .bind(&new.week)
                    .bind(&new.user_id)
                    .bind(&ride)
                    .bind(whole)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(taken) = taken {
                    tx.rollback().await?;
                    return Ok(Some(WaiverInserted::Taken(taken)));
                }
                let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
                    "INSERT INTO waivers (request_id, week, user_id, ride_id, part, amount_minor, currency, reason, note, \
                     state, requested_by, requested_by_id, requested_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
                )
                .bind(&new.request_id)
                .bind(&new.week)
                .bind(&new.user_id)
                .bind(&new.ride_id)
                .bind(new.part.as_str())
                .bind(new.amount_minor)
                .bind(&new.currency)
                .bind(new.reason)
                .bind(&new.note)
                .bind(new.state)
                .bind(&new.requested_by)
                .bind(new.requested_by_id)
                .bind(at)
                .fetch_one(&mut *tx)
                .await;
                // Another request for the same id or line committed between the reads and the
                // insert (PostgreSQL; SQLite has one writer): answered below from what it wrote.
                if unique_violation(&inserted) {
                    drop(tx);
                    return Ok(None);
                }
                let id = inserted?;
                let mut entry = new.audit.clone();
                entry.after = Some(serde_json::json!({
                    "waiver_id": id, "week": new.week, "user_id": new.user_id, "ride_id": new.ride_id,
                    "part": new.part.as_str(), "amount_minor": new.amount_minor, "currency": new.currency,
                    "reason": new.reason, "state": new.state, "request_id": new.request_id,
                }));
                tx.audit(&entry).await?;
                let row: WaiverRow = sqlx::query_as(&by_request).bind(&new.request_id).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(WaiverInserted::Created(row)))
            }
            .await
        });
        if let Some(done) = outcome? {
            return Ok(done);
        }
        // The race above: the request's own waiver, or the line's, is what the other wrote.
        if let Some(existing) = self.waiver_by_request(&new.request_id).await? {
            return Ok(WaiverInserted::Existing(existing));
        }
        let open =
            self.waivers_of_week(&new.week, Some(&new.user_id)).await?.into_iter().find(|w| {
                (w.state == "applied" || w.state == "awaiting_approval") && w.ride_id == new.ride_id
            });
        open.map(WaiverInserted::Taken).ok_or_else(|| {
            super::weeks::decode_msg(
                "a waiver's unique index refused it, but no waiver holds its request id or line",
            )
        })
    }

    /// Approves (applied) or rejects a waiver waiting for approval, with its audit entry, while
    /// its week is a draft.
    pub async fn decide_waiver(
        &self,
        id: i64,
        approve: bool,
        (by, by_id): (&str, Option<i64>),
        note: &str,
        audit: &NewAuditEntry,
    ) -> Result<WaiverChanged, sqlx::Error> {
        let state = if approve { "applied" } else { "rejected" };
        self.change_waiver(id, &["awaiting_approval"], state, (by, by_id), note, audit).await
    }

    /// Withdraws a waiver that is applied or waiting, with its audit entry, while its week is a
    /// draft: its line is charged again.
    pub async fn withdraw_waiver(
        &self,
        id: i64,
        (by, by_id): (&str, Option<i64>),
        note: &str,
        audit: &NewAuditEntry,
    ) -> Result<WaiverChanged, sqlx::Error> {
        self.change_waiver(id, &["awaiting_approval", "applied"], "withdrawn", (by, by_id), note, audit).await
    }

    /// Moves waiver `id` from one of `from` to `to`, recording who and why, under the freeze
    /// lock (shared) and only while its week is a draft.
    async fn change_waiver(
        &self,
        id: i64,
        from: &[&str],
        to: &'static str,
        (by, by_id): (&str, Option<i64>),
        note: &str,
        audit: &NewAuditEntry,
    ) -> Result<WaiverChanged, sqlx::Error> {
        let at = now();
        let one = format!("{SELECT_WAIVER} WHERE w.id = $1");
        let from_list = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        let update = format!(
            "UPDATE waivers SET state = $2, decided_by = $3, decided_by_id = $4, decided_at = $5, decision_note = $6 \
             WHERE id = $1 AND state IN ({from_list})"
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            tx.share_freeze_lock().await?;
            let row: Option<WaiverRow> = sqlx::query_as(&one).bind(id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(WaiverChanged::NotFound);
            };
            let status: Option<String> = sqlx::query_scalar("SELECT status FROM weeks WHERE week = $1")
                .bind(&row.week)
                .fetch_optional(&mut *tx)
                .await?;
            if status.as_deref() == Some("approved") {
                tx.rollback().await?;
                return Ok(WaiverChanged::Frozen(row));
            }
            let changed = sqlx::query(&update)
                .bind(id)
                .bind(to)
                .bind(by)
                .bind(by_id)
                .bind(at)
                .bind(Some(note).filter(|n| !n.is_empty()))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed != 1 {
                tx.rollback().await?;
                return Ok(WaiverChanged::NotOpen(row));
            }
            let mut entry = audit.clone();
            entry.before = Some(serde_json::json!({ "waiver_id": id, "state": row.state }));
            entry.after = Some(serde_json::json!({ "waiver_id": id, "state": to, "note": note }));
            tx.audit(&entry).await?;
            let after: WaiverRow = sqlx::query_as(&one).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(WaiverChanged::Done(after))
        })
    }
}

/// A stored applied waiver as the planner's lookup takes it.
fn waived_key(
    (id, user_id, ride_id, part): (i64, String, Option<String>, String),
) -> Result<WaivedKey, sqlx::Error> {
    let part = WaiverPart::parse(&part).map_err(super::weeks::decode_msg)?;
    Ok(WaivedKey { id, user_id, ride_id, part })
}

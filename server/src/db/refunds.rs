//! Refunds' storage. The database keeps the promises: a request id is one refund (unique), what
//! is refunded of an invoice never exceeds what was charged (`refund_balances`, reserved in the
//! same transaction as the refund is written, under the invoice's row lock on PostgreSQL and the
//! single writer on SQLite, with a CHECK behind it), each refund's idempotency key is written with
//! it before any provider call, and at most one provider attempt per refund succeeds.

use chrono::{DateTime, Duration, Utc};

use super::audit::NewAuditEntry;
use super::writes::{NoticeSubjects, Writes};
use super::{begin_writing, for_update, now, Db};
use crate::billing::ledger::Transaction;
use crate::with_pool;

/// A refund as stored, with its invoice's week.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub id: i64,
    pub request_id: String,
    pub idempotency_key: String,
    pub invoice_id: i64,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub note: String,
    pub lines: String,
    pub state: String,
    pub requested_by: String,
    pub requested_by_id: Option<i64>,
    pub requested_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: Option<String>,
    pub attempts: i64,
    pub next_at: DateTime<Utc>,
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    /// `customer`, or `repair` (giving back a charge the ledger does not explain).
    pub kind: String,
    /// The payment intent refunded, when not the invoice's own charge (repairs).
    pub payment_intent: Option<String>,
    pub week: String,
}

const SELECT_REFUND: &str = "SELECT r.id, r.request_id, r.idempotency_key, r.invoice_id, r.user_id, r.amount_minor, \
     r.currency, r.reason, r.note, r.lines, r.state, r.requested_by, r.requested_by_id, r.requested_at, r.decided_by, \
     r.decided_at, r.decision_note, r.attempts, r.next_at, r.provider_id, r.detail, r.kind, r.payment_intent, i.week \
     FROM refunds r JOIN invoices i ON i.id = r.invoice_id";

/// An invoice as a refund needs it: whose, how much was charged, and how much is still free.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Refundable {
    pub invoice_id: i64,
    pub user_id: String,
    pub week: String,
    pub currency: String,
    pub total_minor: i64,
    /// The charge's state, when the week's run has the invoice.
    pub charge_state: Option<String>,
    /// The provider's payment intent of the successful charge.
    pub payment_intent: Option<String>,
    /// Refunds made, under way or waiting for approval.
    pub reserved_minor: i64,
}

/// A refund to write: the checks on its fields are done; the database does the rest.
#[derive(Clone, Debug)]
pub struct RefundInsert {
    pub request_id: String,
    pub invoice_id: i64,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: &'static str,
    pub note: String,
    pub lines: String,
    pub requested_by: String,
    pub requested_by_id: Option<i64>,
    /// Support's limits (minor units, and the start of the requester's day); `None` when the
    /// requester's refunds go out at once whatever the amount.
    pub limits: Option<(i64, i64, DateTime<Utc>)>,
    /// The audit entry written with it.
    pub audit: NewAuditEntry,
}

/// What writing a refund came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Written now, `pending` (goes to the provider now) or `awaiting_approval`.
    Created(RefundRow),
    /// A chosen line was refunded already, by refund `refund`.
    LineRefunded { ride: String, refund: i64 },
    /// This request id was written before: that refund, unchanged.
    Existing(RefundRow),
    /// Refused: the amount is more than what is left to refund (which is given).
    TooMuch { refundable_minor: i64 },
    /// Refused: the invoice was not (or not yet) charged.
    NotCharged,
}

/// A refund claimed by a worker for one provider call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundClaim {
    pub refund: RefundRow,
    pub attempt: i64,
    pub payment_intent: Option<String>,
    /// When the refund's key was first sent, before this attempt (`None`: this is its first).
    pub key_sent_at: Option<DateTime<Utc>>,
}

/// How long a refund that may go out is left to the process that wrote it (which sends it at
/// once) before the refund worker takes it up: the worker only picks up what that process could
/// not finish.
const SENDER_GRACE: Duration = Duration::seconds(30);

/// Locks for support's daily total on PostgreSQL, one per staff member.
const DAILY_LIMIT_LOCK: i64 = 0x7266_6e64_0000_0000;

/// The notice of refund `id` to its customer (one per refund however it is confirmed).
fn refund_notice(id: i64) -> super::alerts::Notice {
    super::alerts::Notice { kind: "refund", subject_id: id, dedupe_key: format!("refund:{id}") }
}

/// What a staff member refunded alone (without an approval) since a moment: what counts against
/// support's daily limit.
const REFUNDED_ALONE_SINCE: &str = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds \
     WHERE requested_by = $1 AND requested_at >= $2 AND decided_by IS NULL AND state IN ('pending', 'succeeded', 'failed')";

impl Db {
    /// What `requested_by` refunded alone since `since` (see [`REFUNDED_ALONE_SINCE`]).
    pub async fn refunded_alone_since(
        &self,
        requested_by: &str,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar(REFUNDED_ALONE_SINCE).bind(requested_by).bind(since).fetch_one(pool).await)
    }

    /// The invoice a refund would come from, with its charge and what is already reserved.
    pub async fn refundable(&self, invoice_id: i64) -> Result<Option<Refundable>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.id AS invoice_id, i.user_id, i.week, i.currency, i.total_minor, c.state AS charge_state, \
                 (SELECT a.provider_id FROM charge_attempts a WHERE a.invoice_id = i.id AND a.outcome = 'succeeded') AS payment_intent, \
                 COALESCE(b.reserved_minor, 0) AS reserved_minor \
                 FROM invoices i LEFT JOIN charges c ON c.invoice_id = i.id LEFT JOIN refund_balances b ON b.invoice_id = i.id \
                 WHERE i.id = $1",
            )
            .bind(invoice_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// The refund of a request id.
    pub async fn refund_by_request(&self, request_id: &str) -> Result<Option<RefundRow>, sqlx::Error> {
        let sql = format!("{SELECT_REFUND} WHERE r.request_id = $1");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(request_id).fetch_optional(pool).await)
    }

    /// One refund.
    pub async fn refund(&self, id: i64) -> Result<Option<RefundRow>, sqlx::Error> {
        let sql = format!("{SELECT_REFUND} WHERE r.id = $1");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
    }

    /// The refunds of an invoice, newest first.
    pub async fn refunds_of_invoice(&self, invoice_id: i64) -> Result<Vec<RefundRow>, sqlx::Error> {
        let sql = format!("{SELECT_REFUND} WHERE r.invoice_id = $1 ORDER BY r.id DESC");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(invoice_id).fetch_all(pool).await)
    }

    /// A user's refunds with ids below `before`, newest first.
    pub async fn refunds_of_user(
        &self,
        user_id: &str,
        before: i64,
        limit: i64,
    ) -> Result<Vec<RefundRow>, sqlx::Error> {
        let sql = format!("{SELECT_REFUND} WHERE r.user_id = $1 AND r.id < $2 ORDER BY r.id DESC LIMIT $3");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(user_id).bind(before).bind(limit).fetch_all(pool).await)
    }

    /// Refunds waiting for an approval, oldest first.
    pub async fn refunds_awaiting_approval(&self, limit: i64) -> Result<Vec<RefundRow>, sqlx::Error> {
        let sql = format!("{SELECT_REFUND} WHERE r.state = 'awaiting_approval' ORDER BY r.id LIMIT $1");
        with_pool!(self, pool => sqlx::query_as(&sql).bind(limit).fetch_all(pool).await)
    }

    /// Writes a refund, once per request id, reserving its amount against what the invoice's
    /// charge left to refund, in one transaction with its audit entry. Support's refunds above
    /// their limits (per refund, or with the day's earlier ones) are written waiting for approval.
    pub async fn insert_refund(&self, new: &RefundInsert) -> Result<Inserted, sqlx::Error> {
        let at = now();
        let key = format!("refund:invoice-{}:{}", new.invoice_id, new.request_id);
        let by_request = format!("{SELECT_REFUND} WHERE r.request_id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            // The balance row, made from the successful charge on the first refund of the invoice.
            sqlx::query(
                "INSERT INTO refund_balances (invoice_id, charged_minor, reserved_minor) \
                 SELECT invoice_id, amount_minor, 0 FROM charges WHERE invoice_id = $1 AND state = 'charged' \
                 ON CONFLICT (invoice_id) DO NOTHING",
            )
            .bind(new.invoice_id)
            .execute(&mut *tx)
            .await?;
            // The invoice's lock: concurrent refunds of one invoice queue here (PostgreSQL's row
            // lock; SQLite's writer lock is already held).
            let lock = format!("SELECT charged_minor, reserved_minor FROM refund_balances WHERE invoice_id = $1{}", for_update(self));
            let balance: Option<(i64, i64)> = sqlx::query_as(&lock).bind(new.invoice_id).fetch_optional(&mut *tx).await?;
            // Under the lock, a request id already written is seen: one refund per request.
            let existing: Option<RefundRow> =
                sqlx::query_as(&by_request).bind(&new.request_id).fetch_optional(&mut *tx).await?;
            if let Some(existing) = existing {
                tx.rollback().await?;
                return Ok(Inserted::Existing(existing));
            }
            let Some((charged, reserved)) = balance else {
                tx.rollback().await?;
                return Ok(Inserted::NotCharged);
            };
            // Under the same lock: a line refunded already (by a refund not rejected) is not
            // refunded again.
            if !new.lines.is_empty() {
                let earlier: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, lines FROM refunds WHERE invoice_id = $1 AND lines <> '' AND state <> 'rejected' ORDER BY id",
                )
                .bind(new.invoice_id)
                .fetch_all(&mut *tx)
                .await?;
                let taken = new.lines.split(',').find_map(|ride| {
                    earlier.iter().find(|(_, lines)| lines.split(',').any(|l| l == ride)).map(|(id, _)| (ride, *id))
                });
                if let Some((ride, refund)) = taken {
                    tx.rollback().await?;
                    return Ok(Inserted::LineRefunded { ride: ride.to_owned(), refund });
                }
            }
            let reserved_now = sqlx::query(
                "UPDATE refund_balances SET reserved_minor = reserved_minor + $2 \
                 WHERE invoice_id = $1 AND reserved_minor + $2 <= charged_minor",
            )
            .bind(new.invoice_id)
            .bind(new.amount_minor)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if reserved_now != 1 {
                tx.rollback().await?;
                return Ok(Inserted::TooMuch { refundable_minor: charged - reserved });
            }
            let mut state = "pending";
            if let Some((per_refund, per_day, day_start)) = new.limits {
                if let (Db::Postgres(_), Some(staff)) = (self, new.requested_by_id) {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(DAILY_LIMIT_LOCK + staff)
                        .execute(&mut *tx)
                        .await?;
                }
                let today: i64 = sqlx::query_scalar(REFUNDED_ALONE_SINCE)
                .bind(&new.requested_by)
                .bind(day_start)
                .fetch_one(&mut *tx)
                .await?;
                if new.amount_minor > per_refund || today + new.amount_minor > per_day {
                    state = "awaiting_approval";
                }
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO refunds (request_id, idempotency_key, invoice_id, user_id, amount_minor, currency, reason, note, \
                 lines, state, requested_by, requested_by_id, requested_at, next_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13) RETURNING id",
            )
            .bind(&new.request_id)
            .bind(&key)
            .bind(new.invoice_id)
            .bind(&new.user_id)
            .bind(new.amount_minor)
            .bind(&new.currency)
            .bind(new.reason)
            .bind(&new.note)
            .bind(&new.lines)
            .bind(state)
            .bind(&new.requested_by)
            .bind(new.requested_by_id)
            .bind(at)
            .bind(at + SENDER_GRACE)
            .fetch_one(&mut *tx)
            .await?;
            let mut entry = new.audit.clone();
            entry.after = Some(serde_json::json!({
                "refund_id": id, "amount_minor": new.amount_minor, "currency": new.currency,
                "reason": new.reason, "state": state, "request_id": new.request_id, "idempotency_key": key,
            }));
            tx.audit(&entry).await?;
            let row: RefundRow = sqlx::query_as(&by_request).bind(&new.request_id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Inserted::Created(row))
        })
    }

    /// Approves or rejects a refund waiting for approval, with its audit entry. A rejection gives
    /// its amount back to what may be refunded. Returns the refund after, or `None` if it was not
    /// waiting (decided meanwhile).
    pub async fn decide_refund(
        &self,
        id: i64,
        approve: bool,
        decided_by: &str,
        note: &str,
        audit: &NewAuditEntry,
    ) -> Result<Option<RefundRow>, sqlx::Error> {
        let at = now();
        let state = if approve { "pending" } else { "rejected" };
        let sql = format!("{SELECT_REFUND} WHERE r.id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let changed: Option<(i64, i64)> = sqlx::query_as(
                "UPDATE refunds SET state = $2, decided_by = $3, decided_at = $4, decision_note = $5, next_at = $6, updated_at = $4 \
                 WHERE id = $1 AND state = 'awaiting_approval' RETURNING invoice_id, amount_minor",
            )
            .bind(id)
            .bind(state)
            .bind(decided_by)
            .bind(at)
            .bind(note)
            .bind(at + SENDER_GRACE)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((invoice_id, amount)) = changed else {
                tx.rollback().await?;
                return Ok(None);
            };
            if !approve {
                sqlx::query("UPDATE refund_balances SET reserved_minor = reserved_minor - $2 WHERE invoice_id = $1")
                    .bind(invoice_id)
                    .bind(amount)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.audit(audit).await?;
            let row: RefundRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(row))
        })
    }

    /// Claims refund `id` for one provider call (if nobody holds it, and it is due unless
    /// `now` asks for it at once: the writing process sending its own refund) and writes the
    /// attempt before the call. `None` when there is nothing to do now, or when the run of the
    /// refund's week is paused, halted or aborted: a week's money movements (its refunds and
    /// repairs too) stop with its run, and go on when it is resumed.
    pub async fn claim_refund(
        &self,
        id: i64,
        worker: &str,
        lease: Duration,
        now_or_due: bool,
    ) -> Result<Option<RefundClaim>, sqlx::Error> {
        let at = now();
        let sql = format!("{SELECT_REFUND} WHERE r.id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let claimed = sqlx::query(
                "UPDATE refunds SET lease_owner = $2, lease_until = $3, attempts = attempts + 1, updated_at = $4 \
                 WHERE id = $1 AND state IN ('pending', 'failed') AND ($5 OR next_at <= $4) \
                 AND (lease_until IS NULL OR lease_until < $4) AND NOT EXISTS (SELECT 1 FROM runs u \
                 JOIN invoices i ON i.week = u.week WHERE i.id = refunds.invoice_id AND u.control <> 'running')",
            )
            .bind(id)
            .bind(worker)
            .bind(at + lease)
            .bind(at)
            .bind(now_or_due)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            let refund: RefundRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
            // When the key was first sent: kept from the first attempt under it.
            let key_sent_at: Option<DateTime<Utc>> = sqlx::query_scalar(
                "UPDATE refunds SET key_sent_at = COALESCE(key_sent_at, $2) WHERE id = $1 RETURNING \
                 CASE WHEN key_sent_at = $2 THEN NULL ELSE key_sent_at END",
            )
            .bind(id)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO refund_attempts (refund_id, attempt, outcome, worker, started_at) VALUES ($1, $2, 'started', $3, $4)",
            )
            .bind(id)
            .bind(refund.attempts)
            .bind(worker)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let payment_intent: Option<String> = match &refund.payment_intent {
                Some(intent) => Some(intent.clone()),
                None => sqlx::query_scalar(
                    "SELECT provider_id FROM charge_attempts WHERE invoice_id = $1 AND outcome = 'succeeded'",
                )
                .bind(refund.invoice_id)
                .fetch_optional(&mut *tx)
                .await?
                .flatten(),
            };
            tx.commit().await?;
            let attempt = refund.attempts;
            Ok(Some(RefundClaim { refund, attempt, payment_intent, key_sent_at }))
        })
    }

    /// Records the provider's refund: the attempt, the refund's state and its ledger
    /// transaction, in one transaction.
    pub async fn refund_succeeded(
        &self,
        claim: &RefundClaim,
        provider_id: &str,
        ledger: &Transaction,
    ) -> Result<(), sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            sqlx::query(
                "UPDATE refund_attempts SET outcome = 'succeeded', provider_id = $3, finished_at = $4 WHERE refund_id = $1 AND attempt = $2",
            )
            .bind(claim.refund.id)
            .bind(claim.attempt)
            .bind(provider_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE refunds SET state = 'succeeded', provider_id = $2, detail = NULL, lease_owner = NULL, lease_until = NULL, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(claim.refund.id)
            .bind(provider_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.ledger_once(ledger, at).await?;
            tx.notices(&[refund_notice(claim.refund.id)], NoticeSubjects::Refunds).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a call that did not give the money back: `failed` when the provider refused it,
    /// `unknown` when no answer came. Either way the refund is asked again at `retry_at`, with
    /// the same key; a refusal shows the refund as failed meanwhile.
    pub async fn refund_not_done(
        &self,
        claim: &RefundClaim,
        refused: bool,
        detail: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let at = now();
        let (outcome, state) = if refused { ("failed", "failed") } else { ("unknown", "pending") };
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            sqlx::query(
                // Only an open attempt: a success recorded meanwhile (by the webhook) stays.
                "UPDATE refund_attempts SET outcome = $3, detail = $4, finished_at = $5 WHERE refund_id = $1 AND attempt = $2 \
                 AND outcome IN ('started', 'unknown')",
            )
            .bind(claim.refund.id)
            .bind(claim.attempt)
            .bind(outcome)
            .bind(detail)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE refunds SET state = $2, detail = $3, next_at = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                 WHERE id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(claim.refund.id)
            .bind(state)
            .bind(detail)
            .bind(retry_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Gives refund `claim` a new idempotency key, `key`, after a lookup at the provider found
    /// that nothing was made under the old one (past the key-reuse window): the attempt is closed
    /// as failed with `detail`, and the refund is due at once, to be sent under the new key.
    pub async fn refund_new_key(
        &self,
        claim: &RefundClaim,
        key: &str,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            sqlx::query(
                "UPDATE refund_attempts SET outcome = 'failed', detail = $3, finished_at = $4 WHERE refund_id = $1 \
                 AND attempt = $2 AND outcome IN ('started', 'unknown')",
            )
            .bind(claim.refund.id)
            .bind(claim.attempt)
            .bind(detail)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE refunds SET idempotency_key = $2, key_sent_at = NULL, detail = $3, next_at = $4, lease_owner = NULL, \
                 lease_until = NULL, updated_at = $4 WHERE id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(claim.refund.id)
            .bind(key)
            .bind(detail)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Refunds the provider should be asked about now: pending or failed, due, not held, the run
    /// of their week not stopped.
    pub async fn due_refunds(&self, limit: i64) -> Result<Vec<i64>, sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM refunds WHERE state IN ('pending', 'failed') AND next_at <= $1 \
                 AND (lease_until IS NULL OR lease_until < $1) AND NOT EXISTS (SELECT 1 FROM runs u \
                 JOIN invoices i ON i.week = u.week WHERE i.id = refunds.invoice_id AND u.control <> 'running') \
                 ORDER BY next_at LIMIT $2",
            )
            .bind(at)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
    }

    /// Every provider call of an invoice's refunds, newest first.
    pub async fn refund_attempts_of_invoice(
        &self,
        invoice_id: i64,
    ) -> Result<Vec<app::model::refund::RefundAttemptView>, sqlx::Error> {
        type Row = (i64, i64, String, Option<String>, Option<String>, DateTime<Utc>, Option<DateTime<Utc>>);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT a.refund_id, a.attempt, a.outcome, a.provider_id, a.detail, a.started_at, a.finished_at \
                 FROM refund_attempts a JOIN refunds r ON r.id = a.refund_id WHERE r.invoice_id = $1 ORDER BY a.id DESC",
            )
            .bind(invoice_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(refund_id, attempt, outcome, provider_id, detail, started, finished)| {
                app::model::refund::RefundAttemptView {
                    refund_id,
                    attempt,
                    outcome,
                    provider_id,
                    detail,
                    started_at: super::rfc3339(started),
                    finished_at: finished.map(super::rfc3339),
                }
            })
            .collect())
    }

    /// A refund the provider says succeeded (a webhook): recorded with its ledger transaction if
    /// it was still pending or failed here; never moved back. Returns whether it changed.
    pub async fn refund_confirmed(
        &self,
        id: i64,
        provider_id: &str,
        ledger: &Transaction,
    ) -> Result<bool, sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let changed = sqlx::query(
                "UPDATE refunds SET state = 'succeeded', provider_id = $2, detail = NULL, updated_at = $3 \
                 WHERE id = $1 AND state IN ('pending', 'failed')",
            )
            .bind(id)
            .bind(provider_id)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                tx.ledger_once(ledger, at).await?;
                tx.notices(&[refund_notice(id)], NoticeSubjects::Refunds).await?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    /// A refund the provider says failed (a webhook): shown as failed and asked again later with
    /// its key, if it was pending here; a refund that succeeded stays succeeded.
    pub async fn refund_failed_at_provider(
        &self,
        id: i64,
        detail: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE refunds SET state = 'failed', detail = $2, next_at = $3, updated_at = $4 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(detail)
            .bind(retry_at)
            .bind(now())
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Whether the provider's event `id` was handled before.
    pub async fn webhook_seen(&self, id: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_events WHERE id = $1)").bind(id).fetch_one(pool).await
        })
    }

    /// Records a handled event (once: a second record of the id does nothing).
    pub async fn record_webhook(
        &self,
        id: &str,
        kind: &str,
        created: i64,
        outcome: &str,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO webhook_events (id, type, created, received_at, outcome) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(kind)
            .bind(created)
            .bind(now())
            .bind(outcome)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }
}

//! Disputes as the provider reports them: one row per dispute, its status only moving forward,
//! its money in the ledger (each step once), and the week's dispute alert, all in the
//! transaction that records the event.

use chrono::{DateTime, Utc};

use super::alerts::NewAlert;
use super::audit::NewAuditEntry;
use super::writes::Writes;
use super::{begin_writing, for_update, now, Db};
use crate::billing::ledger::dispute as ledger;
use crate::with_pool;
use app::model::alerts::AlertKind;
use app::model::dispute::{status_rank, DisputeView};
use app::model::money::{BillingCurrency, Money};

/// What a dispute event says, read from its object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisputeEvent {
    pub provider_id: String,
    pub charge_id: String,
    pub payment_intent: Option<String>,
    /// `metadata[invoice_id]`, when the provider copied it.
    pub invoice_hint: Option<i64>,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    pub due_by: Option<DateTime<Utc>>,
    /// The provider's fee, when the withdrawal is in its balance transactions.
    pub fee_minor: Option<i64>,
    /// Whether the provider has taken the money (a withdrawal in its balance transactions, or a
    /// status past an inquiry's).
    pub withdrawn: bool,
}

/// What recording an event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// No invoice of the product has this charge.
    NotOurs,
    New,
    Changed,
    Unchanged,
}

#[derive(sqlx::FromRow)]
struct DisputeRow {
    id: i64,
    provider_id: String,
    invoice_id: i64,
    week: String,
    user_id: String,
    charge_id: String,
    amount_minor: i64,
    fee_minor: i64,
    currency: String,
    reason: String,
    status: String,
    evidence_due_at: Option<DateTime<Utc>>,
    evidence_sent_at: Option<DateTime<Utc>>,
    evidence_by: Option<String>,
    evidence_note: Option<String>,
    opened_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT id, provider_id, invoice_id, week, user_id, charge_id, amount_minor, fee_minor, currency, \
     reason, status, evidence_due_at, evidence_sent_at, evidence_by, evidence_note, opened_at, closed_at FROM disputes";

fn view(row: DisputeRow) -> Result<DisputeView, sqlx::Error> {
    let currency =
        BillingCurrency::from_code(&row.currency).map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
    Ok(DisputeView {
        id: row.id,
        provider_id: row.provider_id,
        invoice_id: row.invoice_id,
        week: row.week,
        user_id: row.user_id,
        charge_id: row.charge_id,
        amount: Money::from_minor(row.amount_minor, currency),
        fee: Money::from_minor(row.fee_minor, currency),
        reason: row.reason,
        status: row.status,
        evidence_due_at: row.evidence_due_at.map(super::rfc3339),
        evidence_sent_at: row.evidence_sent_at.map(super::rfc3339),
        evidence_by: row.evidence_by,
        evidence_note: row.evidence_note,
        opened_at: super::rfc3339(row.opened_at),
        closed_at: row.closed_at.map(super::rfc3339),
    })
}

/// Evidence about to be sent: the key written before the call, or the reason it may not be.
#[derive(Debug, PartialEq, Eq)]
pub enum EvidenceClaim {
    /// Send with this idempotency key (a new one, or the one of a send that did not finish).
    Send { key: String },
    /// Already sent.
    Sent,
    /// The dispute no longer waits for evidence.
    Closed(String),
}

impl Db {
    /// Records `event`: the dispute's row (new, or its status moved forward), the ledger
    /// transactions of the money it says moved, and, for a new dispute that takes the week's
    /// count to `AlertSettings::dispute_threshold`, the week's dispute alert.
    pub async fn record_dispute(&self, event: &DisputeEvent) -> Result<Recorded, sqlx::Error> {
        let at = now();
        let lock =
            format!("SELECT id, status, fee_minor FROM disputes WHERE provider_id = $1{}", for_update(self));
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let mut invoice: Option<(i64, String, String)> = None;
            if let Some(intent) = &event.payment_intent {
                invoice = sqlx::query_as(
                    "SELECT i.id, i.week, i.user_id FROM charge_attempts a JOIN invoices i ON i.id = a.invoice_id \
                     WHERE a.provider_id = $1 AND a.outcome = 'succeeded'",
                )
                .bind(intent)
                .fetch_optional(&mut *tx)
                .await?;
            }
            if invoice.is_none() {
                if let Some(hint) = event.invoice_hint {
                    invoice = sqlx::query_as(
                        "SELECT i.id, i.week, i.user_id FROM invoices i JOIN charges c ON c.invoice_id = i.id \
                         WHERE i.id = $1 AND c.state = 'charged'",
                    )
                    .bind(hint)
                    .fetch_optional(&mut *tx)
                    .await?;
                }
            }
            let Some((invoice_id, week, user_id)) = invoice else { return Ok(Recorded::NotOurs) };
            let currency = BillingCurrency::from_code(&event.currency.to_uppercase())
                .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
            let existing: Option<(i64, String, i64)> =
                sqlx::query_as(&lock).bind(&event.provider_id).fetch_optional(&mut *tx).await?;
            let closed_at = (!app::model::dispute::is_open(&event.status)).then_some(at);
            let recorded = match existing {
                None => {
                    sqlx::query(
                        "INSERT INTO disputes (provider_id, invoice_id, week, user_id, charge_id, payment_intent, \
                         amount_minor, fee_minor, currency, reason, status, evidence_due_at, opened_at, updated_at, closed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)",
                    )
                    .bind(&event.provider_id)
                    .bind(invoice_id)
                    .bind(&week)
                    .bind(&user_id)
                    .bind(&event.charge_id)
                    .bind(event.payment_intent.as_deref())
                    .bind(event.amount_minor)
                    .bind(event.fee_minor.unwrap_or(0))
                    .bind(currency.code())
                    .bind(&event.reason)
                    .bind(&event.status)
                    .bind(event.due_by)
                    .bind(at)
                    .bind(closed_at)
                    .execute(&mut *tx)
                    .await?;
                    Recorded::New
                }
                Some((id, status, fee)) => {
                    let forward = status_rank(&event.status) > status_rank(&status)
                        || (status_rank(&event.status) == status_rank(&status)
                            && status.starts_with("warning_")
                            && !event.status.starts_with("warning_"));
                    let new_fee = event.fee_minor.filter(|f| *f != fee);
                    if forward || new_fee.is_some() {
                        let status = if forward { event.status.as_str() } else { status.as_str() };
                        sqlx::query(
                            "UPDATE disputes SET status = $2, fee_minor = $3, \
                             evidence_due_at = COALESCE($4, evidence_due_at), updated_at = $5, \
                             closed_at = COALESCE(closed_at, $6) WHERE id = $1",
                        )
                        .bind(id)
                        .bind(status)
                        .bind(event.fee_minor.unwrap_or(fee))
                        .bind(event.due_by)
                        .bind(at)
                        .bind((!app::model::dispute::is_open(status)).then_some(at))
                        .execute(&mut *tx)
                        .await?;
                        Recorded::Changed
                    } else {
                        Recorded::Unchanged
                    }
                }
            };
            // The money: each step once, in order, whatever order the events came in.
            let (status, fee): (String, i64) =
                sqlx::query_as("SELECT status, fee_minor FROM disputes WHERE provider_id = $1")
                    .bind(&event.provider_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let amount = Money::from_minor(event.amount_minor, currency);
            let balanced = |e: crate::billing::ledger::LedgerError| sqlx::Error::Protocol(e.to_string());
            let taken = event.withdrawn || status == "won" || status == "lost";
            if taken {
                let withdrawal = ledger::withdrawal(&event.provider_id, amount, Money::from_minor(fee, currency))
                    .map_err(balanced)?
                    .of_week(&week);
                tx.ledger_once(&withdrawal, at).await?;
            }
            let decided = match status.as_str() {
                "won" => Some(ledger::won(&event.provider_id, amount)),
                "lost" => Some(ledger::lost(&event.provider_id, amount)),
                _ => None,
            };
            if let Some(decided) = decided {
                tx.ledger_once(&decided.map_err(balanced)?.of_week(&week), at).await?;
            }
            if recorded == Recorded::New {
                let threshold = tx.alert_settings().await?.dispute_threshold;
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM disputes WHERE week = $1")
                    .bind(&week)
                    .fetch_one(&mut *tx)
                    .await?;
                if threshold > 0 && count >= i64::from(threshold) {
                    tx.raise_alert(&NewAlert {
                        kind: AlertKind::Disputes,
                        group_key: format!("disputes:week:{week}"),
                        run_id: None,
                        week: Some(week.clone()),
                        title: format!("Week {week}: {count} disputes"),
                        detail: format!(
                            "Card issuers opened {count} disputes on week {week}'s charges (the alert threshold is {threshold}); the latest, {}, is about invoice {invoice_id} ({}). Was the week charged twice?",
                            event.provider_id, event.reason
                        ),
                        link: Some("/disputes".into()),
                    })
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(recorded)
        })
    }

    /// Dispute `id`.
    pub async fn dispute(&self, id: i64) -> Result<Option<DisputeView>, sqlx::Error> {
        let query = format!("{SELECT} WHERE id = $1");
        let row: Option<DisputeRow> =
            with_pool!(self, pool => sqlx::query_as(&query).bind(id).fetch_optional(pool).await)?;
        row.map(view).transpose()
    }

    /// The disputes of invoice `invoice_id`, newest first.
    pub async fn invoice_disputes(&self, invoice_id: i64) -> Result<Vec<DisputeView>, sqlx::Error> {
        let query = format!("{SELECT} WHERE invoice_id = $1 ORDER BY id DESC");
        let rows: Vec<DisputeRow> =
            with_pool!(self, pool => sqlx::query_as(&query).bind(invoice_id).fetch_all(pool).await)?;
        rows.into_iter().map(view).collect()
    }

    /// The disputes of customer `user_id`, newest first.
    pub async fn user_disputes(&self, user_id: &str) -> Result<Vec<DisputeView>, sqlx::Error> {
        let query = format!("{SELECT} WHERE user_id = $1 ORDER BY id DESC LIMIT 100");
        let rows: Vec<DisputeRow> =
            with_pool!(self, pool => sqlx::query_as(&query).bind(user_id).fetch_all(pool).await)?;
        rows.into_iter().map(view).collect()
    }

    /// The queue: disputes in `status` (all when `None`), the soonest due first, those without a
    /// due date last, then the newest.
    pub async fn disputes(&self, status: Option<&str>, limit: i64) -> Result<Vec<DisputeView>, sqlx::Error> {
        let query = format!(
            "{SELECT} WHERE ($1 IS NULL OR status = $1) \
             ORDER BY CASE WHEN evidence_due_at IS NULL THEN 1 ELSE 0 END, evidence_due_at, id DESC LIMIT $2"
        );
        let rows: Vec<DisputeRow> = with_pool!(self, pool => {
            sqlx::query_as(&query).bind(status).bind(limit).fetch_all(pool).await
        })?;
        rows.into_iter().map(view).collect()
    }

    /// How many disputes are in each status.
    pub async fn dispute_counts(&self) -> Result<Vec<(String, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT status, COUNT(*) FROM disputes GROUP BY status ORDER BY status")
                .fetch_all(pool)
                .await
        })
    }

    /// Whether invoice `invoice_id` has a dispute that stops a refund: one the issuer has not
    /// decided, or lost (the money went back through the issuer already). Its provider id and
    /// status.
    pub async fn blocking_dispute(&self, invoice_id: i64) -> Result<Option<(String, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT provider_id, status FROM disputes WHERE invoice_id = $1 \
                 AND status NOT IN ('won', 'warning_closed') ORDER BY id DESC LIMIT 1",
            )
            .bind(invoice_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Claims the sending of dispute `id`'s evidence: writes its idempotency key (with the note
    /// and who sends it, and the audit entry) before the call, or hands back the key of a send
    /// that did not finish.
    pub async fn claim_evidence(
        &self,
        id: i64,
        note: &str,
        by: &str,
        audit: &NewAuditEntry,
    ) -> Result<Option<EvidenceClaim>, sqlx::Error> {
        let lock = format!(
            "SELECT status, evidence_key, evidence_sent_at FROM disputes WHERE id = $1{}",
            for_update(self)
        );
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> =
                sqlx::query_as(&lock).bind(id).fetch_optional(&mut *tx).await?;
            let Some((status, key, sent)) = row else { return Ok(None) };
            if sent.is_some() {
                return Ok(Some(EvidenceClaim::Sent));
            }
            if !app::model::dispute::needs_response(&status) {
                return Ok(Some(EvidenceClaim::Closed(status)));
            }
            if let Some(key) = key {
                return Ok(Some(EvidenceClaim::Send { key }));
            }
            let key = format!("dispute-evidence-{id}-{}", uuid::Uuid::new_v4());
            sqlx::query("UPDATE disputes SET evidence_key = $2, evidence_note = $3, evidence_by = $4, updated_at = $5 WHERE id = $1")
                .bind(id)
                .bind(&key)
                .bind(note)
                .bind(by)
                .bind(now())
                .execute(&mut *tx)
                .await?;
            tx.audit(audit).await?;
            tx.commit().await?;
            Ok(Some(EvidenceClaim::Send { key }))
        })
    }

    /// The provider took dispute `id`'s evidence: its status now.
    pub async fn evidence_sent(&self, id: i64, status: &str) -> Result<(), sqlx::Error> {
        let at = now();
        let query = "UPDATE disputes SET evidence_sent_at = COALESCE(evidence_sent_at, $2), updated_at = $2, \
             status = CASE WHEN status IN ('needs_response', 'warning_needs_response') THEN $3 ELSE status END \
             WHERE id = $1";
        with_pool!(self, pool => {
            sqlx::query(query).bind(id).bind(at).bind(status).execute(pool).await.map(|_| ())
        })
    }
}

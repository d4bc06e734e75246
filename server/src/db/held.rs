//! Charges and payouts held for a person: an attempt past the key-reuse window whose lookup at
//! the provider could not be made. Finance looks again, or two members mark it as not made.

use chrono::{DateTime, Utc};

use super::audit::{Actor, NewAuditEntry};
use super::runs::Work;
use super::writes::Writes;
use super::{now, Db};
use crate::with_pool;

/// A held item as the run page lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct HeldRow {
    pub kind: String,
    pub id: i64,
    pub user_id: String,
    pub amount_minor: i64,
    pub detail: Option<String>,
    pub key: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub proposed_by: Option<String>,
}

/// What asking to mark a held item as not made did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkStep {
    /// The first member asked: a second one must confirm.
    Proposed,
    /// A second member confirmed: the open attempt is closed, and a new one goes out.
    Confirmed,
    /// The member who asked cannot confirm it too.
    SamePerson,
    /// Nothing of that id is held in the run.
    NotHeld,
}

impl Work {
    /// The word for the item in audit entries and on the run page.
    pub fn noun(self) -> &'static str {
        match self {
            Work::Charge => "charge",
            Work::Transfer => "payout",
        }
    }
}

impl Db {
    /// The items of run `run_id` held for a person (the first 100 of each kind), with the open
    /// attempt's key and when it was first sent.
    pub async fn held_items(&self, run_id: i64) -> Result<Vec<HeldRow>, sqlx::Error> {
        let sql = "SELECT 'charge' AS kind, c.invoice_id AS id, c.user_id, c.amount_minor, c.held_detail AS detail, \
             a.idempotency_key AS key, a.started_at AS since, c.release_proposed_by AS proposed_by \
             FROM charges c LEFT JOIN charge_attempts a ON a.invoice_id = c.invoice_id AND a.outcome IN ('started', 'unknown') \
             WHERE c.run_id = $1 AND c.held IS NOT NULL \
             UNION ALL \
             SELECT 'payout' AS kind, t.payout_id AS id, t.driver_id AS user_id, t.amount_minor, t.held_detail AS detail, \
             a.idempotency_key AS key, a.started_at AS since, t.release_proposed_by AS proposed_by \
             FROM transfers t LEFT JOIN transfer_attempts a ON a.payout_id = t.payout_id AND a.outcome IN ('started', 'unknown') \
             WHERE t.run_id = $1 AND t.held IS NOT NULL \
             ORDER BY 1, 2 LIMIT 200";
        with_pool!(self, pool => sqlx::query_as(sql).bind(run_id).fetch_all(pool).await)
    }

    /// Puts held item `id` of run `run_id` back to the workers at once (audited
    /// `charge.look_again` / `payout.look_again`): its attempt is still past the window, so the
    /// next worker looks it up again. False when nothing of that id is held.
    pub async fn look_again(
        &self,
        work: Work,
        run_id: i64,
        id: i64,
        actor: &Actor,
    ) -> Result<bool, sqlx::Error> {
        let (table, item) = (work.table(), work.id());
        let sql = format!(
            "UPDATE {table} SET held = NULL, held_detail = NULL, release_proposed_by = NULL, next_at = $1, \
             lease_owner = NULL, lease_until = NULL WHERE {item} = $2 AND run_id = $3 AND held IS NOT NULL \
             RETURNING held_detail"
        );
        let action = match work {
            Work::Charge => "charge.look_again",
            Work::Transfer => "payout.look_again",
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let done = sqlx::query(&sql).bind(now()).bind(id).bind(run_id).execute(&mut *tx).await?.rows_affected() == 1;
            if done {
                let mut entry = NewAuditEntry::new(actor, action, work.noun(), id);
                entry.before = Some(serde_json::json!({ "held": "lookup" }));
                entry.after = Some(serde_json::json!({ "held": null, "run_id": run_id }));
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Marks held item `id` of run `run_id` as not made at the provider, in two steps by two
    /// members: the first asks (audited `…not_made.proposed`), a second confirms (audited
    /// `…not_made.confirmed`), which closes the open attempt as failed and puts the item back to
    /// the workers for a new attempt under a new key.
    pub async fn mark_not_made(
        &self,
        work: Work,
        run_id: i64,
        id: i64,
        actor: &Actor,
    ) -> Result<MarkStep, sqlx::Error> {
        let (table, item) = (work.table(), work.id());
        let attempts = work.attempts();
        let read = format!(
            "SELECT release_proposed_by FROM {table} WHERE {item} = $1 AND run_id = $2 AND held IS NOT NULL"
        );
        let propose = format!(
            "UPDATE {table} SET release_proposed_by = $1 WHERE {item} = $2 AND run_id = $3 AND held IS NOT NULL \
             AND release_proposed_by IS NULL"
        );
        let close = format!(
            "UPDATE {attempts} SET outcome = 'failed', detail = $1, finished_at = $2 WHERE {item} = $3 \
             AND outcome IN ('started', 'unknown')"
        );
        let release = format!(
            "UPDATE {table} SET held = NULL, held_detail = NULL, release_proposed_by = NULL, next_at = $1, \
             lease_owner = NULL, lease_until = NULL WHERE {item} = $2 AND run_id = $3 AND held IS NOT NULL \
             AND release_proposed_by = $4"
        );
        let (proposed, confirmed) = match work {
            Work::Charge => ("charge.not_made.proposed", "charge.not_made.confirmed"),
            Work::Transfer => ("payout.not_made.proposed", "payout.not_made.confirmed"),
        };
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let asked: Option<Option<String>> =
                sqlx::query_scalar(&read).bind(id).bind(run_id).fetch_optional(&mut *tx).await?;
            let step = match asked {
                None => MarkStep::NotHeld,
                Some(Some(by)) if by == actor.name => MarkStep::SamePerson,
                Some(None) => {
                    sqlx::query(&propose).bind(&actor.name).bind(id).bind(run_id).execute(&mut *tx).await?;
                    let mut entry = NewAuditEntry::new(actor, proposed, work.noun(), id);
                    entry.after = Some(serde_json::json!({ "run_id": run_id, "proposed_by": actor.name }));
                    tx.audit(&entry).await?;
                    MarkStep::Proposed
                }
                Some(Some(by)) => {
                    let detail = format!("marked as not made at the provider by {by} and {}", actor.name);
                    sqlx::query(&close).bind(&detail).bind(at).bind(id).execute(&mut *tx).await?;
                    sqlx::query(&release).bind(at).bind(id).bind(run_id).bind(&by).execute(&mut *tx).await?;
                    let mut entry = NewAuditEntry::new(actor, confirmed, work.noun(), id);
                    entry.before = Some(serde_json::json!({ "held": "lookup", "proposed_by": by }));
                    entry.after = Some(serde_json::json!({ "held": null, "run_id": run_id, "attempt": "failed" }));
                    tx.audit(&entry).await?;
                    MarkStep::Confirmed
                }
            };
            tx.commit().await?;
            Ok(step)
        })
    }
}

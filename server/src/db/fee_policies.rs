//! Fee policy versions: proposed by one staff member, approved by another, in force from a billing
//! week. Every change writes its audit entry, with the before and after, in the same transaction.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::audit::{Actor, NewAuditEntry};
use super::writes::Writes;
use super::{begin_writing, for_update, now, Db};
use crate::with_pool;
use app::model::money::{BillingCurrency, Money};
use app::model::pricing::{FeePolicy, PolicyVersion, VersionStatus};

/// A version to store: its fields already checked.
#[derive(Clone, Debug)]
pub struct NewVersion {
    pub effective_week: String,
    pub policy: FeePolicy,
    pub note: String,
}

/// Why a decision about a version was not stored. Nothing is changed by any of these.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("fee policy version {0} does not exist")]
    NotFound(i64),
    #[error("version {id} is {status}, not waiting for a decision")]
    NotProposed { id: i64, status: &'static str },
    #[error("you proposed version {0}; another finance or admin member approves it")]
    OwnProposal(i64),
    #[error("{week} is already approved and keeps the prices it was approved with; propose a later week")]
    WeekApproved { week: String },
    #[error("version {id} is in force from {week}, which has begun; propose a later week")]
    InForce { id: i64, week: String },
    #[error("{week} has passed since this was proposed; propose it again for {current} or later")]
    Passed { week: String, current: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

type VersionRow = (
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<DateTime<Utc>>,
);

const SELECT_VERSION: &str = "SELECT v.id, v.effective_week, v.currency, v.base_minor, v.per_km_minor, \
     v.platform_fee_bps, v.no_show_fee_minor, v.note, v.status, p.email, v.proposed_at, d.email, v.decided_at \
     FROM fee_policy_versions v JOIN staff p ON p.id = v.proposed_by LEFT JOIN staff d ON d.id = v.decided_by";

fn version_from(row: VersionRow) -> Result<PolicyVersion, sqlx::Error> {
    let (
        id,
        week,
        currency,
        base,
        per_km,
        bps,
        no_show,
        note,
        status,
        proposed_by,
        proposed_at,
        decided_by,
        decided_at,
    ) = row;
    let decode = |e: String| sqlx::Error::Decode(e.into());
    let currency = BillingCurrency::from_code(&currency).map_err(|e| decode(e.to_string()))?;
    let status = VersionStatus::parse(&status).ok_or_else(|| decode(format!("version status {status:?}")))?;
    let money = |minor| Money::from_minor(minor, currency);
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    Ok(PolicyVersion {
        id,
        effective_week: Some(week),
        policy: FeePolicy {
            base: money(base),
            per_km: money(per_km),
            platform_fee_bps: u32::try_from(bps).map_err(|e| decode(e.to_string()))?,
            no_show_fee: money(no_show),
        },
        note,
        status,
        proposed_by: Some(proposed_by),
        proposed_at: Some(time(proposed_at)),
        decided_by,
        decided_at: decided_at.map(time),
    })
}

/// What an audit entry records of a version.
fn audited(version: &PolicyVersion) -> serde_json::Value {
    json!({
        "effective_week": version.effective_week,
        "base": version.policy.base.to_string(),
        "per_km": version.policy.per_km.to_string(),
        "platform_fee_bps": version.policy.platform_fee_bps,
        "no_show_fee": version.policy.no_show_fee.to_string(),
        "currency": version.policy.base.currency().code(),
        "note": version.note,
        "status": version.status.as_str(),
    })
}

impl Db {
    /// Every version, newest first.
    pub async fn fee_policy_versions(&self) -> Result<Vec<PolicyVersion>, sqlx::Error> {
        let sql = format!("{SELECT_VERSION} ORDER BY v.id DESC");
        let rows: Vec<VersionRow> = with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(version_from).collect()
    }

    /// One version.
    pub async fn fee_policy_version(&self, id: i64) -> Result<Option<PolicyVersion>, sqlx::Error> {
        let sql = format!("{SELECT_VERSION} WHERE v.id = $1");
        let row: Option<VersionRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
        row.map(version_from).transpose()
    }

    /// The approved version in force for `week` (`2026-W50`): the one with the latest effective
    /// week not after it. `None` when no version is, and the built-in policy prices the week.
    pub async fn fee_policy_for_week(&self, week: &str) -> Result<Option<PolicyVersion>, sqlx::Error> {
        let sql = format!(
            "{SELECT_VERSION} WHERE v.status = 'approved' AND v.effective_week <= $1 \
             ORDER BY v.effective_week DESC LIMIT 1"
        );
        let row: Option<VersionRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(week).fetch_optional(pool).await?);
        row.map(version_from).transpose()
    }

    /// Stores a proposal by `actor`, audited.
    pub async fn propose_fee_policy(
        &self,
        actor: &Actor,
        new: &NewVersion,
    ) -> Result<PolicyVersion, sqlx::Error> {
        let staff_id =
            actor.staff_id.ok_or_else(|| sqlx::Error::Protocol("a proposal needs a staff member".into()))?;
        let at = now();
        let p = &new.policy;
        let id: i64 = with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO fee_policy_versions (effective_week, currency, base_minor, per_km_minor, \
                 platform_fee_bps, no_show_fee_minor, note, status, proposed_by, proposed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8, $9) RETURNING id",
            )
            .bind(&new.effective_week)
            .bind(p.base.currency().code())
            .bind(p.base.minor())
            .bind(p.per_km.minor())
            .bind(i64::from(p.platform_fee_bps))
            .bind(p.no_show_fee.minor())
            .bind(&new.note)
            .bind(staff_id)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
            let sql = format!("{SELECT_VERSION} WHERE v.id = $1");
            let row: VersionRow = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
            let mut entry = NewAuditEntry::new(actor, "pricing.propose", "fee_policy_version", id);
            entry.after = Some(audited(&version_from(row)?));
            tx.audit(&entry).await?;
            tx.commit().await?;
            id
        });
        self.fee_policy_version(id).await?.ok_or(sqlx::Error::RowNotFound)
    }

    /// Approves (`approve`) or withdraws a proposal, audited with the before and after. An
    /// approval replaces an approved version for the same week when that week has not begun
    /// (`current_week` is the week in progress), and is refused when the week is approved.
    pub async fn decide_fee_policy(
        &self,
        actor: &Actor,
        id: i64,
        approve: bool,
        current_week: &str,
    ) -> Result<PolicyVersion, DecideError> {
        let staff_id =
            actor.staff_id.ok_or_else(|| sqlx::Error::Protocol("a decision needs a staff member".into()))?;
        let at = now();
        let status = if approve { "approved" } else { "withdrawn" };
        // The row's lock (PostgreSQL's; SQLite's writer lock is already held) with its proposer,
        // then the row with its people's emails (a lock cannot reach through the outer join).
        let lock = format!("SELECT proposed_by FROM fee_policy_versions WHERE id = $1{}", for_update(self));
        let reread = format!("{SELECT_VERSION} WHERE v.id = $1");
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let proposer: Option<i64> = sqlx::query_scalar(&lock).bind(id).fetch_optional(&mut *tx).await?;
            let proposer = proposer.ok_or(DecideError::NotFound(id))?;
            let before = version_from(sqlx::query_as(&reread).bind(id).fetch_one(&mut *tx).await?)?;
            if before.status != VersionStatus::Proposed {
                return Err(DecideError::NotProposed { id, status: before.status.as_str() });
            }
            let week = before.effective_week.clone().unwrap_or_default();
            if approve {
                if proposer == staff_id {
                    return Err(DecideError::OwnProposal(id));
                }
                // Time passes between a proposal and its approval: the week must still be to come.
                if week.as_str() < current_week {
                    return Err(DecideError::Passed { week, current: current_week.to_owned() });
                }
                let frozen: Option<String> = sqlx::query_scalar("SELECT status FROM weeks WHERE week = $1")
                    .bind(&week)
                    .fetch_optional(&mut *tx)
                    .await?;
                if frozen.as_deref() == Some("approved") {
                    return Err(DecideError::WeekApproved { week });
                }
                let replaced: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM fee_policy_versions WHERE effective_week = $1 AND status = 'approved'",
                )
                .bind(&week)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(replaced) = replaced {
                    if week.as_str() <= current_week {
                        return Err(DecideError::InForce { id: replaced, week });
                    }
                    sqlx::query("UPDATE fee_policy_versions SET status = 'superseded' WHERE id = $1")
                        .bind(replaced)
                        .execute(&mut *tx)
                        .await?;
                    let mut entry = NewAuditEntry::new(actor, "pricing.supersede", "fee_policy_version", replaced);
                    entry.detail = Some(format!("replaced by version {id} before {week} began"));
                    tx.audit(&entry).await?;
                }
            }
            sqlx::query("UPDATE fee_policy_versions SET status = $2, decided_by = $3, decided_at = $4 WHERE id = $1")
                .bind(id)
                .bind(status)
                .bind(staff_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let after = version_from(sqlx::query_as(&reread).bind(id).fetch_one(&mut *tx).await?)?;
            let action = if approve { "pricing.approve" } else { "pricing.withdraw" };
            let mut entry = NewAuditEntry::new(actor, action, "fee_policy_version", id);
            entry.before = Some(audited(&before));
            entry.after = Some(audited(&after));
            tx.audit(&entry).await?;
            tx.commit().await?;
            Ok(after)
        })
    }
}

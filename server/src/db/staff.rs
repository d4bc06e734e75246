//! Staff accounts and access tokens. Every change writes its audit entry in the same
//! transaction.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::audit::{Actor, NewAuditEntry};
use super::writes::Writes;
use super::{now, Db};
use crate::with_pool;
use app::model::staff::{Role, Staff};

/// A staff row with the password hash, for signing in. Never leaves the server.
#[derive(Clone, Debug)]
pub struct StaffCredentials {
    pub staff: Staff,
    pub password_hash: String,
}

type StaffRow = (i64, String, String, String, DateTime<Utc>, Option<DateTime<Utc>>);

fn staff_from(row: StaffRow) -> Result<StaffCredentials, sqlx::Error> {
    let (id, email, role, password_hash, created_at, disabled_at) = row;
    let role = Role::parse(&role).map_err(|e| sqlx::Error::Decode(e.into()))?;
    Ok(StaffCredentials {
        staff: Staff {
            id,
            email,
            role,
            disabled_at: disabled_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            created_at: created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
        password_hash,
    })
}

const STAFF_COLUMNS: &str = "id, email, role, password_hash, created_at, disabled_at";

/// Adding a staff member failed.
#[derive(Debug, thiserror::Error)]
pub enum AddStaffError {
    #[error("a staff member with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Db {
    /// Adds a staff account (the email already normalised, the password already hashed).
    pub async fn add_staff(
        &self,
        actor: &Actor,
        email: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<Staff, AddStaffError> {
        let created_at = now();
        let result: Result<StaffRow, sqlx::Error> = with_pool!(self, pool => {
            async {
                let mut tx = pool.begin_with(super::begin_writing(self)).await?;
                let row: StaffRow = sqlx::query_as(&format!(
                    "INSERT INTO staff (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
                     RETURNING {STAFF_COLUMNS}"
                ))
                .bind(email)
                .bind(role.as_str())
                .bind(password_hash)
                .bind(created_at)
                .fetch_one(&mut *tx)
                .await?;
                let mut entry = NewAuditEntry::new(actor, "staff.add", "staff", row.0);
                entry.after = Some(json!({ "email": email, "role": role }));
                tx.audit(&entry).await?;
                tx.commit().await?;
                Ok(row)
            }
            .await
        });
        match result {
            Ok(row) => Ok(staff_from(row)?.staff),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AddStaffError::EmailTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this (normalised) email, with its password hash.
    pub async fn staff_credentials(&self, email: &str) -> Result<Option<StaffCredentials>, sqlx::Error> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE email = $1");
        let row: Option<StaffRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(email).fetch_optional(pool).await?);
        row.map(staff_from).transpose()
    }

    /// The account with this id.
    pub async fn staff_by_id(&self, id: i64) -> Result<Option<Staff>, sqlx::Error> {
        let sql = format!("SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1");
        let row: Option<StaffRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
        Ok(row.map(staff_from).transpose()?.map(|c| c.staff))
    }

    /// Every account: active ones first, then by email.
    pub async fn list_staff(&self) -> Result<Vec<Staff>, sqlx::Error> {
        let sql = format!(
            "SELECT {STAFF_COLUMNS} FROM staff ORDER BY CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END, email"
        );
        let rows: Vec<StaffRow> = with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(|r| staff_from(r).map(|c| c.staff)).collect()
    }

    /// How many accounts exist (the demo set-up only seeds an empty table).
    pub async fn staff_count(&self) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM staff").fetch_one(pool).await)
    }

    /// Disables an account and revokes its tokens, in one transaction. `None` when there is no
    /// such account; an already disabled account is returned unchanged (and nothing is audited).
    pub async fn disable_staff(&self, actor: &Actor, id: i64) -> Result<Option<Staff>, sqlx::Error> {
        let at = now();
        let sql = format!(
            "UPDATE staff SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL RETURNING {STAFF_COLUMNS}"
        );
        let changed: Option<StaffRow> = with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let row: Option<StaffRow> = sqlx::query_as(&sql).bind(at).bind(id).fetch_optional(&mut *tx).await?;
            if row.is_some() {
                sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE staff_id = $2 AND revoked_at IS NULL")
                    .bind(at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let mut entry = NewAuditEntry::new(actor, "staff.disable", "staff", id);
                entry.before = Some(json!({ "disabled": false }));
                entry.after = Some(json!({ "disabled": true }));
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            row
        });
        match changed {
            Some(row) => Ok(Some(staff_from(row)?.staff)),
            None => self.staff_by_id(id).await,
        }
    }
}

//! Access tokens: staff personal access tokens and ride-ingestion keys. Only a SHA-256 of each
//! secret is stored.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::json;

use super::audit::{Actor, NewAuditEntry};
use super::writes::Writes;
use super::Db;
use crate::with_pool;

/// A token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Db {
    /// Stores a staff member's personal access token (its hash) and audits it.
    pub async fn add_staff_token(
        &self,
        actor: &Actor,
        staff_id: i64,
        name: &str,
        token_hash: &str,
        prefix: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<i64, sqlx::Error> {
        let created_at = super::now();
        let expires_at = expires_at.trunc_subsecs(6);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO access_tokens (kind, staff_id, name, token_hash, prefix, created_at, expires_at) \
                 VALUES ('staff', $1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(staff_id)
            .bind(name)
            .bind(token_hash)
            .bind(prefix)
            .bind(created_at)
            .bind(expires_at)
            .fetch_one(&mut *tx)
            .await?;
            let mut entry = NewAuditEntry::new(actor, "token.create", "access_token", id);
            entry.after = Some(json!({ "staff_id": staff_id, "name": name, "prefix": prefix, "expires_at": expires_at }));
            tx.audit(&entry).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The active staff member a live (not revoked, not expired) personal access token belongs
    /// to, recording its use.
    pub async fn staff_for_token(&self, token_hash: &str) -> Result<Option<i64>, sqlx::Error> {
        let now = super::now();
        let staff_id: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE access_tokens SET last_used_at = $1 \
                 WHERE token_hash = $2 AND kind = 'staff' AND revoked_at IS NULL \
                   AND (expires_at IS NULL OR expires_at > $1) \
                 RETURNING staff_id",
            )
            .bind(now)
            .bind(token_hash)
            .fetch_optional(pool)
            .await?
        });
        Ok(staff_id)
    }

    /// A staff member's personal access tokens, newest first.
    pub async fn staff_tokens(&self, staff_id: i64) -> Result<Vec<TokenInfo>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name, prefix, created_at, expires_at, revoked_at FROM access_tokens \
                 WHERE kind = 'staff' AND staff_id = $1 ORDER BY id DESC",
            )
            .bind(staff_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Revokes a staff member's own token; `None` when they have no such live token.
    pub async fn revoke_staff_token(
        &self,
        actor: &Actor,
        staff_id: i64,
        id: i64,
    ) -> Result<Option<TokenInfo>, sqlx::Error> {
        let at = super::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let token: Option<TokenInfo> = sqlx::query_as(
                "UPDATE access_tokens SET revoked_at = $1 \
                 WHERE id = $2 AND staff_id = $3 AND kind = 'staff' AND revoked_at IS NULL \
                 RETURNING id, name, prefix, created_at, expires_at, revoked_at",
            )
            .bind(at)
            .bind(id)
            .bind(staff_id)
            .fetch_optional(&mut *tx)
            .await?;
            if token.is_some() {
                let mut entry = NewAuditEntry::new(actor, "token.revoke", "access_token", id);
                entry.before = Some(json!({ "revoked": false }));
                entry.after = Some(json!({ "revoked": true }));
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            Ok(token)
        })
    }

    /// Stores a ride-ingestion API key (its hash) and audits it.
    pub async fn add_ingest_key(
        &self,
        actor: &Actor,
        name: &str,
        key_hash: &str,
        prefix: &str,
    ) -> Result<i64, sqlx::Error> {
        let created_at = super::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO access_tokens (kind, name, token_hash, prefix, created_at) \
                 VALUES ('ingest', $1, $2, $3, $4) RETURNING id",
            )
            .bind(name)
            .bind(key_hash)
            .bind(prefix)
            .bind(created_at)
            .fetch_one(&mut *tx)
            .await?;
            let mut entry = NewAuditEntry::new(actor, "api_key.create", "access_token", id);
            entry.after = Some(json!({ "name": name, "prefix": prefix }));
            tx.audit(&entry).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Every ride-ingestion key, newest first.
    pub async fn ingest_keys(&self) -> Result<Vec<TokenInfo>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, name, prefix, created_at, expires_at, revoked_at FROM access_tokens \
                 WHERE kind = 'ingest' ORDER BY id DESC",
            )
            .fetch_all(pool)
            .await
        })
    }

    /// Revokes a ride-ingestion key; `false` when there is no such live key.
    pub async fn revoke_ingest_key(&self, actor: &Actor, id: i64) -> Result<bool, sqlx::Error> {
        let at = super::now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let done = sqlx::query(
                "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND kind = 'ingest' AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if done {
                let mut entry = NewAuditEntry::new(actor, "api_key.revoke", "access_token", id);
                entry.before = Some(json!({ "revoked": false }));
                entry.after = Some(json!({ "revoked": true }));
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The id of the live ride-ingestion key with this hash, recording its use.
    pub async fn ingest_key(&self, key_hash: &str) -> Result<Option<i64>, sqlx::Error> {
        let now = super::now();
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "UPDATE access_tokens SET last_used_at = $1 \
                 WHERE token_hash = $2 AND kind = 'ingest' AND revoked_at IS NULL RETURNING id",
            )
            .bind(now)
            .bind(key_hash)
            .fetch_optional(pool)
            .await
        })
    }
}

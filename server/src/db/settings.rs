//! Staff-editable settings: one JSON value per key.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use super::audit::{Actor, NewAuditEntry};
use super::writes::Writes;
use super::Db;
use crate::with_pool;

/// A stored setting and who last changed it.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// Stores a setting, replacing the one there (PostgreSQL casts the JSON text to JSONB).
fn upsert_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => {
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by"
        }
        Db::Postgres(_) => {
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2::jsonb, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by"
        }
    }
}

/// Reads one setting's JSON text (`$1`: the key); PostgreSQL keeps JSONB and is asked for text.
pub fn select_value_sql(db: &Db) -> &'static str {
    db.dialect().setting_value()
}

impl Db {
    /// The setting under `key`, if one was ever stored.
    pub async fn setting(&self, key: &str) -> Result<Option<Setting>, sqlx::Error> {
        let row: Option<(String, String, DateTime<Utc>, String)> = with_pool!(self, pool => {
            // PostgreSQL keeps JSONB; both answer with the JSON text.
            let sql = match self {
                Db::Sqlite(_) => "SELECT key, value, updated_at, updated_by FROM settings WHERE key = $1",
                Db::Postgres(_) => "SELECT key, value::text, updated_at, updated_by FROM settings WHERE key = $1",
            };
            sqlx::query_as(sql).bind(key).fetch_optional(pool).await?
        });
        row.map(|(key, value, updated_at, updated_by)| {
            let value = serde_json::from_str(&value).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok(Setting { key, value, updated_at, updated_by })
        })
        .transpose()
    }

    /// The setting under `key` read as `T`, or `T`'s default when none was ever stored.
    pub async fn setting_or_default<T: serde::de::DeserializeOwned + Default>(
        &self,
        key: &str,
    ) -> Result<T, sqlx::Error> {
        match self.setting(key).await? {
            Some(s) => serde_json::from_value(s.value).map_err(|e| sqlx::Error::Decode(Box::new(e))),
            None => Ok(T::default()),
        }
    }

    /// Stores `value` under `key`, replacing what was there, in one statement.
    pub async fn put_setting(&self, key: &str, value: &Value, actor: &str) -> Result<Setting, sqlx::Error> {
        // Microseconds: what PostgreSQL keeps, so the returned value equals the stored one.
        let now = Utc::now().trunc_subsecs(6);
        let text = value.to_string();
        with_pool!(self, pool => {
            let sql = upsert_sql(self);
            sqlx::query(sql).bind(key).bind(&text).bind(now).bind(actor).execute(pool).await.map(|_| ())?
        });
        Ok(Setting {
            key: key.to_owned(),
            value: value.clone(),
            updated_at: now,
            updated_by: actor.to_owned(),
        })
    }

    /// Stores `value` under `key` on behalf of a staff member, with an audit entry holding the
    /// value before and after, in one transaction.
    pub async fn change_setting(&self, actor: &Actor, key: &str, value: &Value) -> Result<(), sqlx::Error> {
        let before = self.setting(key).await?.map(|s| s.value);
        let now = Utc::now().trunc_subsecs(6);
        let text = value.to_string();
        with_pool!(self, pool => {
            let sql = upsert_sql(self);
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            sqlx::query(sql).bind(key).bind(&text).bind(now).bind(&actor.name).execute(&mut *tx).await?;
            let mut entry = NewAuditEntry::new(actor, "setting.change", "setting", key);
            entry.before = before;
            entry.after = Some(value.clone());
            tx.audit(&entry).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

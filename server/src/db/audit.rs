//! The append-only audit log: written in the same transaction as the change it records; the
//! database itself refuses to update or delete an entry (triggers, see migration 0002).

use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;

use super::Db;
use crate::with_pool;
use app::model::audit::{AuditEntry, AuditPage, AuditQuery};

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// `staff`, `cli`, `token`, `system` or `anonymous`.
    pub kind: &'static str,
    /// An email, an operating-system user, a token's name.
    pub name: String,
    pub staff_id: Option<i64>,
    /// An IP address, or `cli@host`.
    pub source: String,
}

impl Actor {
    /// The operating-system user running this command, for actions taken from the CLI.
    pub fn cli() -> Actor {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| format!("uid {}", nix::unistd::getuid()));
        let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
        Actor { kind: "cli", name: user, staff_id: None, source: format!("cli@{host}") }
    }

    /// A signed-in staff member (dashboard session or personal access token).
    pub fn staff(principal: &app::model::staff::Principal) -> Actor {
        let kind = match principal.method {
            app::model::staff::AuthMethod::Session => "staff",
            app::model::staff::AuthMethod::Token => "token",
        };
        Actor {
            kind,
            name: principal.staff.email.clone(),
            staff_id: Some(principal.staff.id),
            source: principal.source.clone(),
        }
    }
}

/// An entry about to be written.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: &'static str,
    pub object_type: Option<&'static str>,
    pub object_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub detail: Option<String>,
}

impl NewAuditEntry {
    /// An entry about `action` on the object `object_type` / `object_id`.
    pub fn new(
        actor: &Actor,
        action: &'static str,
        object_type: &'static str,
        object_id: impl ToString,
    ) -> Self {
        NewAuditEntry {
            actor: actor.clone(),
            action,
            object_type: Some(object_type),
            object_id: Some(object_id.to_string()),
            before: None,
            after: None,
            detail: None,
        }
    }
}

/// The INSERT for one audit entry, in either dialect (PostgreSQL casts the JSON text to JSONB).
pub(crate) fn insert_sql(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => {
            "INSERT INTO audit_log (at, actor_kind, actor, staff_id, source, action, object_type, object_id, \
             before, after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        }
        Db::Postgres(_) => {
            "INSERT INTO audit_log (at, actor_kind, actor, staff_id, source, action, object_type, object_id, \
             before, after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11)"
        }
    }
}

/// Binds a [`NewAuditEntry`] to [`insert_sql`]; a macro so that it runs inside either driver's
/// transaction (see `with_pool!`).
#[macro_export]
macro_rules! audit_insert {
    ($db:expr, $entry:expr) => {{
        let entry: &$crate::db::audit::NewAuditEntry = $entry;
        sqlx::query($crate::db::audit::insert_sql($db))
            .bind(chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6))
            .bind(entry.actor.kind)
            .bind(&entry.actor.name)
            .bind(entry.actor.staff_id)
            .bind(&entry.actor.source)
            .bind(entry.action)
            .bind(entry.object_type)
            .bind(entry.object_id.as_deref())
            .bind(entry.before.as_ref().map(|v| v.to_string()))
            .bind(entry.after.as_ref().map(|v| v.to_string()))
            .bind(entry.detail.as_deref())
    }};
}

type AuditRow = (
    i64,
    DateTime<Utc>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The largest page of audit entries.
pub const MAX_AUDIT_PAGE: u32 = 200;

impl Db {
    /// Writes one entry on its own (for events that change nothing else, like a failed login).
    pub async fn audit(&self, entry: &NewAuditEntry) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => crate::audit_insert!(self, entry).execute(pool).await.map(|_| ()))
    }

    /// A page of entries matching `query`, newest first, with the cursor of the next page.
    /// Every filter is a bound parameter; the cursor is the entry id, so each page is an index
    /// range scan however deep it is.
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage, app::api::AppError> {
        use app::api::AppError;
        let limit = query.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(AppError::invalid("limit", format!("must be from 1 to {MAX_AUDIT_PAGE}")));
        }
        let since = query.since.as_deref().map(|v| parse_instant("since", v)).transpose()?;
        let until = query.until.as_deref().map(|v| parse_instant("until", v)).transpose()?;
        let (action_exact, action_prefix) = match query.action.as_deref() {
            Some(a) if a.ends_with('.') => (None, Some(format!("{a}%"))),
            Some(a) => (Some(a.to_owned()), None),
            None => (None, None),
        };
        let json = match self {
            Db::Sqlite(_) => "before, after",
            Db::Postgres(_) => "before::text, after::text",
        };
        let sql = format!(
            "SELECT id, at, actor_kind, actor, source, action, object_type, object_id, {json}, detail \
             FROM audit_log \
             WHERE ($1 IS NULL OR actor = $1) \
               AND ($2 IS NULL OR action = $2) \
               AND ($3 IS NULL OR action LIKE $3) \
               AND ($4 IS NULL OR object_type = $4) \
               AND ($5 IS NULL OR object_id = $5) \
               AND ($6 IS NULL OR at >= $6) \
               AND ($7 IS NULL OR at < $7) \
               AND ($8 IS NULL OR id < $8) \
             ORDER BY id DESC LIMIT $9"
        );
        let rows: Vec<AuditRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(query.actor.as_deref())
                .bind(action_exact.as_deref())
                .bind(action_prefix.as_deref())
                .bind(query.object_type.as_deref())
                .bind(query.object_id.as_deref())
                .bind(since)
                .bind(until)
                .bind(query.before_id)
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
                .map_err(|e| crate::http::state::internal_error("reading the audit log", e))?
        });
        let more = rows.len() > limit as usize;
        let entries: Vec<AuditEntry> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| AuditEntry {
                id: r.0,
                at: r.1.to_rfc3339_opts(SecondsFormat::Millis, true),
                actor_kind: r.2,
                actor: r.3,
                source: r.4,
                action: r.5,
                object_type: r.6,
                object_id: r.7,
                before: r.8,
                after: r.9,
                detail: r.10,
            })
            .collect();
        let next = if more { entries.last().map(|e| e.id) } else { None };
        Ok(AuditPage { entries, next })
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>, app::api::AppError> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc).trunc_subsecs(6)).map_err(|_| {
        app::api::AppError::invalid(
            field,
            format!("{value:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })
}

//! The append-only audit log: written in the same transaction as the change it records; the
//! database itself refuses to update or delete an entry (triggers, see migration 0002).

use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;

use super::writes::Writes;
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

    /// A signed-in staff member (dashboard session or personal access token), or the staff
    /// member a command line acts for.
    pub fn staff(principal: &app::model::staff::Principal) -> Actor {
        let kind = match principal.method {
            app::model::staff::AuthMethod::Session => "staff",
            app::model::staff::AuthMethod::Token => "token",
            app::model::staff::AuthMethod::Cli => "cli",
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
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            tx.audit(entry).await?;
            tx.commit().await
        })
    }

    /// Writes entries, each at its own time, in one transaction: all of them or none.
    pub async fn audit_all(&self, entries: &[(DateTime<Utc>, &NewAuditEntry)]) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            for (at, entry) in entries {
                tx.audit_at(entry, *at).await?;
            }
            tx.commit().await
        })
    }

    /// A page of entries matching `query`, newest first, with the cursor of the next page.
    /// Every filter is a bound parameter, and only the filters given are in the statement, so
    /// that an action or an object is a seek into its index (`$1 IS NULL OR action =
    /// $1` is not: both databases read the whole log backwards for it); the cursor is the entry
    /// id, so each page goes on from where the last one stopped.
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage, crate::error::Error> {
        use crate::error::Error;
        let limit = query.limit.unwrap_or(50);
        if limit == 0 || limit > MAX_AUDIT_PAGE {
            return Err(Error::invalid("limit", format!("must be from 1 to {MAX_AUDIT_PAGE}")));
        }
        let since = query.since.as_deref().map(|v| parse_instant("since", v)).transpose()?;
        let until = query.until.as_deref().map(|v| parse_instant("until", v)).transpose()?;
        let mut filters: Vec<(&str, Filter)> = Vec::new();
        let text = |v: &Option<String>| v.clone().map(Filter::Text);
        // The actor by the start of their name or email ("rosa" finds rosa@example.com),
        // ignoring case; `%` and `_` typed are themselves.
        filters.extend(query.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(|a| {
            let escaped = a.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            ("lower(actor) LIKE", Filter::Text(format!("{escaped}%")))
        }));
        filters.extend(query.action.as_deref().map(|a| match a.strip_suffix('.') {
            Some(_) => ("action LIKE", Filter::Text(format!("{a}%"))),
            None => ("action =", Filter::Text(a.to_owned())),
        }));
        filters.extend(text(&query.object_type).map(|v| ("object_type =", v)));
        filters.extend(text(&query.object_id).map(|v| ("object_id =", v)));
        filters.extend(since.map(|t| ("at >=", Filter::Time(t))));
        filters.extend(until.map(|t| ("at <", Filter::Time(t))));
        filters.extend(query.before_id.map(|id| ("id <", Filter::Int(id))));
        let conditions: Vec<String> = filters
            .iter()
            .enumerate()
            .map(|(i, (condition, _))| {
                let escape = if condition.ends_with("LIKE") { " ESCAPE '\\'" } else { "" };
                format!("{condition} ${}{escape}", i + 1)
            })
            .collect();
        let sql = format!(
            "SELECT {columns} FROM audit_log {where_}{conditions} ORDER BY id DESC LIMIT ${last}",
            columns = self.audit_columns(),
            where_ = if conditions.is_empty() { "" } else { "WHERE " },
            conditions = conditions.join(" AND "),
            last = filters.len() + 1,
        );
        let rows: Vec<AuditRow> = with_pool!(self, pool => {
            let mut statement = sqlx::query_as(&sql);
            for (_, value) in &filters {
                statement = match value {
                    Filter::Text(v) => statement.bind(v),
                    Filter::Time(v) => statement.bind(v),
                    Filter::Int(v) => statement.bind(v),
                };
            }
            statement
                .bind(i64::from(limit) + 1)
                .fetch_all(pool)
                .await
                .map_err(|e| crate::error::Error::internal("reading the audit log", e))?
        });
        let more = rows.len() > limit as usize;
        let entries: Vec<AuditEntry> = rows.into_iter().take(limit as usize).map(entry_of).collect();
        let next = if more { entries.last().map(|e| e.id) } else { None };
        Ok(AuditPage { entries, next, time_zone: String::new() })
    }

    /// The latest `limit` entries about one object but its lookups (who looked at it), newest
    /// first: a seek into the partial index `audit_log_object_changes` (migration 0016), which
    /// holds no lookup, so an object looked at a thousand times costs what one never looked at
    /// does.
    pub async fn object_changes(
        &self,
        object_type: &str,
        object_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let sql = format!(
            "SELECT {columns} FROM audit_log WHERE object_type = $1 AND object_id = $2 AND {NOT_A_LOOKUP} \
             ORDER BY id DESC LIMIT $3",
            columns = self.audit_columns(),
        );
        let rows: Vec<AuditRow> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(object_type).bind(object_id).bind(limit).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(entry_of).collect())
    }

    /// The columns of an [`AuditRow`], `before` and `after` as text.
    fn audit_columns(&self) -> String {
        let json = match self {
            Db::Sqlite(_) => "before, after",
            Db::Postgres(_) => "before::text, after::text",
        };
        format!("id, at, actor_kind, actor, source, action, object_type, object_id, {json}, detail")
    }
}

/// The actions that record a lookup (someone looked at a person's data) rather than a change.
pub const LOOKUP_ACTIONS: [&str; 3] = ["invoice.view", "user.search", "user.view"];

/// The condition that leaves lookups out, as the partial index `audit_log_object_changes`
/// (migration 0016) states it: the databases use the index only for a query that says the same.
pub const NOT_A_LOOKUP: &str = "action NOT IN ('invoice.view', 'user.search', 'user.view')";

/// One value an audit page is filtered by.
enum Filter {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

fn entry_of(r: AuditRow) -> AuditEntry {
    AuditEntry {
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
    }
}

/// `YYYY-MM-DD` (midnight UTC) or RFC 3339.
fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>, crate::error::Error> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc).trunc_subsecs(6)).map_err(|_| {
        crate::error::Error::invalid(
            field,
            format!("{value:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lookups_left_out_are_the_lookups_listed_in_the_query_and_in_both_migrations() {
        let listed: Vec<String> = LOOKUP_ACTIONS.iter().map(|a| format!("'{a}'")).collect();
        assert_eq!(NOT_A_LOOKUP, format!("action NOT IN ({})", listed.join(", ")));
        for migration in [
            include_str!("../../../migrations/sqlite/0016_audit_object_changes.sql"),
            include_str!("../../../migrations/postgres/0016_audit_object_changes.sql"),
        ] {
            assert!(migration.contains(&format!("WHERE {NOT_A_LOOKUP};")), "{migration}");
        }
    }
}

//! The audit log as the dashboard and the API show it.

use serde::{Deserialize, Serialize};

/// One recorded action. Entries are never changed or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// `staff`, `cli`, `token`, `system` or `anonymous`.
    pub actor_kind: String,
    /// An email, an operating-system user, or a token's name.
    pub actor: String,
    /// Where from: an IP address, or `cli@host`.
    pub source: String,
    /// What was done, e.g. `staff.add`, `auth.login_failed`.
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// JSON of the object before the change, where money or settings changed.
    pub before: Option<String>,
    /// JSON of the object after the change.
    pub after: Option<String>,
    pub detail: Option<String>,
}

/// Filters for the audit log; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// The actor, exactly (an email, say).
    pub actor: Option<String>,
    /// The action, or a prefix ending in `.` (`staff.` matches every staff action).
    pub action: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`: entries at or after.
    pub since: Option<String>,
    /// RFC 3339 or `YYYY-MM-DD`: entries before.
    pub until: Option<String>,
    /// Keyset cursor: entries with an id below this one (the previous page's `next`).
    pub before_id: Option<i64>,
    /// At most this many (1 to 200, default 50).
    pub limit: Option<u32>,
}

/// A page of entries and the cursor of the next one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before_id` to get the next (older) page; `None` on the last page.
    pub next: Option<i64>,
    /// The business time zone the entries' moments are written in (empty: UTC).
    #[serde(default)]
    pub time_zone: String,
}

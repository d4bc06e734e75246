//! Alerts and the outbox.
//!
//! An alert is raised in the transaction of the event that causes it ([`alert_raise!`]); the
//! first raise of a group writes one outbox message per configured channel in that same
//! transaction, later raises of the open alert only count (`occurrences`). Customer notices are
//! outbox messages written beside the charge, refusal or refund they tell of
//! ([`notices_insert!`]). The delivery worker (`crate::notify`) claims due messages with a
//! lease, and marks one sent only after its receiver accepted it.

use chrono::{DateTime, Duration, Utc};

use super::audit::{Actor, NewAuditEntry};
use super::writes::Writes;
use super::{now, Db};
use crate::with_pool;
use app::model::alerts::{AlertKind, AlertSettings, AlertView, MessageView};

/// An alert about to be raised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub kind: AlertKind,
    /// Alerts with the same key are one while open.
    pub group_key: String,
    pub run_id: Option<i64>,
    pub week: Option<String>,
    pub title: String,
    pub detail: String,
    /// A path of the dashboard.
    pub link: Option<String>,
}

impl NewAlert {
    /// An alert about run `run_id` of `week`, grouped by kind and run.
    pub fn for_run(kind: AlertKind, run_id: i64, week: &str, detail: impl Into<String>) -> NewAlert {
        NewAlert {
            kind,
            group_key: format!("{}:run:{run_id}", kind.as_str()),
            run_id: Some(run_id),
            week: Some(week.to_owned()),
            title: format!("Run {run_id} ({week}): {}", kind.label()),
            detail: detail.into(),
            link: Some(format!("/runs/{run_id}")),
        }
    }
}

/// A customer notice about to be written: `kind` (`receipt`, `declined`, `refund`), what it is
/// about (`subject_id`: the invoice, or the refund) and the event's key, so that writing it
/// again writes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: &'static str,
    pub subject_id: i64,
    pub dedupe_key: String,
}

/// The `alerts` setting as stored text, read inside a transaction; a missing or unreadable
/// value is the default (no channels, no customer notices).
pub fn parse_settings(raw: Option<&str>) -> AlertSettings {
    raw.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
}

/// The statement that writes one outbox message to staff: delivery id, key, kind, channel,
/// recipient, alert, time.
pub const INSERT_STAFF_MESSAGE: &str =
    "INSERT INTO outbox (delivery_id, dedupe_key, kind, channel, recipient, alert_id, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (dedupe_key) DO NOTHING";

/// A fresh delivery id.
pub fn delivery_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A message claimed for delivery.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub delivery_id: String,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub alert_id: Option<i64>,
    pub user_id: Option<String>,
    pub subject_id: Option<i64>,
    pub language: String,
    pub attempts: i64,
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    kind: String,
    run_id: Option<i64>,
    week: Option<String>,
    title: String,
    detail: String,
    link: Option<String>,
    occurrences: i64,
    state: String,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    escalated_at: Option<DateTime<Utc>>,
}

impl From<AlertRow> for AlertView {
    fn from(r: AlertRow) -> AlertView {
        AlertView {
            id: r.id,
            // The table's CHECK allows only known kinds.
            kind: AlertKind::parse(&r.kind).unwrap_or(AlertKind::Test),
            run_id: r.run_id,
            week: r.week,
            title: r.title,
            detail: r.detail,
            link: r.link,
            occurrences: r.occurrences,
            state: r.state,
            first_at: r.first_at.fixed_offset(),
            last_at: r.last_at.fixed_offset(),
            acknowledged_by: r.acknowledged_by,
            acknowledged_at: r.acknowledged_at.map(|at| at.fixed_offset()),
            resolved_by: r.resolved_by,
            resolved_at: r.resolved_at.map(|at| at.fixed_offset()),
            escalated_at: r.escalated_at.map(|at| at.fixed_offset()),
        }
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: i64,
    delivery_id: String,
    kind: String,
    channel: String,
    recipient: String,
    alert_id: Option<i64>,
    user_id: Option<String>,
    state: String,
    attempts: i64,
    next_attempt_at: DateTime<Utc>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    sent_at: Option<DateTime<Utc>>,
}

impl From<MessageRow> for MessageView {
    fn from(r: MessageRow) -> MessageView {
        MessageView {
            id: r.id,
            delivery_id: r.delivery_id,
            kind: r.kind,
            channel: r.channel,
            recipient: r.recipient,
            alert_id: r.alert_id,
            user_id: r.user_id,
            state: r.state,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.fixed_offset(),
            last_error: r.last_error,
            created_at: r.created_at.fixed_offset(),
            sent_at: r.sent_at.map(|at| at.fixed_offset()),
        }
    }
}

const MESSAGE_COLUMNS: &str =
    "id, delivery_id, kind, channel, recipient, alert_id, user_id, state, attempts, \
     next_attempt_at, last_error, created_at, sent_at";

/// After this many failed attempts a message is given up (`failed`), about a day and a half of
/// backing off.
pub const MAX_DELIVERY_ATTEMPTS: i64 = 20;

/// Which messages a delivery loop claims: one channel's (so that a hung receiver delays only
/// its own), or every channel's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Webhook,
    Email,
    Any,
    /// Every channel but email (where no mail server is configured).
    AnyButEmail,
}

impl Db {
    /// Raises an alert in a transaction of its own (for events that change nothing else: a run
    /// that did not start, a test).
    pub async fn raise_alert(&self, alert: &NewAlert) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let id = tx.raise_alert(alert).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Open and acknowledged alerts (`open`), or resolved ones, newest first.
    pub async fn alerts(&self, open: bool, limit: i64) -> Result<Vec<AlertView>, sqlx::Error> {
        let filter = if open { "state <> 'resolved'" } else { "state = 'resolved'" };
        let sql = format!("SELECT * FROM alerts WHERE {filter} ORDER BY last_at DESC, id DESC LIMIT $1");
        let rows: Vec<AlertRow> =
            with_pool!(self, pool => sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?);
        Ok(rows.into_iter().map(AlertView::from).collect())
    }

    /// One alert.
    pub async fn alert(&self, id: i64) -> Result<Option<AlertView>, sqlx::Error> {
        let row: Option<AlertRow> = with_pool!(self, pool => {
            sqlx::query_as("SELECT * FROM alerts WHERE id = $1").bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(AlertView::from))
    }

    /// Acknowledges (`resolve` false: someone is on it) or resolves an alert, with an audit
    /// entry. Returns false when the alert was not in a state that allows it.
    pub async fn settle_alert(&self, id: i64, actor: &Actor, resolve: bool) -> Result<bool, sqlx::Error> {
        let at = now();
        let (sql, action) = if resolve {
            (
                "UPDATE alerts SET state = 'resolved', resolved_by = $1, resolved_at = $2, \
                 acknowledged_by = COALESCE(acknowledged_by, $1), acknowledged_at = COALESCE(acknowledged_at, $2) \
                 WHERE id = $3 AND state <> 'resolved'",
                "alert.resolve",
            )
        } else {
            (
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = $1, acknowledged_at = $2 \
                 WHERE id = $3 AND state = 'open'",
                "alert.acknowledge",
            )
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let changed = sqlx::query(sql).bind(&actor.name).bind(at).bind(id).execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                let entry = NewAuditEntry::new(actor, action, "alert", id);
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    /// The latest messages, newest first (in one state, when given).
    pub async fn messages(&self, state: Option<&str>, limit: i64) -> Result<Vec<MessageView>, sqlx::Error> {
        let filter = if state.is_some() { "WHERE state = $2" } else { "" };
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT $1");
        let rows: Vec<MessageRow> = with_pool!(self, pool => {
            let query = sqlx::query_as(&sql).bind(limit);
            let query = match state { Some(state) => query.bind(state), None => query };
            query.fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(MessageView::from).collect())
    }

    /// How many messages are queued, retrying, sent and failed.
    pub async fn message_counts(&self) -> Result<[i64; 4], sqlx::Error> {
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetch_all(pool).await?
        });
        let mut counts = [0; 4];
        for (state, n) in rows {
            let slot = app::model::alerts::MESSAGE_STATES.iter().position(|s| *s == state);
            if let Some(slot) = slot {
                counts[slot] = n;
            }
        }
        Ok(counts)
    }

    /// Claims up to `limit` messages that are due and not leased by a live worker, for
    /// `lease`: each claim counts as an attempt. Several processes claim side by side without
    /// taking the same message. Only messages of `channel` (a process with no mail server leaves
    /// email to the processes that have one); with `staff_only`, no customer notice. Alerts to
    /// staff come first.
    pub async fn claim_messages(
        &self,
        worker: &str,
        lease: Duration,
        limit: i64,
        channel: Channel,
        staff_only: bool,
    ) -> Result<Vec<OutboxRow>, sqlx::Error> {
        let at = now();
        let channels = match channel {
            Channel::Webhook => " AND channel = 'webhook'",
            Channel::Email => " AND channel = 'email'",
            Channel::Any => "",
            Channel::AnyButEmail => " AND channel <> 'email'",
        };
        let kinds = if staff_only { " AND alert_id IS NOT NULL" } else { "" };
        let due = format!(
            "state IN ('queued', 'retrying') AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3){channels}{kinds}"
        );
        let skip_locked = match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        // Alerts to staff before customer notices (thousands of receipts may wait).
        let staff_first = match self {
            Db::Sqlite(_) => "alert_id IS NULL,",
            Db::Postgres(_) => "(alert_id IS NULL),",
        };
        // The outer condition again: on PostgreSQL a row another worker claimed meanwhile is
        // looked at anew after its lock, and left.
        let sql = format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE {due} ORDER BY {staff_first} next_attempt_at, id LIMIT $4{skip_locked}) AND {due} \
             RETURNING id, delivery_id, kind, channel, recipient, alert_id, user_id, subject_id, language, attempts"
        );
        with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(worker).bind(at + lease).bind(at).bind(limit).fetch_all(pool).await
        })
    }

    /// The receiver accepted message `id`: it is sent (only by the worker holding it).
    pub async fn message_sent(&self, id: i64, worker: &str) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET state = 'sent', sent_at = $1, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $2 AND lease_owner = $3 AND state IN ('queued', 'retrying')",
            )
            .bind(now())
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() == 1)
        })
    }

    /// Message `id` was not accepted: tried again at `retry_at`, or given up when it has had
    /// [`MAX_DELIVERY_ATTEMPTS`] or `final_error`.
    pub async fn message_failed(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_at: DateTime<Utc>,
        final_error: bool,
    ) -> Result<(), sqlx::Error> {
        let error: String = error.chars().take(1000).collect();
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE outbox SET state = CASE WHEN $1 OR attempts >= $2 THEN 'failed' ELSE 'retrying' END, \
                 last_error = $3, next_attempt_at = $4, lease_owner = NULL, lease_until = NULL \
                 WHERE id = $5 AND lease_owner = $6 AND state IN ('queued', 'retrying')",
            )
            .bind(final_error)
            .bind(MAX_DELIVERY_ATTEMPTS)
            .bind(error)
            .bind(retry_at)
            .bind(id)
            .bind(worker)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// The state of an invoice's charge and when it is tried next.
    pub async fn charge_state(
        &self,
        invoice_id: i64,
    ) -> Result<Option<(String, DateTime<Utc>, Option<String>)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT state, next_at, reason FROM charges WHERE invoice_id = $1").bind(invoice_id).fetch_optional(pool).await
        })
    }

    /// Sends every open alert that nobody acknowledged within `after` to the second contact,
    /// once (several processes may look at the same time). Returns how many alerts went.
    pub async fn escalate_alerts(&self, after: Duration) -> Result<usize, sqlx::Error> {
        let at = now();
        let due: Vec<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM alerts WHERE state = 'open' AND escalated_at IS NULL AND first_at <= $1 ORDER BY id LIMIT 100",
            )
            .bind(at - after)
            .fetch_all(pool)
            .await?
        });
        let mut escalated = 0;
        for id in due {
            let went = with_pool!(self, pool => {
                let mut tx = pool.begin_with(super::begin_writing(self)).await?;
                let changed = sqlx::query(
                    "UPDATE alerts SET escalated_at = $1 WHERE id = $2 AND state = 'open' AND escalated_at IS NULL",
                )
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    let settings = tx.alert_settings().await?;
                    tx.staff_messages("escalation", "escalation", id, &settings.second(), at).await?;
                }
                tx.commit().await?;
                changed == 1
            });
            escalated += usize::from(went);
        }
        Ok(escalated)
    }
}

//! What many writes share inside one open transaction: a ledger transaction, an audit entry, an
//! alert and its messages, customer notices, the freeze lock. They are methods of [`Writes`],
//! which a transaction of either driver has, so a statement that changes money writes its
//! ledger transaction, its audit entry and its alert in the same commit:
//!
//! ```ignore
//! let mut tx = pool.begin_with(begin_writing(db)).await?;
//! // … the change itself …
//! tx.ledger_once(&ledger, at).await?;
//! tx.audit(&entry).await?;
//! tx.commit().await?;
//! ```
//!
//! Why one macro writes the two implementations instead of one generic function: sqlx types a
//! query by its database (`Sqlite`, `Postgres`), and a function generic over the database would
//! have to repeat, at every caller, a bound for each type it binds or reads (Rust does not carry
//! those bounds from a trait's `where` clause to its users). The macro compiles the same body once
//! per driver, as `with_pool!` does for pools, so a statement one of them cannot take fails the
//! build; the dialects' differences are the `Dialect` parameter.

use chrono::{DateTime, Utc};

use super::alerts::{NewAlert, Notice};
use super::audit::NewAuditEntry;
use crate::billing::ledger::{Posting, Transaction};
use app::model::alerts::AlertSettings;

/// Where a statement's text differs between the two databases.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl super::Db {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            super::Db::Sqlite(_) => Dialect::Sqlite,
            super::Db::Postgres(_) => Dialect::Postgres,
        }
    }
}

impl Dialect {
    /// One audit entry.
    fn audit_insert(self) -> &'static str {
        match self {
            Dialect::Sqlite => {
                "INSERT INTO audit_log (at, actor_kind, actor, staff_id, source, action, object_type, object_id, \
                 before, after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            }
            // PostgreSQL casts the JSON text to JSONB.
            Dialect::Postgres => {
                "INSERT INTO audit_log (at, actor_kind, actor, staff_id, source, action, object_type, object_id, \
                 before, after, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11)"
            }
        }
    }

    /// The value of a setting, as text.
    pub(crate) fn setting_value(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT value FROM settings WHERE key = $1",
            Dialect::Postgres => "SELECT value::text FROM settings WHERE key = $1",
        }
    }
}

/// The customers' rows a notice is about: the table whose `user_id` names the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeSubjects {
    Invoices,
    Refunds,
}

impl NoticeSubjects {
    fn table(self) -> &'static str {
        match self {
            NoticeSubjects::Invoices => "invoices",
            NoticeSubjects::Refunds => "refunds",
        }
    }
}

/// The writes a transaction of either driver shares (see the module's documentation).
pub(crate) trait Writes {
    /// Inserts `ledger` and its postings.
    async fn ledger(&mut self, ledger: &Transaction, at: DateTime<Utc>) -> Result<(), sqlx::Error>;

    /// As [`Writes::ledger`], unless a transaction of the same kind and reference exists:
    /// recording a movement again (a retried worker, say) records it once.
    async fn ledger_once(&mut self, ledger: &Transaction, at: DateTime<Utc>) -> Result<(), sqlx::Error>;

    /// As [`Writes::ledger_once`] for many transactions, in two multi-row statements: the
    /// transactions not recorded yet (by kind and reference), then their postings.
    async fn ledger_many(&mut self, ledgers: &[&Transaction], at: DateTime<Utc>) -> Result<(), sqlx::Error>;

    /// Writes an audit entry, now.
    async fn audit(&mut self, entry: &NewAuditEntry) -> Result<(), sqlx::Error> {
        self.audit_at(entry, super::now()).await
    }

    /// Writes an audit entry at `at`.
    async fn audit_at(&mut self, entry: &NewAuditEntry, at: DateTime<Utc>) -> Result<(), sqlx::Error>;

    /// The `alerts` setting as this transaction sees it.
    async fn alert_settings(&mut self) -> Result<AlertSettings, sqlx::Error>;

    /// One message of `kind` about alert `alert_id` to each of `channels` (`(channel,
    /// recipient)`), once per `prefix`, alert and channel.
    async fn staff_messages(
        &mut self,
        prefix: &str,
        kind: &str,
        alert_id: i64,
        channels: &[(&'static str, &str)],
        at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;

    /// Raises `alert`: a new alert and one message per channel of the first contact, or one more
    /// occurrence of the open alert of its group. Returns the alert's id.
    async fn raise_alert(&mut self, alert: &NewAlert) -> Result<i64, sqlx::Error>;

    /// Writes `notices` (each about a row of `subjects`) to each customer who has an email
    /// address, when customer notices are on. A notice already written (same key) is not
    /// written again.
    async fn notices(&mut self, notices: &[Notice], subjects: NoticeSubjects) -> Result<(), sqlx::Error>;

    /// Takes the freeze lock in shared mode for the rest of the transaction (PostgreSQL;
    /// SQLite's single writer already orders a ride with an approval).
    async fn share_freeze_lock(&mut self) -> Result<(), sqlx::Error>;

    /// Adds the rides just stored, by when each ended, to the counted weeks whose range holds
    /// them (`week_ride_counts`; see [`super::Db::week_fingerprint`]). Called in the transaction
    /// that stores them, after its first write (SQLite's write lock, PostgreSQL's shared freeze
    /// lock): a count made meanwhile either includes them or is added to.
    async fn count_new_rides(&mut self, ended: &[DateTime<Utc>]) -> Result<(), sqlx::Error>;
}

macro_rules! writes_for {
    ($database:ty, $dialect:expr) => {
        impl Writes for sqlx::Transaction<'_, $database> {
            async fn ledger(&mut self, ledger: &Transaction, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO ledger_transactions (kind, reference, currency, created_at, week) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(ledger.kind)
                .bind(&ledger.reference)
                .bind(ledger.currency.code())
                .bind(at)
                .bind(ledger.week.as_deref())
                .fetch_one(&mut **self)
                .await?;
                for chunk in ledger.postings.chunks(500) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger_postings (transaction_id, account, amount_minor) ",
                    );
                    insert.push_values(chunk, |mut row, posting| {
                        row.push_bind(id).push_bind(posting.account.to_string()).push_bind(posting.minor);
                    });
                    insert.build().execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn ledger_once(&mut self, ledger: &Transaction, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
                let exists: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM ledger_transactions WHERE kind = $1 AND reference = $2)",
                )
                .bind(ledger.kind)
                .bind(&ledger.reference)
                .fetch_one(&mut **self)
                .await?;
                if !exists {
                    self.ledger(ledger, at).await?;
                }
                Ok(())
            }

            async fn ledger_many(
                &mut self,
                ledgers: &[&Transaction],
                at: DateTime<Utc>,
            ) -> Result<(), sqlx::Error> {
                if ledgers.is_empty() {
                    return Ok(());
                }
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO ledger_transactions (kind, reference, currency, created_at, week) ",
                );
                insert.push_values(ledgers, |mut row, ledger| {
                    row.push_bind(ledger.kind)
                        .push_bind(ledger.reference.as_str())
                        .push_bind(ledger.currency.code())
                        .push_bind(at)
                        .push_bind(ledger.week.as_deref());
                });
                insert.push(" ON CONFLICT (kind, reference) DO NOTHING RETURNING id, kind, reference");
                let ids: std::collections::HashMap<(String, String), i64> = insert
                    .build_query_as::<(i64, String, String)>()
                    .fetch_all(&mut **self)
                    .await?
                    .into_iter()
                    .map(|(id, kind, reference)| ((kind, reference), id))
                    .collect();
                let postings: Vec<(i64, &Posting)> = ledgers
                    .iter()
                    .filter_map(|l| Some((*ids.get(&(l.kind.to_owned(), l.reference.clone()))?, l)))
                    .flat_map(|(id, l)| l.postings.iter().map(move |p| (id, p)))
                    .collect();
                for chunk in postings.chunks(500) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO ledger_postings (transaction_id, account, amount_minor) ",
                    );
                    insert.push_values(chunk, |mut row, (id, posting)| {
                        row.push_bind(*id).push_bind(posting.account.to_string()).push_bind(posting.minor);
                    });
                    insert.build().execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn audit_at(&mut self, entry: &NewAuditEntry, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
                sqlx::query($dialect.audit_insert())
                    .bind(at)
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
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn alert_settings(&mut self) -> Result<AlertSettings, sqlx::Error> {
                let raw: Option<String> = sqlx::query_scalar($dialect.setting_value())
                    .bind(AlertSettings::KEY)
                    .fetch_optional(&mut **self)
                    .await?;
                Ok(super::alerts::parse_settings(raw.as_deref()))
            }

            async fn staff_messages(
                &mut self,
                prefix: &str,
                kind: &str,
                alert_id: i64,
                channels: &[(&'static str, &str)],
                at: DateTime<Utc>,
            ) -> Result<(), sqlx::Error> {
                for (channel, recipient) in channels {
                    sqlx::query(super::alerts::INSERT_STAFF_MESSAGE)
                        .bind(super::alerts::delivery_id())
                        .bind(format!("{prefix}:{alert_id}:{channel}"))
                        .bind(kind)
                        .bind(*channel)
                        .bind(*recipient)
                        .bind(alert_id)
                        .bind(at)
                        .execute(&mut **self)
                        .await?;
                }
                Ok(())
            }

            async fn raise_alert(&mut self, alert: &NewAlert) -> Result<i64, sqlx::Error> {
                let at = super::now();
                let settings = self.alert_settings().await?;
                let (id, occurrences): (i64, i64) = sqlx::query_as(
                    "INSERT INTO alerts (kind, group_key, run_id, week, title, detail, link, first_at, last_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     ON CONFLICT (group_key) WHERE state <> 'resolved' \
                     DO UPDATE SET occurrences = alerts.occurrences + 1, last_at = excluded.last_at \
                     RETURNING id, occurrences",
                )
                .bind(alert.kind.as_str())
                .bind(&alert.group_key)
                .bind(alert.run_id)
                .bind(alert.week.as_deref())
                .bind(&alert.title)
                .bind(&alert.detail)
                .bind(alert.link.as_deref())
                .bind(at)
                .fetch_one(&mut **self)
                .await?;
                if occurrences == 1 {
                    let kind = if alert.kind == app::model::alerts::AlertKind::Test { "test" } else { "alert" };
                    self.staff_messages("alert", kind, id, &settings.primary(), at).await?;
                }
                Ok(id)
            }

            async fn notices(&mut self, notices: &[Notice], subjects: NoticeSubjects) -> Result<(), sqlx::Error> {
                if notices.is_empty() || !self.alert_settings().await?.customer_notices {
                    return Ok(());
                }
                let at = super::now();
                for chunk in notices.chunks(500) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO outbox (delivery_id, dedupe_key, kind, channel, recipient, user_id, subject_id, \
                         language, next_attempt_at, created_at) \
                         SELECT v.column1, v.column2, v.column3, 'email', u.email, u.id, v.column4, u.language, ",
                    );
                    insert.push_bind(at).push(", ").push_bind(at).push(" FROM (");
                    insert.push_values(chunk, |mut row, notice| {
                        row.push_bind(super::alerts::delivery_id())
                            .push_bind(notice.dedupe_key.as_str())
                            .push_bind(notice.kind)
                            .push_bind(notice.subject_id);
                    });
                    insert.push(format!(
                        ") AS v JOIN {} s ON s.id = v.column4 JOIN users u ON u.id = s.user_id \
                         WHERE u.email IS NOT NULL AND u.email <> '' ON CONFLICT (dedupe_key) DO NOTHING",
                        subjects.table()
                    ));
                    insert.build().execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn share_freeze_lock(&mut self) -> Result<(), sqlx::Error> {
                if $dialect == Dialect::Postgres {
                    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                        .bind(super::weeks::FREEZE_LOCK)
                        .execute(&mut **self)
                        .await?;
                }
                Ok(())
            }

            async fn count_new_rides(&mut self, ended: &[DateTime<Utc>]) -> Result<(), sqlx::Error> {
                let (Some(first), Some(last)) = (ended.iter().min(), ended.iter().max()) else {
                    return Ok(());
                };
                // A handful of rows: one per week range ever opened. Updated in key order, so
                // concurrent writers lock them in the same order.
                let ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
                    "SELECT starts_at, ends_at FROM week_ride_counts WHERE starts_at <= $1 AND ends_at > $2 \
                     ORDER BY starts_at, ends_at",
                )
                .bind(last)
                .bind(first)
                .fetch_all(&mut **self)
                .await?;
                for (starts, ends) in ranges {
                    let added = ended.iter().filter(|at| starts <= **at && **at < ends).count() as i64;
                    if added > 0 {
                        sqlx::query(
                            "UPDATE week_ride_counts SET rides = rides + $3 WHERE starts_at = $1 AND ends_at = $2",
                        )
                        .bind(starts)
                        .bind(ends)
                        .bind(added)
                        .execute(&mut **self)
                        .await?;
                    }
                }
                Ok(())
            }
        }
    };
}

writes_for!(sqlx::Sqlite, Dialect::Sqlite);
writes_for!(sqlx::Postgres, Dialect::Postgres);

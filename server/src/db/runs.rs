//! The weekly run's storage: the run of a week, the charging and transfer rows claimed under
//! leases, the attempts written before each provider call, the provider's objects per user, and
//! the double-entry ledger.
//!
//! Exactly-once is the database's job here: one run per week (unique week), one charging row per
//! invoice (primary key), one attempt per idempotency key (unique), at most one successful attempt
//! per invoice or payout (partial unique indexes), one ledger transaction per cause (unique kind
//! and reference). Claims are atomic: one UPDATE of rows chosen by a subquery that, on
//! PostgreSQL, skips rows other workers hold (`FOR UPDATE SKIP LOCKED`); SQLite has one writer.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::alerts::{NewAlert, Notice};
use super::audit::{Actor, NewAuditEntry};
use super::writes::{NoticeSubjects, Writes};
use super::{now, Db};
use crate::billing::ledger::{Account, Posting, Transaction};
use crate::with_pool;
use app::model::alerts::AlertKind;
use app::model::run::{Control, Phase};
use app::model::week::BillingWeek;

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub week: String,
    #[sqlx(try_from = "String")]
    pub phase: Phase,
    #[sqlx(try_from = "String")]
    pub control: Control,
    pub reason: Option<String>,
    pub currency: String,
    pub canary_size: i64,
    pub expected_minor: i64,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// A user's objects at the provider: user, customer, card, connected account.
type ProviderObjects = (String, Option<String>, Option<String>, Option<String>);

/// Work claimed by a worker: an invoice to charge or a payout to transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The invoice or payout id.
    pub id: i64,
    /// The passenger or driver.
    pub user_id: String,
    pub amount_minor: i64,
    /// Attempts already finished with a final answer.
    pub attempts: i64,
}

/// What the charging and transfer rows of a run add up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub invoices: i64,
    pub pending: i64,
    pub charged: i64,
    pub declined: i64,
    pub uncollectible: i64,
    pub charged_minor: i64,
    pub canary_open: i64,
    pub transfers: i64,
    pub transfers_pending: i64,
    pub paid: i64,
    pub paid_minor: i64,
    pub attempts: i64,
    pub unknown_attempts: i64,
    pub failed_attempts: i64,
}

/// A run's totals in the order of [`TALLIED`] and [`COUNTED`]: charges pending, charged,
/// declined, uncollectible, the amount charged; transfers pending, paid, failed, the amount paid;
/// charge attempts, of which unknown, of which failed.
type TallyRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// A run's totals from its running tallies (the sum of its shards).
const TALLIED: &str = "SELECT CAST(COALESCE(SUM(charges_pending), 0) AS BIGINT), \
    CAST(COALESCE(SUM(charges_charged), 0) AS BIGINT), CAST(COALESCE(SUM(charges_declined), 0) AS BIGINT), \
    CAST(COALESCE(SUM(charges_uncollectible), 0) AS BIGINT), CAST(COALESCE(SUM(charged_minor), 0) AS BIGINT), \
    CAST(COALESCE(SUM(transfers_pending), 0) AS BIGINT), CAST(COALESCE(SUM(transfers_paid), 0) AS BIGINT), \
    CAST(COALESCE(SUM(transfers_failed), 0) AS BIGINT), CAST(COALESCE(SUM(paid_minor), 0) AS BIGINT), \
    CAST(COALESCE(SUM(charge_attempts), 0) AS BIGINT), CAST(COALESCE(SUM(attempts_unknown), 0) AS BIGINT), \
    CAST(COALESCE(SUM(attempts_failed), 0) AS BIGINT) FROM run_tallies WHERE run_id = $1";

/// The same totals counted from the run's rows: the whole run read.
const COUNTED: &str = "SELECT \
    (SELECT COUNT(*) FROM charges WHERE run_id = $1 AND state = 'pending'), \
    (SELECT COUNT(*) FROM charges WHERE run_id = $1 AND state = 'charged'), \
    (SELECT COUNT(*) FROM charges WHERE run_id = $1 AND state = 'declined'), \
    (SELECT COUNT(*) FROM charges WHERE run_id = $1 AND state = 'uncollectible'), \
    (SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM charges WHERE run_id = $1 AND state = 'charged'), \
    (SELECT COUNT(*) FROM transfers WHERE run_id = $1 AND state = 'pending'), \
    (SELECT COUNT(*) FROM transfers WHERE run_id = $1 AND state = 'paid'), \
    (SELECT COUNT(*) FROM transfers WHERE run_id = $1 AND state = 'failed'), \
    (SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM transfers WHERE run_id = $1 AND state = 'paid'), \
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = $1), \
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = $1 AND a.outcome = 'unknown'), \
    (SELECT COUNT(*) FROM charge_attempts a JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = $1 AND a.outcome = 'failed')";

/// Canary invoices still pending: at most the canary's size of rows, through `(run_id, seq)`.
const CANARY_OPEN: &str =
    "SELECT COUNT(*) FROM charges WHERE run_id = $1 AND seq <= $2 AND state = 'pending'";

/// The passenger charged the most in a run, from the running tallies.
const TOP_TALLIED: &str = "SELECT top_user, top_user_minor FROM run_tallies \
    WHERE run_id = $1 AND top_user IS NOT NULL ORDER BY top_user_minor DESC LIMIT 1";

/// The same counted from the run's successful attempts.
const TOP_COUNTED: &str = "SELECT c.user_id, CAST(SUM(a.amount_minor) AS BIGINT) FROM charge_attempts a \
    JOIN charges c ON c.invoice_id = a.invoice_id WHERE c.run_id = $1 AND a.outcome = 'succeeded' \
    GROUP BY c.user_id ORDER BY 2 DESC LIMIT 1";

impl RunCounts {
    fn from_tally(t: TallyRow, canary_open: i64) -> RunCounts {
        RunCounts {
            invoices: t.0 + t.1 + t.2 + t.3,
            pending: t.0,
            charged: t.1,
            declined: t.2,
            uncollectible: t.3,
            charged_minor: t.4,
            canary_open,
            transfers: t.5 + t.6 + t.7,
            transfers_pending: t.5,
            paid: t.6,
            paid_minor: t.8,
            attempts: t.9,
            unknown_attempts: t.10,
            failed_attempts: t.11,
        }
    }
}

/// The attempt to make for a claimed item: its number and idempotency key, reused when an
/// earlier attempt never got a final answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub number: i64,
    pub key: String,
    /// True when this attempt was written before (a retry of an unknown outcome).
    pub resumed: bool,
    /// When the attempt began: its key was first sent then.
    pub started_at: DateTime<Utc>,
}

impl Attempt {
    /// Whether the attempt's key may no longer be sent: it was first sent more than `window`
    /// ago, and the provider may have forgotten it (Stripe keeps keys for 24 hours). Its
    /// movement is looked up instead.
    pub fn past_window(&self, window: Duration) -> bool {
        self.resumed && self.started_at + window < now()
    }
}

/// The answer to one provider call, as [`Db::record_outcomes`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider moved the money: `provider_id` is its object, `ledger` the movement.
    Succeeded { id: i64, key: String, provider_id: String, ledger: Option<Transaction> },
    /// A final refusal (`declined` or `failed`), tried again at `retry_at` or given up.
    Refused {
        id: i64,
        key: String,
        outcome: String,
        detail: String,
        retry_at: DateTime<Utc>,
        max_attempts: i64,
    },
    /// No answer: asked again with the same key at `retry_at`.
    Unknown { id: i64, key: String, detail: String, retry_at: DateTime<Utc> },
    /// The provider refused a transfer for a reason that passes with time (`funds`: the
    /// platform's available balance cannot cover it): nothing moved, the attempt is closed and
    /// the payout waits, still pending, until `retry_at`, when a new attempt (new key) is made.
    /// Never counted against the attempts a payout has before it fails.
    Waiting { id: i64, key: String, waiting_for: &'static str, detail: String, retry_at: DateTime<Utc> },
    /// A lookup at the provider found that the attempt made nothing: the attempt is closed
    /// (`failed`, not counted against the item) and the item is due at once, for a new attempt
    /// under a new key.
    NotMade { id: i64, key: String, detail: String },
    /// A lookup at the provider could not be made: the attempt stays open and the item waits
    /// for a person (`held = 'lookup'`), out of the workers' reach.
    Held { id: i64, key: String, detail: String },
}

/// What recording an [`Outcome`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// False when the database refused a second success for the item.
    Succeeded(bool),
    /// The item's new state: `declined`/`pending` (tried again), `uncollectible`/`failed`
    /// (given up) or `settled` (already settled by the same key's success).
    Refused(String),
    Unknown,
    Waiting,
    NotMade,
    Held,
}

/// The two kinds of work, which differ only in their tables and words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Charge,
    Transfer,
}

impl Work {
    pub(super) fn table(self) -> &'static str {
        match self {
            Work::Charge => "charges",
            Work::Transfer => "transfers",
        }
    }
    pub(super) fn attempts(self) -> &'static str {
        match self {
            Work::Charge => "charge_attempts",
            Work::Transfer => "transfer_attempts",
        }
    }
    pub(super) fn id(self) -> &'static str {
        match self {
            Work::Charge => "invoice_id",
            Work::Transfer => "payout_id",
        }
    }
    fn user(self) -> &'static str {
        match self {
            Work::Charge => "user_id",
            Work::Transfer => "driver_id",
        }
    }
    /// The key of attempt `number` on item `id` of `week`: derived, so a lost attempt record
    /// is recreated with the same key.
    pub fn key(self, week: &str, id: i64, number: i64) -> String {
        match self {
            Work::Charge => format!("charge:{week}:invoice-{id}:attempt-{number}"),
            Work::Transfer => format!("transfer:{week}:payout-{id}:attempt-{number}"),
        }
    }
}

/// Why a run could not be created.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// About the week (the field `week`).
    #[error("{0} is not approved; approve its preview first")]
    NotApproved(BillingWeek),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Db {
    /// The run of `week`, created (with its charging and transfer rows, the ledger's freeze
    /// transaction and the `run.start` audit entry of `actor`) if it has none: starting twice
    /// joins the same run, and only the start that created it is audited.
    pub async fn start_run(
        &self,
        week: BillingWeek,
        actor: &Actor,
        canary_size: i64,
    ) -> Result<RunRow, StartError> {
        let started_by = actor.name.as_str();
        let text = week.to_string();
        if let Some(run) = self.run_of_week(&text).await? {
            return Ok(run);
        }
        let approved: Option<(String, String, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT status, currency, charged_minor, fees_minor FROM weeks WHERE week = $1")
                .bind(&text)
                .fetch_optional(pool)
                .await?
        });
        let Some((status, currency, charged, fees)) = approved.filter(|(s, ..)| s == "approved") else {
            return Err(StartError::NotApproved(week));
        };
        let _ = status;
        let freeze = self.freeze_transaction(&text, &currency, fees).await?;
        let at = now();
        let created: Result<(), sqlx::Error> = with_pool!(self, pool => {
            async {
                let mut tx = pool.begin_with(super::begin_writing(self)).await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO runs (week, phase, control, currency, canary_size, expected_minor, started_at, started_by, updated_at) \
                     VALUES ($1, 'canary', 'running', $2, $3, $4, $5, $6, $5) ON CONFLICT (week) DO NOTHING RETURNING id",
                )
                .bind(&text)
                .bind(&currency)
                .bind(canary_size)
                .bind(charged)
                .bind(at)
                .bind(started_by)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = id else { return Ok(()) };
                sqlx::query(
                    "INSERT INTO charges (invoice_id, run_id, seq, user_id, amount_minor, state, next_at) \
                     SELECT id, $1, ROW_NUMBER() OVER (ORDER BY user_id), user_id, total_minor, 'pending', $2 \
                     FROM invoices WHERE week = $3",
                )
                .bind(id)
                .bind(at)
                .bind(&text)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO transfers (payout_id, run_id, seq, driver_id, amount_minor, state, next_at) \
                     SELECT id, $1, ROW_NUMBER() OVER (ORDER BY driver_id), driver_id, total_minor, 'pending', $2 \
                     FROM payouts WHERE week = $3",
                )
                .bind(id)
                .bind(at)
                .bind(&text)
                .execute(&mut *tx)
                .await?;
                // The run's first totals: every charge and transfer pending, no attempt yet.
                sqlx::query(
                    "INSERT INTO run_tallies (run_id, shard, charges_pending, transfers_pending) \
                     SELECT $1, 0, (SELECT COUNT(*) FROM charges WHERE run_id = $1), \
                     (SELECT COUNT(*) FROM transfers WHERE run_id = $1)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if let Some(freeze) = &freeze {
                    tx.ledger(freeze, at).await?;
                }
                sqlx::query("INSERT INTO run_events (run_id, at, kind, message) VALUES ($1, $2, 'started', $3)")
                    .bind(id)
                    .bind(at)
                    .bind(format!("run of {text} started by {started_by}"))
                    .execute(&mut *tx)
                    .await?;
                let mut entry = NewAuditEntry::new(actor, "run.start", "run", id);
                entry.detail = Some(format!("week {text}"));
                tx.audit_at(&entry, at).await?;
                tx.commit().await?;
                Ok(())
            }
            .await
        });
        created?;
        Ok(self.run_of_week(&text).await?.ok_or(sqlx::Error::RowNotFound)?)
    }

    /// The ledger transaction that issues a frozen week: each passenger owes their invoice,
    /// each driver is owed their payout, the platform earns its fees.
    async fn freeze_transaction(
        &self,
        week: &str,
        currency: &str,
        fees: i64,
    ) -> Result<Option<Transaction>, sqlx::Error> {
        let invoices: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT user_id, total_minor FROM invoices WHERE week = $1").bind(week).fetch_all(pool).await?
        });
        let payouts: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT driver_id, total_minor FROM payouts WHERE week = $1 AND total_minor > 0")
                .bind(week)
                .fetch_all(pool)
                .await?
        });
        let mut postings: Vec<Posting> =
            invoices
                .into_iter()
                .map(|(user, minor)| Posting { account: Account::PassengerReceivable(user), minor })
                .chain(payouts.into_iter().map(|(driver, minor)| Posting {
                    account: Account::DriverPayable(driver),
                    minor: -minor,
                }))
                .collect();
        if fees > 0 {
            postings.push(Posting { account: Account::PlatformFees, minor: -fees });
        }
        if postings.is_empty() {
            return Ok(None);
        }
        let currency = app::model::money::BillingCurrency::from_code(currency)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        Transaction::new("week.freeze", week, currency, postings)
            .map(|t| t.of_week(week))
            .map(Some)
            .map_err(|e| sqlx::Error::Protocol(format!("the frozen week {week} does not balance: {e}")))
    }

    /// The run of a week, if it has one.
    pub async fn run_of_week(&self, week: &str) -> Result<Option<RunRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT * FROM runs WHERE week = $1").bind(week).fetch_optional(pool).await
        })
    }

    /// A run by id.
    pub async fn run(&self, id: i64) -> Result<Option<RunRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as("SELECT * FROM runs WHERE id = $1").bind(id).fetch_optional(pool).await)
    }

    /// Runs that still have work and may make calls: not completed, not aborted.
    pub async fn active_runs(&self) -> Result<Vec<RunRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT * FROM runs WHERE phase <> 'completed' AND control <> 'aborted' ORDER BY id")
                .fetch_all(pool)
                .await
        })
    }

    /// Sets a run's control (pause, resume, halt, abort) with its reason, an event and, for a
    /// person's action, an audit entry, in one transaction; `from` lists the controls it may
    /// change from, and `alert` the alert it raises in the same transaction. Returns false
    /// (changing nothing) when the run was in none of them. A completed run is controlled too:
    /// its declined invoices and retried payouts are still tried, and stop with it.
    pub async fn set_control(
        &self,
        run_id: i64,
        from: &[Control],
        to: Control,
        reason: &str,
        actor: Option<&Actor>,
        alert: Option<AlertKind>,
    ) -> Result<bool, sqlx::Error> {
        let at = now();
        let allowed = from.iter().map(|c| format!("'{}'", c.as_str())).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE runs SET control = $1, reason = $2, updated_at = $3 WHERE id = $4 AND control IN ({allowed}) \
             RETURNING week"
        );
        let by = actor.map(|a| format!(" by {}", a.name)).unwrap_or_default();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let week: Option<String> =
                sqlx::query_scalar(&sql).bind(to.as_str()).bind(reason).bind(at).bind(run_id).fetch_optional(&mut *tx).await?;
            let changed = u64::from(week.is_some());
            if let (Some(week), Some(kind)) = (&week, alert) {
                let alert = NewAlert::for_run(kind, run_id, week, format!("{to}{by}: {reason}"));
                tx.raise_alert(&alert).await?;
            }
            // Alerts follow their cause: a run going on again, or stopped for good, resolves its
            // pause and halt alerts (an abort raises its own).
            if changed == 1 && matches!(to, Control::Running | Control::Aborted) {
                let by = actor.map(|a| a.name.clone()).unwrap_or_else(|| "system".to_owned());
                sqlx::query(
                    "UPDATE alerts SET state = 'resolved', resolved_by = $1, resolved_at = $2, \
                     acknowledged_by = COALESCE(acknowledged_by, $1), acknowledged_at = COALESCE(acknowledged_at, $2) \
                     WHERE run_id = $3 AND kind IN ('run_paused', 'run_halted') AND state <> 'resolved'",
                )
                .bind(&by)
                .bind(at)
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
            }
            if changed == 1 {
                sqlx::query("INSERT INTO run_events (run_id, at, kind, message) VALUES ($1, $2, $3, $4)")
                    .bind(run_id)
                    .bind(at)
                    .bind(to.as_str())
                    .bind(format!("{to}{by}: {reason}"))
                    .execute(&mut *tx)
                    .await?;
                if let Some(actor) = actor {
                    let action = match to {
                        Control::Paused => "run.pause",
                        Control::Running => "run.resume",
                        Control::Aborted => "run.abort",
                        Control::Halted => "run.control",
                    };
                    let mut entry = NewAuditEntry::new(actor, action, "run", run_id);
                    entry.after = Some(serde_json::json!({ "control": to }));
                    entry.detail = Some(reason.to_owned());
                    tx.audit(&entry).await?;
                }
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    /// Moves a run from phase `from` to `to` (once, whoever asks first).
    pub async fn advance_phase(&self, run_id: i64, from: Phase, to: Phase) -> Result<bool, sqlx::Error> {
        let at = now();
        let completed = (to == Phase::Completed).then_some(at);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let changed = sqlx::query(
                "UPDATE runs SET phase = $1, updated_at = $2, completed_at = COALESCE($3, completed_at) \
                 WHERE id = $4 AND phase = $5 AND control = 'running'",
            )
            .bind(to.as_str())
            .bind(at)
            .bind(completed)
            .bind(run_id)
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                sqlx::query("INSERT INTO run_events (run_id, at, kind, message) VALUES ($1, $2, 'phase', $3)")
                    .bind(run_id)
                    .bind(at)
                    .bind(format!("{from} → {to}"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(changed == 1)
        })
    }

    /// Claims up to `limit` items of `work` that are due, in order, for `lease` (only the first
    /// `max_seq` for the canary). Rows another worker holds under a live lease are skipped.
    pub async fn claim(
        &self,
        work: Work,
        run_id: i64,
        worker: &str,
        max_seq: i64,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        let at = now();
        let due = match work {
            // Declined invoices come back when their retry is due.
            Work::Charge => "state IN ('pending', 'declined')",
            Work::Transfer => "state = 'pending'",
        };
        let lock = match self {
            Db::Sqlite(_) => "",
            Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let (table, id, user) = (work.table(), work.id(), work.user());
        let sql = format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2 WHERE {id} IN (\
             SELECT {id} FROM {table} WHERE run_id = $3 AND seq <= $4 AND {due} AND next_at <= $5 \
             AND held IS NULL AND (lease_until IS NULL OR lease_until < $5) ORDER BY seq LIMIT $6{lock}) \
             RETURNING {id}, {user}, amount_minor, attempts"
        );
        let rows: Vec<(i64, String, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(worker)
                .bind(at + lease)
                .bind(run_id)
                .bind(max_seq)
                .bind(at)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, user_id, amount_minor, attempts)| Claimed { id, user_id, amount_minor, attempts })
            .collect())
    }

    /// Gives a claimed item back untouched (the run was paused under the worker).
    pub async fn release(&self, work: Work, id: i64, worker: &str) -> Result<(), sqlx::Error> {
        let sql = format!(
            "UPDATE {} SET lease_owner = NULL, lease_until = NULL WHERE {} = $1 AND lease_owner = $2",
            work.table(),
            work.id()
        );
        with_pool!(self, pool => sqlx::query(&sql).bind(id).bind(worker).execute(pool).await.map(|_| ()))
    }

    /// The attempt to make now for item `id`, written and committed before the provider is
    /// called: the unfinished one if there is one (same key), else the next number.
    pub async fn begin_attempt(
        &self,
        work: Work,
        week: &str,
        id: i64,
        amount_minor: i64,
        worker: &str,
    ) -> Result<Attempt, sqlx::Error> {
        let item = Claimed { id, user_id: String::new(), amount_minor, attempts: 0 };
        let mut begun = self.begin_attempts(work, week, std::slice::from_ref(&item), worker, None).await?;
        Ok(begun.pop().flatten().expect("an attempt is begun when no lease is renewed"))
    }

    /// [`Db::begin_attempt`] for a batch of claimed items in one transaction (one commit for
    /// the batch). With `renew`, each item's lease is renewed first and an item that is no
    /// longer this worker's, or no longer due, gets `None` and no attempt: another worker may
    /// have taken it over while this one was busy.
    pub async fn begin_attempts(
        &self,
        work: Work,
        week: &str,
        items: &[Claimed],
        worker: &str,
        renew: Option<Duration>,
    ) -> Result<Vec<Option<Attempt>>, sqlx::Error> {
        let (attempts, table, item_id) = (work.attempts(), work.table(), work.id());
        let due = match work {
            Work::Charge => "state IN ('pending', 'declined')",
            Work::Transfer => "state = 'pending'",
        };
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let mut held: std::collections::HashSet<i64> = ids.iter().copied().collect();
            if let Some(lease) = renew {
                let mut query = sqlx::QueryBuilder::new(format!("UPDATE {table} SET lease_until = "));
                query.push_bind(at + lease).push(" WHERE lease_owner = ").push_bind(worker);
                query.push(format!(" AND {due} AND {item_id} IN ("));
                super::push_in_list(&mut query, ids.iter().copied());
                query.push(format!(" RETURNING {item_id}"));
                let renewed: Vec<i64> = query.build_query_scalar().fetch_all(&mut *tx).await?;
                held = renewed.into_iter().collect();
            }
            // The open attempt of each item (the latest), and the last number of the others.
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {item_id}, attempt, idempotency_key, started_at FROM {attempts} \
                 WHERE outcome IN ('started', 'unknown') AND {item_id} IN ("
            ));
            super::push_in_list(&mut query, ids.iter().copied());
            query.push(" ORDER BY attempt");
            let open: HashMap<i64, (i64, String, DateTime<Utc>)> = query
                .build_query_as::<(i64, i64, String, DateTime<Utc>)>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, number, key, started_at)| (id, (number, key, started_at)))
                .collect();
            let mut query = sqlx::QueryBuilder::new(format!(
                "SELECT {item_id}, MAX(attempt) FROM {attempts} WHERE {item_id} IN ("
            ));
            super::push_in_list(&mut query, ids.iter().copied());
            query.push(format!(" GROUP BY {item_id}"));
            let last: HashMap<i64, i64> =
                query.build_query_as::<(i64, i64)>().fetch_all(&mut *tx).await?.into_iter().collect();
            let mut begun = Vec::with_capacity(items.len());
            let mut new = Vec::new();
            for item in items {
                if !held.contains(&item.id) {
                    begun.push(None);
                } else if let Some((number, key, started_at)) = open.get(&item.id) {
                    let started_at = *started_at;
                    begun.push(Some(Attempt { number: *number, key: key.clone(), resumed: true, started_at }));
                } else {
                    let number = last.get(&item.id).copied().unwrap_or(0) + 1;
                    let key = work.key(week, item.id, number);
                    new.push((item, number, key.clone()));
                    begun.push(Some(Attempt { number, key, resumed: false, started_at: at }));
                }
            }
            for chunk in new.chunks(500) {
                let mut query = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {attempts} ({item_id}, attempt, idempotency_key, amount_minor, outcome, worker, started_at) "
                ));
                query.push_values(chunk, |mut row, (item, number, key)| {
                    row.push_bind(item.id)
                        .push_bind(*number)
                        .push_bind(key.as_str())
                        .push_bind(item.amount_minor)
                        .push_bind("started")
                        .push_bind(worker)
                        .push_bind(at);
                });
                query.push(" ON CONFLICT (idempotency_key) DO NOTHING");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(begun)
        })
    }

    /// A payout still waiting for its transfer's answer: (driver, week, amount, currency, the
    /// open attempt's key), when its latest attempt never got one.
    pub async fn payout_awaiting_answer(
        &self,
        payout_id: i64,
    ) -> Result<Option<(String, String, i64, String, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT p.driver_id, p.week, p.total_minor, p.currency, a.idempotency_key FROM payouts p \
                 JOIN transfers t ON t.payout_id = p.id AND t.state = 'pending' \
                 JOIN transfer_attempts a ON a.payout_id = p.id AND a.outcome IN ('started', 'unknown') \
                 WHERE p.id = $1 ORDER BY a.attempt DESC LIMIT 1",
            )
            .bind(payout_id)
            .fetch_optional(pool)
            .await
        })
    }

    /// Records a successful attempt, the item's new state and its ledger transaction in one
    /// transaction. Returns false when the database refused a second success for the item (the
    /// provider moved money twice under different keys: the guard halts the run).
    pub async fn record_success(
        &self,
        work: Work,
        id: i64,
        key: &str,
        provider_id: &str,
        ledger: Option<&Transaction>,
    ) -> Result<bool, sqlx::Error> {
        let outcome = Outcome::Succeeded {
            id,
            key: key.to_owned(),
            provider_id: provider_id.to_owned(),
            ledger: ledger.cloned(),
        };
        Ok(matches!(self.record_outcomes(work, &[outcome]).await?[..], [Recorded::Succeeded(true)]))
    }

    /// Records a final refusal of an attempt (a decline, or a request the provider refused):
    /// the item is tried again at `retry_at`, or given up when it has had `max_attempts`.
    /// Returns the item's new state.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_refusal(
        &self,
        work: Work,
        id: i64,
        key: &str,
        outcome: &str,
        detail: &str,
        retry_at: DateTime<Utc>,
        max_attempts: i64,
    ) -> Result<String, sqlx::Error> {
        let outcome = Outcome::Refused {
            id,
            key: key.to_owned(),
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
            retry_at,
            max_attempts,
        };
        match self.record_outcomes(work, &[outcome]).await?.pop() {
            Some(Recorded::Refused(state)) => Ok(state),
            _ => unreachable!("a refusal records as a refusal"),
        }
    }

    /// Records an attempt whose outcome is unknown (timeout, 5xx, 429): it stays open, so the
    /// next try asks again with the same key, at `retry_at`.
    pub async fn record_unknown(
        &self,
        work: Work,
        id: i64,
        key: &str,
        detail: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let outcome = Outcome::Unknown { id, key: key.to_owned(), detail: detail.to_owned(), retry_at };
        self.record_outcomes(work, &[outcome]).await.map(|_| ())
    }

    /// Records the outcomes of a batch of provider calls in one transaction (one commit for the
    /// batch), each as [`Db::record_success`], [`Db::record_refusal`] or [`Db::record_unknown`]
    /// records it alone. When the database refuses a second success for an item, the batch is
    /// recorded again one outcome at a time, so that only that success is refused.
    pub async fn record_outcomes(
        &self,
        work: Work,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, sqlx::Error> {
        match self.try_record_outcomes(work, outcomes).await {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let mut recorded = Vec::with_capacity(outcomes.len());
                for outcome in outcomes {
                    recorded.push(
                        match self.try_record_outcomes(work, std::slice::from_ref(outcome)).await {
                            Ok(mut one) => one.pop().expect("one outcome, one record"),
                            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                                Recorded::Succeeded(false)
                            }
                            Err(e) => return Err(e),
                        },
                    );
                }
                Ok(recorded)
            }
            other => other,
        }
    }

    async fn try_record_outcomes(
        &self,
        work: Work,
        outcomes: &[Outcome],
    ) -> Result<Vec<Recorded>, sqlx::Error> {
        let at = now();
        let (attempts, table, item) = (work.attempts(), work.table(), work.id());
        let (done, retry, give_up) = match work {
            Work::Charge => ("charged", "declined", "uncollectible"),
            Work::Transfer => ("paid", "pending", "failed"),
        };
        let succeeded_sql = format!(
            "UPDATE {attempts} SET outcome = 'succeeded', provider_id = $1, finished_at = $2 WHERE idempotency_key = $3"
        );
        // A payout that waited for funds or an account waits no more once paid; nothing held
        // for a person stays held once settled.
        let clear_wait = match work {
            Work::Charge => ", held = NULL, held_detail = NULL, release_proposed_by = NULL",
            Work::Transfer => {
                ", waiting_for = NULL, waiting_detail = NULL, held = NULL, held_detail = NULL, release_proposed_by = NULL"
            }
        };
        let settled_sql = format!(
            "UPDATE {table} SET state = '{done}', lease_owner = NULL, lease_until = NULL{clear_wait} WHERE {item} = $1"
        );
        let waiting_sql = format!(
            "UPDATE {table} SET waiting_for = $1, waiting_detail = $2, next_at = $3, lease_owner = NULL, \
             lease_until = NULL WHERE {item} = $4 AND state = 'pending'"
        );
        // Outcomes only move forward: a refusal or an unknown closes or keeps open only an
        // attempt still open (`started` or `unknown`); a success is final, and a late answer
        // (a timeout written after the success was) leaves it as it is.
        let refused_sql = format!(
            "UPDATE {attempts} SET outcome = $1, detail = $2, finished_at = $3 WHERE idempotency_key = $4 \
             AND outcome IN ('started', 'unknown')"
        );
        // No row: the item was settled meanwhile (by the same key's success); that stays.
        let retry_sql = format!(
            "UPDATE {table} SET attempts = attempts + 1, \
             state = CASE WHEN attempts + 1 >= $1 THEN '{give_up}' ELSE '{retry}' END, \
             next_at = $2, lease_owner = NULL, lease_until = NULL WHERE {item} = $3 \
             AND state IN ('pending', '{retry}') RETURNING state"
        );
        let unknown_sql =
            format!("UPDATE {attempts} SET outcome = 'unknown', detail = $1 WHERE idempotency_key = $2 AND outcome IN ('started', 'unknown')");
        let later_sql = format!(
            "UPDATE {table} SET next_at = $1, lease_owner = NULL, lease_until = NULL WHERE {item} = $2 \
             AND state IN ('pending', 'declined')"
        );
        let held_sql = format!(
            "UPDATE {table} SET held = 'lookup', held_detail = $1, release_proposed_by = NULL, lease_owner = NULL, \
             lease_until = NULL WHERE {item} = $2 AND state IN ('pending', 'declined')"
        );
        // Successes, the common case, take a few statements for the whole batch.
        let successes: Vec<(i64, &str, &str, Option<&Transaction>)> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Succeeded { id, key, provider_id, ledger } => {
                    Some((*id, key.as_str(), provider_id.as_str(), ledger.as_ref()))
                }
                _ => None,
            })
            .collect();
        let together = successes.len() > 1;
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            if together {
                for chunk in successes.chunks(500) {
                    let mut query = sqlx::QueryBuilder::new(format!(
                        "UPDATE {attempts} SET outcome = 'succeeded', provider_id = v.column2, finished_at = "
                    ));
                    query.push_bind(at).push(" FROM (");
                    query.push_values(chunk, |mut row, (_, key, provider_id, _)| {
                        row.push_bind(*key).push_bind(*provider_id);
                    });
                    query.push(format!(") AS v WHERE {attempts}.idempotency_key = v.column1"));
                    query.build().execute(&mut *tx).await?;
                    let mut query = sqlx::QueryBuilder::new(format!(
                        "UPDATE {table} SET state = '{done}', lease_owner = NULL, lease_until = NULL{clear_wait} WHERE {item} IN ("
                    ));
                    super::push_in_list(&mut query, chunk.iter().map(|s| s.0));
                    query.build().execute(&mut *tx).await?;
                    let ledgers: Vec<&Transaction> = chunk.iter().filter_map(|s| s.3).collect();
                    tx.ledger_many(&ledgers, at).await?;
                }
            }
            let mut recorded = Vec::with_capacity(outcomes.len());
            // What the passengers are told, written with what they are told of.
            let mut notices = Vec::new();
            for outcome in outcomes {
                recorded.push(match outcome {
                    Outcome::Succeeded { .. } if together => Recorded::Succeeded(true),
                    Outcome::Succeeded { id, key, provider_id, ledger } => {
                        sqlx::query(&succeeded_sql).bind(provider_id).bind(at).bind(key).execute(&mut *tx).await?;
                        sqlx::query(&settled_sql).bind(id).execute(&mut *tx).await?;
                        if let Some(ledger) = ledger {
                            tx.ledger_once(ledger, at).await?;
                        }
                        Recorded::Succeeded(true)
                    }
                    Outcome::Refused { id, key, outcome, detail, retry_at, max_attempts } => {
                        sqlx::query(&refused_sql).bind(outcome).bind(detail).bind(at).bind(key).execute(&mut *tx).await?;
                        let state: Option<String> = sqlx::query_scalar(&retry_sql)
                            .bind(max_attempts)
                            .bind(retry_at)
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if work == Work::Charge && outcome == "declined" && state.is_some() {
                            let dedupe_key = format!("declined:{key}");
                            notices.push(Notice { kind: "declined", subject_id: *id, dedupe_key });
                        }
                        Recorded::Refused(state.unwrap_or_else(|| "settled".to_owned()))
                    }
                    Outcome::Unknown { id, key, detail, retry_at } => {
                        sqlx::query(&unknown_sql).bind(detail).bind(key).execute(&mut *tx).await?;
                        sqlx::query(&later_sql).bind(retry_at).bind(id).execute(&mut *tx).await?;
                        Recorded::Unknown
                    }
                    Outcome::Waiting { id, key, waiting_for, detail, retry_at } => {
                        sqlx::query(&refused_sql).bind("failed").bind(detail).bind(at).bind(key).execute(&mut *tx).await?;
                        sqlx::query(&waiting_sql).bind(*waiting_for).bind(detail).bind(retry_at).bind(id).execute(&mut *tx).await?;
                        Recorded::Waiting
                    }
                    Outcome::NotMade { id, key, detail } => {
                        sqlx::query(&refused_sql).bind("failed").bind(detail).bind(at).bind(key).execute(&mut *tx).await?;
                        sqlx::query(&later_sql).bind(at).bind(id).execute(&mut *tx).await?;
                        Recorded::NotMade
                    }
                    Outcome::Held { id, key, detail } => {
                        sqlx::query(&unknown_sql).bind(detail).bind(key).execute(&mut *tx).await?;
                        sqlx::query(&held_sql).bind(detail).bind(id).execute(&mut *tx).await?;
                        Recorded::Held
                    }
                });
            }
            if work == Work::Charge {
                let receipts = successes.iter().map(|s| Notice { kind: "receipt", subject_id: s.0, dedupe_key: format!("receipt:{}", s.0) });
                notices.extend(receipts);
                tx.notices(&notices, NoticeSubjects::Invoices).await?;
            }
            tx.commit().await?;
            Ok(recorded)
        })
    }

    /// The counts the phases and guards decide on, from the run's running totals (kept by the
    /// database itself, migration 0013): a few rows whatever the run's size.
    pub async fn run_counts(&self, run_id: i64, canary_size: i64) -> Result<RunCounts, sqlx::Error> {
        with_pool!(self, pool => {
            let tallied: TallyRow = sqlx::query_as(TALLIED).bind(run_id).fetch_one(pool).await?;
            let canary_open: i64 = sqlx::query_scalar(CANARY_OPEN).bind(run_id).bind(canary_size).fetch_one(pool).await?;
            Ok(RunCounts::from_tally(tallied, canary_open))
        })
    }

    /// The passenger charged the most in the run so far, and how much, from the running totals.
    pub async fn top_charged_user(&self, run_id: i64) -> Result<Option<(String, i64)>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as(TOP_TALLIED).bind(run_id).fetch_optional(pool).await)
    }

    /// Checks the run's running totals against a count of its rows, both read in one snapshot.
    /// When they disagree, the totals are replaced by the count (in the same transaction) and
    /// the answer says what differed; `None` when they agree.
    pub async fn check_run_tallies(
        &self,
        run_id: i64,
        canary_size: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let snapshot = match self {
            Db::Sqlite(_) => "BEGIN",
            Db::Postgres(_) => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(snapshot).await?;
            let tallied: TallyRow = sqlx::query_as(TALLIED).bind(run_id).fetch_one(&mut *tx).await?;
            let canary_open: i64 =
                sqlx::query_scalar(CANARY_OPEN).bind(run_id).bind(canary_size).fetch_one(&mut *tx).await?;
            let counted: TallyRow = sqlx::query_as(COUNTED).bind(run_id).fetch_one(&mut *tx).await?;
            let top_tallied: Option<(String, i64)> = sqlx::query_as(TOP_TALLIED).bind(run_id).fetch_optional(&mut *tx).await?;
            let top_counted: Option<(String, i64)> = sqlx::query_as(TOP_COUNTED).bind(run_id).fetch_optional(&mut *tx).await?;
            let amount = |top: &Option<(String, i64)>| top.as_ref().map_or(0, |t| t.1);
            if tallied == counted && amount(&top_tallied) == amount(&top_counted) {
                return Ok(None);
            }
            let problem = format!(
                "the run's running totals {:?} (top passenger {:?}) disagree with a count of its rows {:?} (top passenger {:?})",
                RunCounts::from_tally(tallied, canary_open),
                top_tallied,
                RunCounts::from_tally(counted, canary_open),
                top_counted
            );
            sqlx::query("DELETE FROM run_tallies WHERE run_id = $1").bind(run_id).execute(&mut *tx).await?;
            let (user, minor) = top_counted.map_or((None, 0), |(user, minor)| (Some(user), minor));
            let c = counted;
            sqlx::query(
                "INSERT INTO run_tallies (run_id, shard, charges_pending, charges_charged, charges_declined, \
                 charges_uncollectible, charged_minor, transfers_pending, transfers_paid, transfers_failed, paid_minor, \
                 charge_attempts, attempts_unknown, attempts_failed, top_user, top_user_minor) \
                 VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(run_id).bind(c.0).bind(c.1).bind(c.2).bind(c.3).bind(c.4).bind(c.5).bind(c.6).bind(c.7)
            .bind(c.8).bind(c.9).bind(c.10).bind(c.11).bind(user).bind(minor)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(problem))
        })
    }

    /// What each of `users` was charged in a run so far (successful attempts); a passenger
    /// charged nothing yet is missing from the answer.
    pub async fn users_charged_in_run(
        &self,
        run_id: i64,
        users: &[&str],
    ) -> Result<HashMap<String, i64>, sqlx::Error> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, i64)> = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT c.user_id, CAST(COALESCE(SUM(a.amount_minor), 0) AS BIGINT) FROM charge_attempts a \
                 JOIN charges c ON c.invoice_id = a.invoice_id WHERE a.outcome = 'succeeded' AND c.run_id = ",
            );
            query.push_bind(run_id).push(" AND c.user_id IN (");
            super::push_in_list(&mut query, users.iter().copied());
            query.push(" GROUP BY c.user_id");
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().collect())
    }

    /// The provider's customer and card for a user, if made.
    pub async fn provider_customer(&self, user_id: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        Ok(self.provider_customers(&[user_id]).await?.remove(user_id))
    }

    /// The provider's customer and card of each of `users` that has both.
    pub async fn provider_customers(
        &self,
        users: &[&str],
    ) -> Result<HashMap<String, (String, String)>, sqlx::Error> {
        let rows = self.provider_objects(users).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(user, customer, card, _)| Some((user, customer.zip(card)?)))
            .collect())
    }

    /// The provider's connected account for a driver, if made.
    pub async fn provider_account(&self, user_id: &str) -> Result<Option<String>, sqlx::Error> {
        Ok(self.provider_accounts(&[user_id]).await?.remove(user_id))
    }

    /// The provider's connected account of each of `users` that has one.
    pub async fn provider_accounts(&self, users: &[&str]) -> Result<HashMap<String, String>, sqlx::Error> {
        let rows = self.provider_objects(users).await?;
        Ok(rows.into_iter().filter_map(|(user, _, _, account)| Some((user, account?))).collect())
    }

    async fn provider_objects(&self, users: &[&str]) -> Result<Vec<ProviderObjects>, sqlx::Error> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT user_id, customer_id, payment_method, account_id FROM provider_accounts WHERE user_id IN (",
            );
            super::push_in_list(&mut query, users.iter().copied());
            query.build_query_as().fetch_all(pool).await
        })
    }

    /// Remembers a user's provider customer and card (the first writer wins; made with the same
    /// idempotency keys, they are the same objects anyway).
    pub async fn save_provider_customer(
        &self,
        user_id: &str,
        customer: &str,
        card: &str,
    ) -> Result<(), sqlx::Error> {
        self.save_provider_customers(&[(user_id, customer, card)]).await
    }

    /// [`Db::save_provider_customer`] for many users (user, customer, card) in one statement.
    pub async fn save_provider_customers(&self, saved: &[(&str, &str, &str)]) -> Result<(), sqlx::Error> {
        if saved.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO provider_accounts (user_id, customer_id, payment_method) ");
            insert.push_values(saved, |mut row, (user, customer, card)| {
                row.push_bind(*user).push_bind(*customer).push_bind(*card);
            });
            insert.push(
                " ON CONFLICT (user_id) DO UPDATE SET customer_id = COALESCE(provider_accounts.customer_id, excluded.customer_id), \
                 payment_method = COALESCE(provider_accounts.payment_method, excluded.payment_method)",
            );
            insert.build().execute(pool).await.map(|_| ())
        })
    }

    /// Remembers a driver's connected account.
    pub async fn save_provider_account(&self, user_id: &str, account: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO provider_accounts (user_id, account_id) VALUES ($1, $2) \
                 ON CONFLICT (user_id) DO UPDATE SET account_id = COALESCE(provider_accounts.account_id, excluded.account_id)",
            )
            .bind(user_id)
            .bind(account)
            .execute(pool)
            .await
            .map(|_| ())
        })
    }

    /// Records a ledger transaction once (by its kind and reference).
    pub async fn record_ledger(&self, ledger: &Transaction) -> Result<(), sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            tx.ledger_once(ledger, at).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// A user's name and email, for the provider's customer record.
    pub async fn user_contact(&self, user_id: &str) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
        Ok(self.user_contacts(&[user_id]).await?.remove(user_id))
    }

    /// The name and email of each of `users` that exists.
    pub async fn user_contacts(
        &self,
        users: &[&str],
    ) -> Result<HashMap<String, (String, Option<String>)>, sqlx::Error> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String, Option<String>)> = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT id, name, email FROM users WHERE id IN (");
            super::push_in_list(&mut query, users.iter().copied());
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(id, name, email)| (id, (name, email))).collect())
    }

    /// The latest `limit` events of a run, newest first.
    pub async fn run_events(
        &self,
        run_id: i64,
        limit: i64,
    ) -> Result<Vec<(DateTime<Utc>, String, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as("SELECT at, kind, message FROM run_events WHERE run_id = $1 ORDER BY id DESC LIMIT $2")
                .bind(run_id)
                .bind(limit)
                .fetch_all(pool)
                .await
        })
    }

    /// Declined invoices of a run tried again whose answer has not come back (an attempt in
    /// flight, or with an unknown outcome): money may have moved for them. Through
    /// `charges_work`, the run's declined rows only.
    pub async fn unanswered_retries(&self, run_id: i64) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM charges c JOIN charge_attempts a ON a.invoice_id = c.invoice_id \
                 WHERE c.run_id = $1 AND c.state = 'declined' AND a.outcome IN ('started', 'unknown')",
            )
            .bind(run_id)
            .fetch_one(pool)
            .await
        })
    }

    /// Successful charges and transfers of a run per five-second slot (Unix time / 5), from slot
    /// `from` on, as the database counted them when they were recorded (migration 0013).
    pub async fn run_throughput(&self, run_id: i64, from: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT slot, CAST(SUM(successes) AS BIGINT) FROM run_throughput \
                 WHERE run_id = $1 AND slot >= $2 GROUP BY slot",
            )
            .bind(run_id)
            .bind(from)
            .fetch_all(pool)
            .await
        })
    }

    /// The latest runs, newest first.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<RunRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as("SELECT * FROM runs ORDER BY id DESC LIMIT $1").bind(limit).fetch_all(pool).await)
    }

    /// Completed runs (still under control `running`) with a declined invoice whose retry is due,
    /// or a payout due again (one finance retried).
    pub async fn runs_with_due_retries(&self) -> Result<Vec<RunRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT * FROM runs r WHERE r.phase = 'completed' AND r.control = 'running' AND (EXISTS \
                 (SELECT 1 FROM charges c WHERE c.run_id = r.id AND c.state = 'declined' AND c.next_at <= $1) OR EXISTS \
                 (SELECT 1 FROM transfers t WHERE t.run_id = r.id AND t.state = 'pending' AND t.next_at <= $1)) ORDER BY r.id",
            )
            .bind(now())
            .fetch_all(pool)
            .await
        })
    }

    /// Charged invoices of a run to check against the provider: invoice id, amount, the
    /// provider's payment intent and the passenger's provider customer. The canary's (`seq` up
    /// to `max_seq`), or the latest `limit` charged.
    pub async fn charges_to_verify(
        &self,
        run_id: i64,
        max_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64, String, String)>, sqlx::Error> {
        // The canary's few invoices: from the run's charges by seq. The latest few: from the
        // newest successes through `charge_attempts_succeeded_at` (the CROSS JOIN keeps SQLite
        // from starting at the run's charges, all of them and then a sort: 2 s at a million;
        // to PostgreSQL's planner it is an inner join).
        let from = if max_seq < i64::MAX {
            "charges c JOIN charge_attempts a ON a.invoice_id = c.invoice_id"
        } else {
            "charge_attempts a CROSS JOIN charges c"
        };
        let sql = format!(
            "SELECT c.invoice_id, c.amount_minor, a.provider_id, p.customer_id FROM {from} \
             JOIN provider_accounts p ON p.user_id = c.user_id \
             WHERE c.invoice_id = a.invoice_id AND a.outcome = 'succeeded' AND c.run_id = $1 \
             AND c.seq <= $2 AND c.state = 'charged' AND p.customer_id IS NOT NULL \
             ORDER BY a.finished_at DESC LIMIT $3"
        );
        with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(run_id).bind(max_seq).bind(limit).fetch_all(pool).await
        })
    }

    /// How the run's ledger explains payments of `invoices`: each invoice of the run with its
    /// amount, the payment intent of its recorded success, and whether an attempt is open.
    pub async fn charges_explaining(
        &self,
        run_id: i64,
        invoices: &[i64],
    ) -> Result<HashMap<i64, crate::run::Explained>, sqlx::Error> {
        if invoices.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(i64, i64, Option<String>, bool)> = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT c.invoice_id, c.amount_minor, \
                 (SELECT a.provider_id FROM charge_attempts a WHERE a.invoice_id = c.invoice_id AND a.outcome = 'succeeded'), \
                 EXISTS (SELECT 1 FROM charge_attempts a WHERE a.invoice_id = c.invoice_id AND a.outcome IN ('started', 'unknown')) \
                 FROM charges c WHERE c.run_id = ",
            );
            query.push_bind(run_id).push(" AND c.invoice_id IN (");
            super::push_in_list(&mut query, invoices.iter().copied());
            query.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, amount_minor, recorded, open)| {
                (id, crate::run::Explained { amount_minor, recorded, open })
            })
            .collect())
    }

    /// Runs halted by a guard.
    pub async fn halted_runs(&self) -> Result<Vec<RunRow>, sqlx::Error> {
        with_pool!(self, pool => sqlx::query_as("SELECT * FROM runs WHERE control = 'halted' ORDER BY id").fetch_all(pool).await)
    }

    /// Appends an event to a run's log.
    pub async fn run_event(&self, run_id: i64, kind: &str, message: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("INSERT INTO run_events (run_id, at, kind, message) VALUES ($1, $2, $3, $4)")
                .bind(run_id)
                .bind(now())
                .bind(kind)
                .bind(message)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }

    /// Ledger transactions whose postings do not sum to zero (there must be none), and the
    /// number of transactions.
    pub async fn ledger_check(&self) -> Result<(i64, Vec<i64>), sqlx::Error> {
        let count: i64 = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transactions").fetch_one(pool).await?
        });
        let bad: Vec<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT transaction_id FROM ledger_postings GROUP BY transaction_id HAVING SUM(amount_minor) <> 0",
            )
            .fetch_all(pool)
            .await?
        });
        Ok((count, bad))
    }

    /// The ledger transactions of `week` whose postings do not sum to zero (there must be none).
    /// Only the week's: the check before a run goes on reads what the run wrote, not every week
    /// before it (a whole-ledger check grows by a week's movements every week).
    pub async fn unbalanced_transactions(&self, week: &str) -> Result<Vec<i64>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT p.transaction_id FROM ledger_postings p \
                 JOIN ledger_transactions t ON t.id = p.transaction_id \
                 WHERE t.week = $1 GROUP BY p.transaction_id HAVING SUM(p.amount_minor) <> 0 \
                 ORDER BY p.transaction_id",
            )
            .bind(week)
            .fetch_all(pool)
            .await
        })
    }

    /// An account's balance (debits positive).
    pub async fn ledger_balance(&self, account: &Account) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM ledger_postings WHERE account = $1")
                .bind(account.to_string())
                .fetch_one(pool)
                .await
        })
    }
}

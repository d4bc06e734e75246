//! The weekly run: workers that charge each frozen invoice and pay each frozen payout exactly
//! once, a control switch they obey within a fraction of a second, and guards that halt the run
//! by themselves when its numbers look wrong.
//!
//! A process works a run with [`work_run`]: a poller reads the run's phase and control every
//! [`CONTROL_POLL`] and publishes them; worker tasks claim due items under a lease, check the
//! control before every provider call, write each attempt (with its idempotency key) before the
//! call and record its outcome after; a coordinator moves the phases (canary → charging →
//! paying out → completed) and checks the guards. Any number of processes may work one run at
//! once: the database decides who holds what (see `crate::db::runs`).

mod charge;
mod control;
mod coordinator;
pub mod held;
mod lookup;
mod outside;
pub mod payouts;
pub mod provider;
pub mod schedule;
pub mod settings;
mod transfer;
pub mod view;
mod worker;

use charge::charge_batch;
pub use control::apply_control;
use control::{halt, halt_with};
use coordinator::coordinate;
pub use outside::Explained;
use transfer::transfer_batch;
pub use transfer::transfer_ledger;
pub use worker::{retry_due, work_active_runs, work_run, worker_name};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use tokio::sync::watch;

use crate::billing::ledger::{Account, Transaction};
use crate::db::runs::{Attempt, Claimed, Outcome, Recorded, RunRow, Work};
use crate::db::Db;
use crate::psp::pace::Pace;
use crate::psp::stripe::StripeClient;
use crate::psp::{ChargeOutcome, ChargeRequest, Metadata, ProviderError, TransferRequest};
use app::model::alerts::AlertKind;
use app::model::money::{BillingCurrency, Money};
use app::model::run::{Control, Phase};

/// How often every process reads the run's control: a pause reaches all workers within this.
pub const CONTROL_POLL: StdDuration = StdDuration::from_millis(200);

/// How long a process whose workers stopped waits for its coordinator's last step.
const COORDINATOR_GRACE: StdDuration = StdDuration::from_secs(60);

pub use app::model::run::RunSettings;

/// The stored run settings, or the defaults.
pub async fn load_settings(db: &Db) -> Result<RunSettings, sqlx::Error> {
    db.setting_or_default(RunSettings::KEY).await
}

/// The provider account's limit of `settings.rate_per_second` calls, shared with every process
/// on `db`: what every provider call waits on.
pub fn pace(settings: &RunSettings, db: &Db) -> Pace {
    Pace::shared(db, settings.rate_per_second)
}

/// The run's phase and control as last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub phase: Phase,
    pub control: Control,
    pub reason: Option<String>,
}

impl Status {
    fn of(run: &RunRow) -> Status {
        Status { phase: run.phase, control: run.control, reason: run.reason.clone() }
    }

    /// Whether the run is over for workers: completed, or stopped.
    pub fn finished(&self) -> bool {
        self.phase == Phase::Completed || self.stopped()
    }

    /// Whether a person or a guard stopped the run: no provider call may start.
    pub fn stopped(&self) -> bool {
        self.control != Control::Running
    }
}

/// What one process's workers share.
struct Shared {
    db: Db,
    client: StripeClient,
    settings: RunSettings,
    run: RunRow,
    currency: BillingCurrency,
    status: watch::Receiver<Status>,
    /// Where this process publishes the run's status: the poller, and a halt decided here (so
    /// this process's workers stop at once, not at the next poll).
    publish: Arc<watch::Sender<Status>>,
    limiter: Pace,
    /// Rung by a worker that found nothing to claim: the coordinator looks at once.
    idle: tokio::sync::Notify,
}

impl Shared {
    /// What the workers of one process share for `run`: the status they read (published by
    /// the poller or by a halt decided here) and one rate limiter.
    fn new(db: &Db, client: &StripeClient, settings: &RunSettings, run: RunRow) -> anyhow::Result<Shared> {
        let currency = BillingCurrency::from_code(&run.currency)?;
        let (publish, status) = watch::channel(Status::of(&run));
        Ok(Shared {
            db: db.clone(),
            client: client.clone(),
            settings: settings.clone(),
            run,
            currency,
            status,
            publish: Arc::new(publish),
            limiter: pace(settings, db),
            idle: tokio::sync::Notify::new(),
        })
    }
}

fn metadata(pairs: [(&'static str, String); 3]) -> Metadata {
    pairs.into_iter().collect()
}

/// How long a claim lasts: the setting, and never less than a provider call's timeout plus a
/// margin, so a worker's call always ends before anyone else may take its item.
fn lease(s: &RunSettings) -> Duration {
    Duration::seconds(s.lease_seconds.max(s.provider_timeout_seconds as i64 + 1))
}

fn seconds_from_now(seconds: i64) -> chrono::DateTime<Utc> {
    Utc::now() + Duration::seconds(seconds)
}

/// A final refusal of `item`'s attempt `key`, tried again `retry_seconds` later (or given up
/// after `max_attempts`).
fn refusal(
    shared: &Shared,
    item: &Claimed,
    key: String,
    outcome: &str,
    detail: String,
    retry_seconds: i64,
) -> Outcome {
    Outcome::Refused {
        id: item.id,
        key,
        outcome: outcome.to_owned(),
        detail,
        retry_at: seconds_from_now(retry_seconds),
        max_attempts: shared.settings.max_attempts,
    }
}

/// Gives claimed items back untouched.
async fn release_all(shared: &Shared, work: Work, worker: &str, items: &[Claimed]) -> anyhow::Result<()> {
    for item in items {
        shared.db.release(work, item.id, worker).await?;
    }
    Ok(())
}

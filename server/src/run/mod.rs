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

use charge::charge_batch;
use coordinator::coordinate;
pub use outside::Explained;
use transfer::transfer_batch;
pub use transfer::transfer_ledger;

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
    pub phase: String,
    pub control: String,
    pub reason: Option<String>,
}

impl Status {
    fn of(run: &RunRow) -> Status {
        Status { phase: run.phase.clone(), control: run.control.clone(), reason: run.reason.clone() }
    }

    /// Whether the run is over for workers: completed, or stopped.
    pub fn finished(&self) -> bool {
        self.phase == "completed" || self.stopped()
    }

    /// Whether a person or a guard stopped the run: no provider call may start.
    pub fn stopped(&self) -> bool {
        self.control != "running"
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

/// A name for this process's workers in attempts and leases: host, process id, task.
pub fn worker_name(task: usize) -> String {
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_default();
    format!("{host}:{}:{task}", std::process::id())
}

/// Works `run` with `settings.workers` workers until it completes or is paused, halted or
/// aborted; returns the run as it then is.
pub async fn work_run(
    db: &Db,
    client: &StripeClient,
    settings: &RunSettings,
    run: RunRow,
) -> anyhow::Result<RunRow> {
    let run_id = run.id;
    let shared = Arc::new(Shared::new(db, client, settings, run)?);
    let publish = shared.publish.clone();

    let poller = {
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                match db.run(run_id).await {
                    Ok(Some(row)) => {
                        let mut now = Status::of(&row);
                        let done = now.finished();
                        publish.send_if_modified(|old| {
                            // A halt published by this process is final for it: a read made
                            // just before the halt was written must not undo it.
                            if old.finished() {
                                return false;
                            }
                            // Nor does a read made just before this process advanced the phase
                            // move it back (phases only go forward).
                            if phase_rank(&now.phase) < phase_rank(&old.phase) {
                                now.phase = old.phase.clone();
                            }
                            let changed = *old != now;
                            *old = now.clone();
                            changed
                        });
                        if done {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => tracing::warn!(error = %e, "reading the run's control failed"),
                }
                tokio::time::sleep(CONTROL_POLL).await;
            }
        })
    };
    let coordinator = {
        let shared = shared.clone();
        tokio::spawn(async move { coordinate(shared).await })
    };
    let workers: Vec<_> = (0..settings.workers.max(1))
        .map(|task| {
            let shared = shared.clone();
            tokio::spawn(async move { work(shared, worker_name(task)).await })
        })
        .collect();
    for worker in workers {
        if let Err(e) = worker.await? {
            tracing::error!(error = %e, "a run worker failed");
        }
    }
    // The coordinator stops by itself once the run is over for workers, after finishing the
    // step it is in. The step that completes a run also reconciles it (a minute or more at a
    // million passengers): waited for to its end. Otherwise within reason (workers that failed
    // leave a run that is not over, and nobody to wait for).
    let mut coordinator = coordinator;
    let completed = shared.status.borrow().phase == "completed";
    let grace = if completed { StdDuration::MAX } else { COORDINATOR_GRACE };
    match tokio::time::timeout(grace, &mut coordinator).await {
        Ok(Ok(Err(e))) => tracing::error!(error = %e, "the run's coordinator failed"),
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(
                run = run_id,
                "the run's coordinator was still in a step after {COORDINATOR_GRACE:?}; stopped"
            );
            coordinator.abort();
        }
    }
    poller.abort();
    db.run(run_id).await?.ok_or_else(|| anyhow::anyhow!("run {run_id} vanished"))
}

/// Tries again the declined invoices of a run whose retry is due, after its charging phase (a
/// completed run keeps its declined invoices until they are charged or uncollectible), and the
/// payouts due again (one finance retried). Stops when none is due or the run is not running.
/// Returns how many were tried.
pub async fn retry_due(
    db: &Db,
    client: &StripeClient,
    settings: &RunSettings,
    run: RunRow,
) -> anyhow::Result<usize> {
    let run_id = run.id;
    let shared = Shared::new(db, client, settings, run)?;
    let worker = worker_name(1000);
    let mut tried = 0;
    loop {
        match db.run(run_id).await? {
            Some(row) if row.control == "running" => {}
            _ => return Ok(tried),
        }
        let mut work = Work::Charge;
        let mut items = db.claim(work, run_id, &worker, i64::MAX, settings.batch, lease(settings)).await?;
        if items.is_empty() {
            work = Work::Transfer;
            items = db.claim(work, run_id, &worker, i64::MAX, settings.batch, lease(settings)).await?;
        }
        if items.is_empty() {
            return Ok(tried);
        }
        tried += items.len();
        match work {
            Work::Charge => charge_batch(&shared, &worker, items).await?,
            Work::Transfer => transfer_batch(&shared, &worker, items).await?,
        }
    }
}

/// One worker: claim due items of the current phase, process them, until the run is over.
async fn work(shared: Arc<Shared>, worker: String) -> anyhow::Result<()> {
    let mut status = shared.status.clone();
    let lease = lease(&shared.settings);
    loop {
        let now = status.borrow_and_update().clone();
        if now.finished() {
            return Ok(());
        }
        // The canary goes one invoice at a time per worker: a wrong run stops there having
        // made at most one call per worker. After it, batches: every call of a batch is in
        // flight at once.
        let (work, max_seq, batch) = match now.phase.as_str() {
            "canary" => (Work::Charge, shared.run.canary_size, 1),
            "charging" => (Work::Charge, i64::MAX, shared.settings.batch),
            _ => (Work::Transfer, i64::MAX, shared.settings.batch),
        };
        let mut items = shared.db.claim(work, shared.run.id, &worker, max_seq, batch, lease).await?;
        let mut work = work;
        if items.is_empty() && work == Work::Transfer {
            // While drivers are paid, declined invoices whose retry is due are tried again.
            items = shared
                .db
                .claim(Work::Charge, shared.run.id, &worker, i64::MAX, shared.settings.batch, lease)
                .await?;
            work = Work::Charge;
        }
        if items.is_empty() {
            // Nothing due: the phase may be done, so the coordinator looks now; wait for a
            // change of phase or control, or a short while.
            shared.idle.notify_one();
            let _ = tokio::time::timeout(StdDuration::from_millis(100), status.changed()).await;
            continue;
        }
        // One look at the control: a run stopped meanwhile gets the batch back untouched. Each
        // call then waits for its turn under the account's limit, and looks at the control again.
        if status.borrow().finished() {
            release_all(&shared, work, &worker, &items).await?;
            continue;
        }
        match work {
            Work::Charge => charge_batch(&shared, &worker, items).await?,
            Work::Transfer => transfer_batch(&shared, &worker, items).await?,
        }
    }
}

fn metadata(pairs: [(&'static str, String); 3]) -> Metadata {
    pairs.into_iter().collect()
}

/// Halts the run with `reason` (once; later halts keep the first reason).
async fn halt(shared: &Shared, reason: &str) -> anyhow::Result<()> {
    halt_with(shared, AlertKind::RunHalted, reason).await
}

/// Halts the run and raises an alert of `kind` with it.
async fn halt_with(shared: &Shared, kind: AlertKind, reason: &str) -> anyhow::Result<()> {
    if shared.db.set_control(shared.run.id, &["running"], "halted", reason, None, Some(kind)).await? {
        tracing::error!(run = shared.run.id, reason, "run halted by a guard");
    }
    // This process's workers stop before their next call; the others at their next poll.
    shared.publish.send_modify(|status| {
        status.control = "halted".into();
        status.reason = Some(reason.to_owned());
    });
    Ok(())
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

/// The order of the phases, which only go forward.
fn phase_rank(phase: &str) -> u8 {
    match phase {
        "canary" => 0,
        "charging" => 1,
        "paying_out" => 2,
        _ => 3,
    }
}

/// What `billing serve` does beside serving: every second, looks for runs that are running and
/// not completed, and works each one this process is not working yet. Several serve and run
/// processes share the work through the database.
pub async fn work_active_runs(db: Db, client: StripeClient) {
    let working: Arc<std::sync::Mutex<std::collections::HashSet<i64>>> = Default::default();
    loop {
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        let runs = match db.active_runs().await {
            Ok(runs) => runs,
            Err(e) => {
                tracing::debug!(error = %e, "looking for active runs failed");
                continue;
            }
        };
        let retries = match db.runs_with_due_retries().await {
            Ok(runs) => runs,
            Err(e) => {
                tracing::debug!(error = %e, "looking for due retries failed");
                Vec::new()
            }
        };
        for run in runs.into_iter().filter(|r| r.control == "running").chain(retries) {
            if !working.lock().expect("not poisoned").insert(run.id) {
                continue;
            }
            let settings = match load_settings(&db).await {
                Ok(settings) => settings,
                Err(e) => {
                    tracing::error!(error = %e, "reading the run settings failed");
                    working.lock().expect("not poisoned").remove(&run.id);
                    continue;
                }
            };
            let client = client.clone();
            let (db, working) = (db.clone(), working.clone());
            tokio::spawn(async move {
                let id = run.id;
                tracing::info!(run = id, week = %run.week, phase = %run.phase, "working a run");
                if run.phase == "completed" {
                    match retry_due(&db, &client, &settings, run).await {
                        Ok(tried) => tracing::info!(
                            run = id,
                            tried,
                            "tried declined invoices and retried payouts again"
                        ),
                        Err(e) => {
                            tracing::error!(run = id, error = %e, "trying declined invoices or payouts again failed")
                        }
                    }
                } else {
                    match work_run(&db, &client, &settings, run).await {
                        Ok(done) => {
                            tracing::info!(run = id, phase = %done.phase, control = %done.control, "stopped working a run")
                        }
                        Err(e) => tracing::error!(run = id, error = %e, "working a run failed"),
                    }
                }
                working.lock().expect("not poisoned").remove(&id);
            });
        }
    }
}

/// The kill switch's one rule, for the dashboard, the JSON API and the CLI: `pause` a running
/// run, `resume` a paused or halted one, `abort` any that is not over; with a reason (at most
/// 500 characters) and an audit entry. Returns the run after the change.
pub async fn apply_control(
    db: &Db,
    actor: &crate::db::audit::Actor,
    run_id: i64,
    action: &str,
    reason: &str,
) -> Result<RunRow, app::api::AppError> {
    use app::api::AppError;
    let (to, from): (&str, &[&str]) = match action {
        "pause" => ("paused", &["running"]),
        "resume" => ("running", &["paused", "halted"]),
        "abort" => ("aborted", &["running", "paused", "halted"]),
        other => return Err(AppError::invalid("action", format!("{other:?} is not pause, resume or abort"))),
    };
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(AppError::invalid("reason", "at most 500 characters"));
    }
    let reason = if reason.is_empty() { format!("{action} by {}", actor.name) } else { reason.to_owned() };
    let internal = |e: sqlx::Error| crate::http::state::internal_error("controlling a run", e);
    let run =
        db.run(run_id).await.map_err(internal)?.ok_or_else(|| AppError::NotFound(format!("run {run_id}")))?;
    let alert = match to {
        "paused" => Some(AlertKind::RunPaused),
        "aborted" => Some(AlertKind::RunAborted),
        _ => None,
    };
    if !db.set_control(run_id, from, to, &reason, Some(actor), alert).await.map_err(internal)? {
        return Err(AppError::conflict(
            "action",
            format!("run {run_id} is {} ({}); it cannot {action}", run.control, run.phase),
        ));
    }
    db.run(run_id).await.map_err(internal)?.ok_or_else(|| AppError::NotFound(format!("run {run_id}")))
}

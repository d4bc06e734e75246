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

pub mod payouts;
pub mod provider;
pub mod schedule;
pub mod settings;
pub mod view;

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

/// The tables a run fills, whose statistics are refreshed after the canary and at the end.
const RUN_TABLES: &[&str] = &[
    "charges",
    "transfers",
    "charge_attempts",
    "transfer_attempts",
    "ledger_transactions",
    "ledger_postings",
];

/// How long a process whose workers stopped waits for its coordinator's last step.
const COORDINATOR_GRACE: StdDuration = StdDuration::from_secs(60);

/// How often the coordinator looks at the guards and the phase, at most.
const COORDINATE_EVERY: StdDuration = StdDuration::from_millis(250);

/// How soon after a look the coordinator looks again when a worker found nothing to do (the
/// phase may be done).
const SOONEST_LOOK: StdDuration = StdDuration::from_millis(20);

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

/// What setting up a passenger at the provider gave: their customer and card, `None` outside
/// test mode, or why the provider could not make them.
type SetUp = Result<Option<(String, String)>, anyhow::Error>;

/// Makes the provider's customer and card of each of `users` (who have none yet) in test mode:
/// side by side, three calls each within the configured rate, saved in one statement.
async fn make_customers<'u>(shared: &Shared, users: &[&'u str]) -> anyhow::Result<Vec<(&'u str, SetUp)>> {
    if !shared.client.provisions() {
        return Ok(users.iter().map(|u| (*u, Ok(None))).collect());
    }
    let contacts = shared.db.user_contacts(users).await?;
    let made = futures::future::join_all(users.iter().map(|user| {
        let (name, email) = contacts.get(*user).cloned().unwrap_or_else(|| ((*user).to_owned(), None));
        async move {
            let meta: Metadata = [("user_id", (*user).to_owned())].into_iter().collect();
            for _ in 0..3 {
                shared.limiter.until_ready().await;
            }
            let key = format!("customer:{user}");
            let customer = shared.client.create_customer(email.as_deref(), &name, &meta, &key).await?;
            let card = shared.client.attach_provisioned_card(&customer, &format!("card:{user}")).await?;
            Ok::<_, anyhow::Error>((customer, card))
        }
    }))
    .await;
    let saved: Vec<(&str, &str, &str)> = users
        .iter()
        .zip(&made)
        .filter_map(|(user, made)| made.as_ref().ok().map(|(c, p)| (*user, c.as_str(), p.as_str())))
        .collect();
    shared.db.save_provider_customers(&saved).await?;
    Ok(users.iter().copied().zip(made.into_iter().map(|m| m.map(Some))).collect())
}

/// The provider's connected account for a driver, made on first use in test mode.
async fn account_of(shared: &Shared, driver_id: &str) -> Result<Option<String>, anyhow::Error> {
    if let Some(found) = shared.db.provider_account(driver_id).await? {
        return Ok(Some(found));
    }
    if !shared.client.provisions() {
        return Ok(None);
    }
    let (_, email) = shared.db.user_contact(driver_id).await?.unwrap_or_else(|| (driver_id.to_owned(), None));
    let meta: Metadata = [("driver_id", driver_id.to_owned())].into_iter().collect();
    shared.limiter.until_ready().await;
    let account =
        shared.client.create_account(email.as_deref(), &meta, &format!("account:{driver_id}")).await?;
    shared.db.save_provider_account(driver_id, &account).await?;
    Ok(shared.db.provider_account(driver_id).await?)
}

/// How long a claim lasts: the setting, and never less than a provider call's timeout plus a
/// margin, so a worker's call always ends before anyone else may take its item.
fn lease(s: &RunSettings) -> Duration {
    Duration::seconds(s.lease_seconds.max(s.provider_timeout_seconds as i64 + 1))
}

fn seconds_from_now(seconds: i64) -> chrono::DateTime<Utc> {
    Utc::now() + Duration::seconds(seconds)
}

/// The payment intent for one invoice under `key`, with the contract's metadata.
fn charge_request(shared: &Shared, item: &Claimed, customer: (String, String), key: &str) -> ChargeRequest {
    ChargeRequest {
        amount_minor: item.amount_minor,
        currency: shared.run.currency.clone(),
        customer: customer.0,
        payment_method: customer.1,
        metadata: metadata([
            ("invoice_id", item.id.to_string()),
            ("user_id", item.user_id.clone()),
            ("week", shared.run.week.clone()),
        ]),
        idempotency_key: key.to_owned(),
    }
}

/// The ledger transaction of a charge of `amount_minor` for `item`: the provider holds it, the
/// passenger owes it no more.
fn charge_ledger(shared: &Shared, item: &Claimed, amount_minor: i64) -> anyhow::Result<Transaction> {
    Ok(Transaction::transfer(
        "charge",
        format!("invoice-{}", item.id),
        Account::ProviderClearing,
        Account::PassengerReceivable(item.user_id.clone()),
        Money::from_minor(amount_minor, shared.currency),
    )?
    .of_week(&shared.run.week))
}

/// The ledger transaction of a transfer made for payout `payout_id` of `week`: the driver is owed
/// it no more, the provider holds it no more.
pub fn transfer_ledger(
    payout_id: i64,
    driver_id: &str,
    amount: Money,
    week: &str,
) -> Result<Transaction, crate::billing::ledger::LedgerError> {
    Ok(Transaction::transfer(
        "transfer",
        format!("payout-{payout_id}"),
        Account::DriverPayable(driver_id.to_owned()),
        Account::ProviderClearing,
        amount,
    )?
    .of_week(week))
}

/// Charges a batch of claimed invoices. The checks of all of them (content hash, the cap, the
/// passenger's card) take a few queries; every attempt, with its idempotency key, is written in
/// one transaction before any call; the calls go out side by side, each after one more look at
/// the control; every outcome is recorded in one transaction after.
async fn charge_batch(shared: &Shared, worker: &str, items: Vec<Claimed>) -> anyhow::Result<()> {
    let s = &shared.settings;
    let db = &shared.db;
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let users: Vec<&str> = items.iter().map(|i| i.user_id.as_str()).collect();
    let matches = db.invoices_match_hashes(&ids).await?;
    // The cap is checked before the call: what the passenger was charged in this run plus this
    // invoice (plus any other of theirs in this batch). One invoice per passenger and week, so
    // only a duplicate or a huge invoice trips it.
    let mut charged = db.users_charged_in_run(shared.run.id, &users).await?;
    let mut problem = None;
    for item in &items {
        let total = charged.entry(item.user_id.clone()).or_default();
        *total += item.amount_minor;
        problem = match matches.get(&item.id).copied().flatten() {
            None => Some(format!("invoice {} no longer matches the content approved", item.id)),
            // The amount the call would send is the charge row's: it must be the frozen total
            // the content hash pins (the hash covers the lines, not the charge row).
            Some(frozen) if frozen != item.amount_minor => Some(format!(
                "invoice {}: the charge would send {} minor units, the approved invoice is {frozen}",
                item.id, item.amount_minor
            )),
            Some(_) if *total > s.user_cap_minor => Some(format!(
                "{} would be charged {} minor units in this run, above the cap {}",
                item.user_id, total, s.user_cap_minor
            )),
            Some(_) => None,
        };
        if problem.is_some() {
            break;
        }
    }
    if let Some(reason) = problem {
        release_all(shared, Work::Charge, worker, &items).await?;
        return halt(shared, &reason).await;
    }

    let mut customers = db.provider_customers(&users).await?;
    let missing: std::collections::BTreeSet<&str> =
        users.iter().copied().filter(|u| !customers.contains_key(*u)).collect();
    let made = make_customers(shared, &missing.into_iter().collect::<Vec<_>>()).await?;
    let mut no_card = Vec::new();
    let mut set_up_failed = false;
    for (user, made) in made {
        match made {
            Ok(Some(customer)) => {
                customers.insert(user.to_owned(), customer);
            }
            Ok(None) => no_card.push(user.to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, user, "setting up the provider customer failed");
                set_up_failed = true;
            }
        }
    }
    let mut ready = Vec::with_capacity(items.len());
    let mut write_offs = Vec::new();
    for item in items {
        match customers.get(&item.user_id).cloned() {
            Some(customer) => ready.push((item, customer)),
            // No card, and nobody makes one: the invoice is uncollectible at once, without a
            // call, and the passenger is asked to add a card (flagged in the preview before).
            None if no_card.contains(&item.user_id) => write_offs.push((item.id, write_off(shared, &item)?)),
            // The provider could not be reached to set the customer up: the invoice goes back,
            // to be tried again soon.
            None => db.release(Work::Charge, item.id, worker).await?,
        }
    }
    if set_up_failed {
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    // An invoice with an attempt still open keeps its claim until the lease ends (its answer
    // must be known before it can be given up).
    db.give_up_without_card(&write_offs, worker).await?;

    let claimed: Vec<Claimed> = ready.iter().map(|(item, _)| item.clone()).collect();
    let attempts =
        db.begin_attempts(Work::Charge, &shared.run.week, &claimed, worker, Some(lease(s))).await?;
    // An item whose lease could not be renewed was taken over by another worker meanwhile.
    let calls = ready.into_iter().zip(attempts).filter_map(|(ready, attempt)| Some((ready, attempt?)));
    let answers = futures::future::join_all(calls.map(|((item, customer), attempt)| async move {
        // Each call in its turn under the account's limit (calls go out as they are granted, not
        // in bursts of a batch), and never after a stop.
        shared.limiter.until_ready().await;
        if shared.status.borrow().stopped() {
            return (item, attempt, None);
        }
        let request = charge_request(shared, &item, customer, &attempt.key);
        #[cfg(debug_assertions)]
        if s.incident_duplicate_jobs {
            let duplicate = incident_duplicate(shared, worker, item.clone(), request.clone());
            let (answer, duplicate) = tokio::join!(shared.client.charge(&request), duplicate);
            if let Err(e) = duplicate {
                tracing::error!(error = %e, "the incident's duplicate job failed");
            }
            return (item, attempt, Some(answer));
        }
        let answer = shared.client.charge(&request).await;
        (item, attempt, Some(answer))
    }))
    .await;

    let mut outcomes = Vec::with_capacity(answers.len());
    let mut about = Vec::with_capacity(answers.len());
    let mut rate_limited = false;
    for (item, attempt, answer) in answers {
        let outcome = match answer {
            // Stopped before its call: the item goes back; its attempt stays open, so the next
            // try uses the same key.
            None => {
                db.release(Work::Charge, item.id, worker).await?;
                continue;
            }
            Some(Ok(ChargeOutcome::Succeeded { intent, amount_minor, .. })) => {
                // The ledger records what the provider says it took; a difference halts the run.
                let ledger = charge_ledger(shared, &item, amount_minor)?;
                let outcome = Outcome::Succeeded {
                    id: item.id,
                    key: attempt.key,
                    provider_id: intent.clone(),
                    ledger: Some(ledger),
                };
                about.push((item, Some((intent, amount_minor))));
                outcomes.push(outcome);
                continue;
            }
            Some(Ok(ChargeOutcome::Declined { code, decline_code, message })) => {
                let detail = format!("{code} {} {message}", decline_code.unwrap_or_default());
                let detail = detail.trim().to_owned();
                refusal(shared, &item, attempt.key, "declined", detail, s.decline_retry_seconds)
            }
            Some(Err(ProviderError::Refused(message))) => {
                refusal(shared, &item, attempt.key, "failed", message, s.decline_retry_seconds)
            }
            Some(Err(e)) => {
                rate_limited |= matches!(e, ProviderError::RateLimited(_));
                Outcome::Unknown {
                    id: item.id,
                    key: attempt.key,
                    detail: e.to_string(),
                    retry_at: seconds_from_now(s.unknown_retry_seconds),
                }
            }
        };
        about.push((item, None));
        outcomes.push(outcome);
    }
    let recorded = db.record_outcomes(Work::Charge, &outcomes).await?;
    for ((item, charged), recorded) in about.into_iter().zip(recorded) {
        match (recorded, charged) {
            (Recorded::Succeeded(false), Some((intent, _))) => {
                halt(shared, &format!("invoice {}: a second successful charge ({intent})", item.id)).await?;
            }
            (Recorded::Succeeded(true), Some((intent, amount_minor)))
                if amount_minor != item.amount_minor =>
            {
                let reason = format!(
                    "invoice {}: the provider took {amount_minor} minor units for an invoice of {} ({intent})",
                    item.id, item.amount_minor
                );
                halt(shared, &reason).await?;
            }
            (Recorded::Refused(state), _) if state == "uncollectible" => {
                db.record_ledger(&write_off(shared, &item)?).await?;
            }
            _ => {}
        }
    }
    if rate_limited {
        tokio::time::sleep(StdDuration::from_secs(1)).await;
    }
    Ok(())
}

/// The ledger transaction of an invoice given up: the passenger's debt becomes bad debt.
fn write_off(shared: &Shared, item: &Claimed) -> anyhow::Result<Transaction> {
    let amount = Money::from_minor(item.amount_minor, shared.currency);
    Ok(Transaction::transfer(
        "write_off",
        format!("invoice-{}", item.id),
        Account::BadDebt,
        Account::PassengerReceivable(item.user_id.clone()),
        amount,
    )?
    .of_week(&shared.run.week))
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

/// The incident's bug, for the test that reintroduces it: a second job charges the same invoice
/// under a key of its own, skipping the claim and the idempotency the real path has. Its success
/// is recorded through the same path, where the database refuses a second success and the run
/// halts.
#[cfg(debug_assertions)]
async fn incident_duplicate(
    shared: &Shared,
    worker: &str,
    item: Claimed,
    mut request: ChargeRequest,
) -> anyhow::Result<()> {
    if shared.status.borrow().finished() {
        return Ok(());
    }
    let number = 1_000 + rand::random_range(0..1_000_000i64);
    let key = format!("incident:{}:{number}", item.id);
    request.idempotency_key = key.clone();
    // As in the incident, nothing is written before the call.
    if let Ok(ChargeOutcome::Succeeded { intent, .. }) = shared.client.charge(&request).await {
        shared.db.insert_attempt(Work::Charge, item.id, number, &key, item.amount_minor, worker).await?;
        let ledger = charge_ledger(shared, &item, item.amount_minor)?;
        if !shared.db.record_success(Work::Charge, item.id, &key, &intent, Some(&ledger)).await? {
            halt(shared, &format!("invoice {}: a second successful charge ({intent})", item.id)).await?;
        }
    }
    Ok(())
}

/// Pays a batch of drivers, as [`charge_batch`] charges passengers: attempts written in one
/// transaction before the calls, transfers to their connected accounts side by side, outcomes
/// recorded in one transaction after.
async fn transfer_batch(shared: &Shared, worker: &str, items: Vec<Claimed>) -> anyhow::Result<()> {
    let s = &shared.settings;
    let db = &shared.db;
    let drivers: Vec<&str> =
        items.iter().filter(|i| i.amount_minor > 0).map(|i| i.user_id.as_str()).collect();
    let mut accounts: HashMap<String, Result<Option<String>, anyhow::Error>> =
        db.provider_accounts(&drivers).await?.into_iter().map(|(d, a)| (d, Ok(Some(a)))).collect();
    let missing: std::collections::BTreeSet<&str> =
        drivers.iter().copied().filter(|d| !accounts.contains_key(*d)).collect();
    let made = futures::future::join_all(
        missing.into_iter().map(|d| async move { (d, account_of(shared, d).await) }),
    )
    .await;
    accounts.extend(made.into_iter().map(|(d, a)| (d.to_owned(), a)));

    // A driver without a connected account: the payout waits for one, without a call or an
    // attempt (the carpool app's user sync brings it forward when it sends the account).
    let mut to_pay = Vec::with_capacity(items.len());
    let mut no_account = Vec::new();
    let mut set_up_failed = false;
    for item in items {
        match accounts.get(&item.user_id) {
            _ if item.amount_minor == 0 => to_pay.push(item),
            Some(Ok(Some(_))) => to_pay.push(item),
            Some(Ok(None)) => no_account.push(item.id),
            // The provider refused to make the account (one without connected accounts, say): an
            // attempt that failed, counted like any other, not a set-up to try forever.
            Some(Err(e)) if matches!(e.downcast_ref::<ProviderError>(), Some(ProviderError::Refused(_))) => {
                to_pay.push(item)
            }
            _ => {
                // The provider could not be reached to make the account: the payout goes back.
                db.release(Work::Transfer, item.id, worker).await?;
                set_up_failed = true;
            }
        }
    }
    if !no_account.is_empty() {
        let retry_at = seconds_from_now(s.funds_retry_seconds);
        let detail = "the driver has no connected account at the provider yet";
        db.defer_payouts(&no_account, worker, "account", detail, retry_at).await?;
    }
    if set_up_failed {
        tracing::warn!("setting up a connected account failed");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let attempts =
        db.begin_attempts(Work::Transfer, &shared.run.week, &to_pay, worker, Some(lease(s))).await?;
    let begun: Vec<(Claimed, Attempt)> =
        to_pay.into_iter().zip(attempts).filter_map(|(item, attempt)| Some((item, attempt?))).collect();

    let mut outcomes = Vec::with_capacity(begun.len());
    let mut calls = Vec::with_capacity(begun.len());
    for (item, attempt) in begun {
        if item.amount_minor == 0 {
            // Nothing to move (the platform kept the whole fare): paid, no call, no ledger.
            let paid = Outcome::Succeeded {
                id: item.id,
                key: attempt.key,
                provider_id: "none".into(),
                ledger: None,
            };
            outcomes.push((item, paid));
            continue;
        }
        let refused = match accounts.get(&item.user_id) {
            Some(Ok(Some(account))) => {
                calls.push((item, attempt, account.clone()));
                continue;
            }
            Some(Err(e)) => format!("the provider refused a connected account for {}: {e}", item.user_id),
            _ => format!("{} has no connected account at the provider", item.user_id),
        };
        let outcome = refusal(shared, &item, attempt.key, "failed", refused, s.decline_retry_seconds);
        outcomes.push((item, outcome));
    }
    let answers =
        futures::future::join_all(calls.into_iter().map(|(item, attempt, destination)| async move {
            shared.limiter.until_ready().await;
            if shared.status.borrow().stopped() {
                return (item, attempt, None);
            }
            let request = TransferRequest {
                amount_minor: item.amount_minor,
                currency: shared.run.currency.clone(),
                destination,
                transfer_group: Some(shared.run.week.clone()),
                metadata: metadata([
                    ("payout_id", item.id.to_string()),
                    ("driver_id", item.user_id.clone()),
                    ("week", shared.run.week.clone()),
                ]),
                idempotency_key: attempt.key.clone(),
            };
            let answer = shared.client.transfer(&request).await;
            (item, attempt, Some(answer))
        }))
        .await;
    for (item, attempt, answer) in answers {
        let outcome = match answer {
            None => {
                db.release(Work::Transfer, item.id, worker).await?;
                continue;
            }
            Some(Ok(id)) => {
                let amount = Money::from_minor(item.amount_minor, shared.currency);
                let ledger = transfer_ledger(item.id, &item.user_id, amount, &shared.run.week)?;
                Outcome::Succeeded { id: item.id, key: attempt.key, provider_id: id, ledger: Some(ledger) }
            }
            Some(Err(ProviderError::Refused(message))) => {
                refusal(shared, &item, attempt.key, "failed", message, s.unknown_retry_seconds)
            }
            // Not a failure: the funds of the week's charges are not available yet.
            Some(Err(ProviderError::Unfunded(message))) => Outcome::Waiting {
                id: item.id,
                key: attempt.key,
                waiting_for: "funds",
                detail: message,
                retry_at: seconds_from_now(s.funds_retry_seconds),
            },
            Some(Err(e)) => Outcome::Unknown {
                id: item.id,
                key: attempt.key,
                detail: e.to_string(),
                retry_at: seconds_from_now(s.unknown_retry_seconds),
            },
        };
        outcomes.push((item, outcome));
    }
    let (items, outcomes): (Vec<Claimed>, Vec<Outcome>) = outcomes.into_iter().unzip();
    let recorded = db.record_outcomes(Work::Transfer, &outcomes).await?;
    for ((item, outcome), recorded) in items.iter().zip(&outcomes).zip(recorded) {
        if let (Outcome::Succeeded { provider_id, .. }, Recorded::Succeeded(false)) = (outcome, recorded) {
            halt(shared, &format!("payout {}: a second successful transfer ({provider_id})", item.id))
                .await?;
        }
    }
    Ok(())
}

/// Checks charges against the provider's own records: each payment intent succeeded for exactly
/// the invoice's amount, and the passenger's customer holds exactly one successful charge for
/// that invoice. All of the canary's before the rest is charged; while charging, the latest few
/// every few seconds. The charges are checked side by side (as many as a process's workers have
/// calls in flight), every call within the configured rate. `Some(problem)` when they disagree
/// (the first in invoice order); an error when the provider cannot be asked right now (the next
/// check asks again).
async fn verify_charges(shared: &Shared, max_seq: i64, limit: i64) -> anyhow::Result<Option<String>> {
    use futures::StreamExt;
    let in_flight = shared.settings.workers.max(1) * shared.settings.batch.max(1) as usize;
    let charges = shared.db.charges_to_verify(shared.run.id, max_seq, limit).await?;
    let checks: Vec<_> = charges.into_iter().map(|charge| verify_charge(shared, charge)).collect();
    let checked: Vec<anyhow::Result<Option<String>>> =
        futures::stream::iter(checks).buffered(in_flight).collect().await;
    for check in checked {
        if let Some(problem) = check? {
            return Ok(Some(problem));
        }
    }
    Ok(None)
}

/// Checks one charge (invoice, amount, payment intent, customer) as [`verify_charges`] says.
async fn verify_charge(
    shared: &Shared,
    (invoice, amount, intent, customer): (i64, i64, String, String),
) -> anyhow::Result<Option<String>> {
    let week = shared.run.week.as_str();
    shared.limiter.until_ready().await;
    let found = match shared.client.payment_intent(&intent).await {
        Ok(found) => found,
        Err(e) if e.retryable() => return Err(anyhow::anyhow!("verifying the canary: {e}")),
        Err(e) => return Ok(Some(format!("invoice {invoice}: payment intent {intent}: {e}"))),
    };
    // Stripe reports `amount_received`; some Stripe-shaped servers only `amount`.
    let took = found["amount_received"].as_i64().or_else(|| found["amount"].as_i64()).unwrap_or(0);
    if found["status"] != "succeeded" || took != amount {
        return Ok(Some(format!(
            "invoice {invoice}: the provider has {intent} as {} for {took}, the ledger {amount}",
            found["status"]
        )));
    }
    // Every successful payment of the customer, by its payment intent's metadata (which the
    // product sets; not every Stripe-shaped server copies it onto the charge).
    let charges = shared
        .client
        .charges_of(&customer, Some(&shared.limiter))
        .await
        .map_err(|e| anyhow::anyhow!("verifying the canary: {e}"))?;
    let intents: std::collections::BTreeSet<&str> = charges
        .iter()
        .filter(|c| c["status"] == "succeeded")
        .filter_map(|c| c["payment_intent"].as_str())
        .collect();
    let invoice_id = invoice.to_string();
    let mut for_invoice = 0;
    for other in intents {
        let paid = if other == intent {
            found.clone()
        } else {
            shared.limiter.until_ready().await;
            shared
                .client
                .payment_intent(other)
                .await
                .map_err(|e| anyhow::anyhow!("verifying the canary: {e}"))?
        };
        if paid["metadata"]["invoice_id"] == invoice_id.as_str() && paid["metadata"]["week"] == week {
            for_invoice += 1;
        }
    }
    if for_invoice != 1 {
        return Ok(Some(format!(
            "invoice {invoice}: the provider holds {for_invoice} successful charges for it, the ledger one"
        )));
    }
    Ok(None)
}

/// Moves the phases and checks the guards, a few times a second, until the run is over.
async fn coordinate(shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut looks = Looks::default();
    loop {
        if shared.status.borrow().finished() {
            return Ok(());
        }
        // A failed step (the database or the provider not answering) is tried again.
        let started = std::time::Instant::now();
        let sums = match coordinate_step(&shared, &mut looks).await {
            Ok(sums) => sums,
            Err(e) => {
                tracing::warn!(run = shared.run.id, error = %e, "a coordination step failed");
                started.elapsed()
            }
        };
        // Four looks a second, and the guards' sums never more than a third of the time: at a
        // million invoices they take a while, and the workers need the database more. Time
        // spent asking the provider (the canary's verification) does not count: it would delay
        // the next phase for nothing. (The kill switch does not wait for this: the poller reads
        // the control.)
        // A worker with nothing to do cuts the wait short (not below twice the sums).
        let soonest = SOONEST_LOOK.max(sums * 2);
        tokio::time::sleep(soonest).await;
        let rest = COORDINATE_EVERY.max(sums * 2).saturating_sub(soonest);
        let _ = tokio::time::timeout(rest, shared.idle.notified()).await;
    }
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

/// Publishes a phase this process advanced the run to, so that its workers move on at once
/// (the others at their next poll).
fn publish_phase(shared: &Shared, phase: &str) {
    shared.publish.send_if_modified(|status| {
        let forward = !status.finished() && phase_rank(&status.phase) < phase_rank(phase);
        if forward {
            status.phase = phase.to_owned();
        }
        forward
    });
}

/// What a coordinator remembers from one look at the run to the next.
#[derive(Default)]
struct Looks {
    /// The movements recorded when it last refreshed the run tables' statistics.
    analyzed_at: i64,
    /// When it last checked the latest charges against the provider while charging.
    sampled: Option<std::time::Instant>,
}

/// How often the latest charges are checked against the provider while charging.
const SAMPLE_EVERY: StdDuration = StdDuration::from_secs(5);

/// One look at the run: the guards, then the next phase if the current one is done. Returns how
/// long the guards' database sums took.
async fn coordinate_step(shared: &Arc<Shared>, looks: &mut Looks) -> anyhow::Result<StdDuration> {
    let s = &shared.settings;
    let run = &shared.run;
    let status = shared.status.borrow().clone();
    let started = std::time::Instant::now();
    let counts = shared.db.run_counts(run.id, run.canary_size).await?;
    refresh_statistics_as_the_run_grows(shared, counts.charged + counts.paid, &mut looks.analyzed_at).await?;
    let top_charged = shared.db.top_charged_user(run.id).await?;
    let sums = started.elapsed();
    // Guards first: a wrong run must not move on.
    if counts.charged_minor > run.expected_minor {
        halt(
            shared,
            &format!(
                "charged {} minor units, above the approved total {}",
                counts.charged_minor, run.expected_minor
            ),
        )
        .await?;
    } else if let Some((user, total)) = top_charged.filter(|(_, t)| *t > s.user_cap_minor) {
        halt(
            shared,
            &format!(
                "{user} was charged {total} minor units in this run, above the cap {}",
                s.user_cap_minor
            ),
        )
        .await?;
    } else if counts.attempts >= s.failure_min_attempts
        && (counts.unknown_attempts + counts.failed_attempts) * 100 > counts.attempts * s.failure_rate_pct
    {
        halt_with(
            shared,
            AlertKind::FailureRate,
            &format!(
                "{} of {} attempts failed or have no known outcome, above {}%",
                counts.unknown_attempts + counts.failed_attempts,
                counts.attempts,
                s.failure_rate_pct
            ),
        )
        .await?;
    } else {
        match status.phase.as_str() {
            "canary" if counts.canary_open == 0 => {
                let (_, unbalanced) = shared.db.ledger_check().await?;
                if !unbalanced.is_empty() {
                    let reason = format!("the canary left unbalanced ledger transactions {unbalanced:?}");
                    halt(shared, &reason).await?;
                } else if let Some(problem) = verify_charges(shared, run.canary_size, i64::MAX).await? {
                    halt(shared, &format!("canary: {problem}")).await?;
                } else if shared.db.advance_phase(run.id, "canary", "charging").await? {
                    publish_phase(shared, "charging");
                    shared.db.refresh_statistics(RUN_TABLES).await?;
                }
            }
            "charging" if counts.pending == 0 => {
                let advanced = shared.db.advance_phase(run.id, "charging", "paying_out").await?;
                if advanced {
                    publish_phase(shared, "paying_out");
                }
            }
            "charging" if looks.sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) => {
                // The latest few charges, every few seconds.
                looks.sampled = Some(std::time::Instant::now());
                if let Some(problem) = verify_charges(shared, i64::MAX, 5).await? {
                    halt(shared, &problem).await?;
                }
            }
            "paying_out" if counts.transfers_pending == 0 => {
                // A declined invoice tried again whose answer has not come back may have been
                // charged: the run completes once every such answer is known (its worker, or
                // another once the lease ends, asks again with the same key).
                if shared.db.unanswered_retries(run.id).await? > 0 {
                    return Ok(sums);
                }
                // The guards decided on the database's running totals: before the run completes
                // they are checked against a count of its rows (the whole run read, once). Totals
                // that disagree are recounted and the run halts for a person to look.
                if let Some(problem) = shared.db.check_run_tallies(run.id, run.canary_size).await? {
                    halt(shared, &problem).await?;
                    return Ok(sums);
                }
                // The process that completes the run reconciles it with the provider; a mismatch
                // shows on every page of the dashboard until finance acknowledges it.
                let completed = shared.db.advance_phase(run.id, "paying_out", "completed").await?;
                if completed {
                    // Statistics first: planned with statistics from before the transfers,
                    // PostgreSQL matched a million passengers' 100,000 transfers against the
                    // ledger's with a nested loop over both (unfinished after 160 s; 0.9 s after).
                    shared.db.refresh_statistics(RUN_TABLES).await?;
                    reconcile_after(shared, &run.week, run.id).await?;
                }
            }
            _ => {}
        }
    }
    Ok(sums)
}

/// Refreshes the statistics of the run's tables each time the movements recorded doubled
/// (from a thousand). PostgreSQL plans the foreign-key checks of the ledger once per connection
/// and keeps the plan until the table's statistics change: planned while `ledger_transactions`
/// held the canary's few rows, every check scanned the whole table. At 100,000 passengers that
/// made inserting the ledger's postings 60% of the database's time in a run (measured with
/// `pg_stat_statements`); a refreshed table is planned anew, with its index.
async fn refresh_statistics_as_the_run_grows(
    shared: &Shared,
    movements: i64,
    analyzed_at: &mut i64,
) -> anyhow::Result<()> {
    if movements >= (2 * *analyzed_at).max(1000) {
        *analyzed_at = movements;
        shared.db.refresh_statistics(RUN_TABLES).await?;
    }
    Ok(())
}

/// Reconciles a run's week with the provider once the run completed; a mismatch is a run event
/// and shows on every page of the dashboard until finance acknowledges it.
async fn reconcile_after(shared: &Shared, week: &str, run_id: i64) -> anyhow::Result<()> {
    match crate::reconcile::run(&shared.db, &shared.client, shared.currency, week, "system").await {
        Ok(r) if r.unmatched > 0 => {
            let message =
                format!("reconciliation found {} item(s) that do not match the ledger", r.unmatched);
            shared.db.run_event(run_id, "reconciliation", &message).await?;
            tracing::error!(run = run_id, %week, unmatched = r.unmatched, "{message}");
        }
        Ok(r) => {
            let message = format!("reconciled: all {} movements match the provider's", r.matched);
            shared.db.run_event(run_id, "reconciliation", &message).await?;
        }
        Err(e) => tracing::error!(run = run_id, error = %e, "reconciling after the run failed"),
    }
    Ok(())
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

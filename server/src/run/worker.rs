//! Working a run: the processes' workers (claim, charge or pay, record), the poller that
//! publishes the run's control to them, and `billing serve`'s loop over active runs and due
//! retries.

use super::*;

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
                            now.phase = now.phase.max(old.phase);
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
    // The guard that reads the provider, until the run is over for workers or this ends.
    let _watch = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(super::outside::watch_payments(
        shared.clone(),
    )));
    let workers: Vec<_> = (0..settings.workers.max(1))
        .map(|task| {
            let shared = shared.clone();
            tokio::spawn(async move { work_on(shared, worker_name(task)).await })
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
    let completed = shared.status.borrow().phase == Phase::Completed;
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
            Some(row) if row.control == Control::Running => {}
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

/// How many failures in a row (a database error, say) a worker survives.
const WORKER_FAILURES: u32 = 5;

/// One worker, which survives a failure: what it held goes back when its lease ends, and it
/// claims again after a pause (1 s, 2 s, …), so one bad moment of the database does not leave a
/// process without workers. After [`WORKER_FAILURES`] failures in a row it stops with the last.
async fn work_on(shared: Arc<Shared>, worker: String) -> anyhow::Result<()> {
    let mut failures = 0;
    loop {
        match work(shared.clone(), worker.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if failures + 1 < WORKER_FAILURES => {
                failures += 1;
                tracing::warn!(%worker, error = %e, failures, "a run worker failed; it claims again after a pause");
                tokio::time::sleep(StdDuration::from_secs(u64::from(failures))).await;
            }
            Err(e) => return Err(e),
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
        let (work, max_seq, batch) = match now.phase {
            Phase::Canary => (Work::Charge, shared.run.canary_size, 1),
            Phase::Charging => (Work::Charge, i64::MAX, shared.settings.batch),
            Phase::PayingOut | Phase::Completed => (Work::Transfer, i64::MAX, shared.settings.batch),
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
        for run in runs.into_iter().filter(|r| r.control == Control::Running).chain(retries) {
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
                if run.phase == Phase::Completed {
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

//! `billing run`: start, resume or join a week's billing run and stay until it ends.

use app::model::run::{Control, Phase};

use super::{open_week, usage, RunStopped};
use crate::config::Config;

/// How long `billing run` spends sending the alerts it raised before it exits.
const ALERTS_BEFORE_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

pub(super) async fn run(
    config: Config,
    week: &str,
    approve: bool,
    workers: Option<usize>,
) -> anyhow::Result<()> {
    use crate::db::audit::Actor;
    use crate::db::runs::StartError;
    config.provider.require_target()?;
    let (db, week) = open_week(&config, week).await?;
    let actor = Actor::cli();
    if approve {
        let stored = crate::preview::refresh(&db, &config, week).await.map_err(|e| match e {
            e @ (crate::preview::PreviewError::Future(_) | crate::preview::PreviewError::NotEnded(_)) => {
                usage(format!("--week: {e}"))
            }
            other => other.into(),
        })?;
        match crate::preview::approve(&db, &config, &actor, week, &stored.content_hash).await {
            Ok(_) => eprintln!(
                "approved {week}: {} invoices, {} {}",
                stored.totals.invoices, stored.totals.charged, config.currency
            ),
            Err(e @ crate::preview::PreviewError::NotEnded(_)) => return Err(usage(format!("--week: {e}"))),
            Err(e) => return Err(e.into()),
        }
    }
    let mut settings = crate::run::load_settings(&db).await?;
    if let Some(workers) = workers {
        if !(1..=256).contains(&workers) {
            return Err(usage(format!("--workers: from 1 to 256, not {workers}")));
        }
        settings.workers = workers;
    }
    let run = match db.start_run(week, &actor, settings.canary_size).await {
        Ok(run) => run,
        Err(e @ StartError::NotApproved(_)) => return Err(usage(format!("--week: {e}"))),
        Err(e) => return Err(e.into()),
    };
    if run.phase == Phase::Completed {
        eprintln!("the run of {week} (id {}) completed before", run.id);
        if run.control == Control::Running {
            let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
            let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
            let tried = crate::run::retry_due(&db, &client, &settings, run).await?;
            if tried > 0 {
                eprintln!("tried {tried} declined invoice(s) or retried payout(s) again");
            }
        }
        return Ok(());
    }
    if run.control != Control::Running {
        let reason = run.reason.clone().unwrap_or_default();
        return Err(RunStopped(format!(
            "the run of {week} is {}: {reason}; `billing resume --week {week}` lets it go on",
            run.control
        ))
        .into());
    }
    eprintln!("working the run of {week} (id {}) with {} workers", run.id, settings.workers);
    let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
    let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
    let progress = tokio::spawn(report_progress(db.clone(), run.id, run.canary_size));
    let (run_id, canary) = (run.id, run.canary_size);
    // A run whose only work left waits a long while (for funds, for accounts) is left to `billing
    // serve` (or to this command run again): stopping between calls is safe.
    let finished = tokio::select! {
        finished = crate::run::work_run(&db, &client, &settings, run) => finished,
        waiting = waiting_long(&db, run_id, canary, config.time_zone) => {
            progress.abort();
            for w in &waiting {
                eprintln!("{}", w.sentence(config.time_zone.name()));
            }
            db.close().await;
            return Err(RunStopped(format!(
                "the run of {week} waits; `billing serve` tries again at the time given, or run this command again then"
            ))
            .into());
        }
    };
    progress.abort();
    let finished = finished?;
    let counts = db.run_counts(finished.id, finished.canary_size).await?;
    eprintln!(
        "run {}: {} / {}; {} charged, {} declined, {} uncollectible, {} of {} drivers paid",
        finished.id,
        finished.phase,
        finished.control,
        counts.charged,
        counts.declined,
        counts.uncollectible,
        counts.paid,
        counts.transfers
    );
    crate::notify::deliver_alerts_before_exit(&db, &config, Some(client), ALERTS_BEFORE_EXIT).await;
    db.close().await;
    if finished.phase == Phase::Completed {
        Ok(())
    } else {
        let reason = finished.reason.unwrap_or_default();
        Err(RunStopped(format!("the run of {week} is {}: {reason}", finished.control)).into())
    }
}

/// How far ahead the next try must be for `billing run` to leave a waiting run.
const LEAVE_WAITING_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// Resolves once the run has nothing left to do but payouts that wait, the next of them more
/// than [`LEAVE_WAITING_AFTER`] away: with what they wait for (the next tries in `tz`).
async fn waiting_long(
    db: &crate::db::Db,
    run_id: i64,
    canary: i64,
    tz: chrono_tz::Tz,
) -> Vec<app::model::run::RunWaiting> {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (Ok(Some(run)), Ok(counts)) = (db.run(run_id).await, db.run_counts(run_id, canary).await) else {
            continue;
        };
        if run.phase != Phase::PayingOut || counts.pending > 0 || counts.transfers_pending == 0 {
            continue;
        }
        let (Ok(waiting), Ok(currency)) =
            (db.run_waiting(run_id).await, app::model::money::BillingCurrency::from_code(&run.currency))
        else {
            continue;
        };
        let waiting_payouts: i64 = waiting.iter().map(|w| w.payouts).sum();
        let soonest = waiting.iter().map(|w| w.next_at).min();
        if waiting_payouts == counts.transfers_pending
            && soonest.is_some_and(|at| at > chrono::Utc::now() + LEAVE_WAITING_AFTER)
        {
            return crate::run::view::waiting_of(waiting, currency, tz);
        }
    }
}

/// The run's progress on stderr: a progress bar on a terminal (indicatif), a line every five
/// seconds otherwise (logs, CI).
async fn report_progress(db: crate::db::Db, run_id: i64, canary: i64) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(0);
    if terminal {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:28} [{bar:40.cyan/blue}] {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tick = 0u64;
    let mut last_waiting: Vec<String> = Vec::new();
    loop {
        if let (Ok(Some(run)), Ok(c)) = (db.run(run_id).await, db.run_counts(run_id, canary).await) {
            bar.set_length((c.invoices + c.transfers) as u64);
            bar.set_position(((c.invoices - c.pending) + c.paid) as u64);
            bar.set_message(format!("{} {} ({} declined)", run.phase, run.control, c.declined));
            if !terminal && tick.is_multiple_of(10) {
                eprintln!(
                    "{} {}: charged {}/{} ({} declined, {} pending), paid {}/{}",
                    run.phase, run.control, c.charged, c.invoices, c.declined, c.pending, c.paid, c.transfers
                );
            }
            // What the payouts wait for, each time it changes.
            if let Ok(waiting) = db.run_waiting(run_id).await {
                let said: Vec<String> = waiting
                    .iter()
                    .map(|w| {
                        format!(
                            "{} payout(s) wait for {}: {}",
                            w.payouts,
                            w.waiting_for,
                            w.detail.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                if said != last_waiting {
                    for line in &said {
                        bar.suspend(|| eprintln!("{line}"));
                    }
                    last_waiting = said;
                }
            }
        }
        tick += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

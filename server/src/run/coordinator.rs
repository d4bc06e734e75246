//! The coordinator: moves the phases (canary, charging, paying out, completed), checks the
//! guards against the database and the provider, and reconciles the run once it completes.

use super::*;

/// The tables a run fills, whose statistics are refreshed after the canary and at the end.
const RUN_TABLES: &[&str] = &[
    "charges",
    "transfers",
    "charge_attempts",
    "transfer_attempts",
    "ledger_transactions",
    "ledger_postings",
];

/// How often the coordinator looks at the guards and the phase, at most.
const COORDINATE_EVERY: StdDuration = StdDuration::from_millis(250);

/// How soon after a look the coordinator looks again when a worker found nothing to do (the
/// phase may be done).
const SOONEST_LOOK: StdDuration = StdDuration::from_millis(20);

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
pub(super) async fn coordinate(shared: Arc<Shared>) -> anyhow::Result<()> {
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

/// Publishes a phase this process advanced the run to, so that its workers move on at once
/// (the others at their next poll).
fn publish_phase(shared: &Shared, phase: Phase) {
    shared.publish.send_if_modified(|status| {
        let forward = !status.finished() && status.phase < phase;
        if forward {
            status.phase = phase;
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
    // Guards first: a wrong run must not move on. (The guard that reads the provider's own list
    // of the week's payments works in its own task: `super::outside::watch_payments`.)
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
        match status.phase {
            Phase::Canary if counts.canary_open == 0 => {
                let unbalanced = shared.db.unbalanced_transactions(&run.week).await?;
                if !unbalanced.is_empty() {
                    let reason = format!("the canary left unbalanced ledger transactions {unbalanced:?}");
                    halt(shared, &reason).await?;
                } else if let Some(problem) = verify_charges(shared, run.canary_size, i64::MAX).await? {
                    halt(shared, &format!("canary: {problem}")).await?;
                } else if shared.db.advance_phase(run.id, Phase::Canary, Phase::Charging).await? {
                    publish_phase(shared, Phase::Charging);
                    shared.db.refresh_statistics(RUN_TABLES).await?;
                }
            }
            Phase::Charging if counts.pending == 0 => {
                let advanced = shared.db.advance_phase(run.id, Phase::Charging, Phase::PayingOut).await?;
                if advanced {
                    publish_phase(shared, Phase::PayingOut);
                }
            }
            Phase::Charging if looks.sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) => {
                // The latest few charges, every few seconds.
                looks.sampled = Some(std::time::Instant::now());
                if let Some(problem) = verify_charges(shared, i64::MAX, 5).await? {
                    halt(shared, &problem).await?;
                }
            }
            Phase::PayingOut if counts.transfers_pending == 0 => {
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
                let completed = shared.db.advance_phase(run.id, Phase::PayingOut, Phase::Completed).await?;
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

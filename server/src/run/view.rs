//! A run as the dashboard and the JSON API show it.

use chrono::Utc;
use chrono_tz::Tz;

use crate::customers::zoned;
use crate::db::runs::RunRow;
use crate::db::Db;
use app::model::money::{BillingCurrency, Money};
use app::model::run::{FailedPayout, HeldItem, RunEvent, RunView, RunWaiting};

/// Slots of the throughput sparkline, and their length in seconds: the slots of the
/// `run_throughput` table, whose triggers divide a success's Unix time by 5 (migration 0013).
const SLOTS: i64 = 24;
const SLOT_SECONDS: i64 = 5;

/// What a run's payouts wait for, as the run page and `billing run` say it, the next tries in
/// the business time zone `tz`.
pub fn waiting_of(
    rows: Vec<crate::db::provider::Waiting>,
    currency: BillingCurrency,
    tz: Tz,
) -> Vec<RunWaiting> {
    rows.into_iter()
        .map(|w| RunWaiting {
            waiting_for: w.waiting_for,
            payouts: w.payouts,
            amount: Money::from_minor(w.amount_minor, currency),
            next_at: zoned(w.next_at, tz),
            detail: w.detail,
        })
        .collect()
}

/// The view of `run`: counts, amounts, throughput, ETA and the latest events, its moments in the
/// business time zone `tz`.
pub async fn view(db: &Db, run: RunRow, tz: Tz) -> anyhow::Result<RunView> {
    let counts = db.run_counts(run.id, run.canary_size).await?;
    let currency = BillingCurrency::from_code(&run.currency)?;
    let money = |minor| Money::from_minor(minor, currency);
    // The slots of the last two minutes, the current (partial) one last.
    let current = Utc::now().timestamp().div_euclid(SLOT_SECONDS);
    let first = current - (SLOTS - 1);
    let mut sparkline = vec![0i64; SLOTS as usize];
    for (slot, successes) in db.run_throughput(run.id, first).await? {
        if let Some(count) = usize::try_from(slot - first).ok().and_then(|i| sparkline.get_mut(i)) {
            *count += successes;
        }
    }
    // The rate over the last ten to fifteen seconds (the two complete slots and the current one so far), or
    // since the run started when that is later, so that a run's first seconds show a rate.
    let since = ((current - 2) * SLOT_SECONDS).max(run.started_at.timestamp());
    let seconds = (Utc::now().timestamp() - since).max(1);
    let recent: i64 = sparkline[SLOTS as usize - 3..].iter().sum();
    let rate_x10 = recent * 10 / seconds;
    // Failed payouts are not to go (finance may retry them): only pending ones are.
    let remaining = counts.pending + counts.transfers_pending;
    let waiting_rows = db.run_waiting(run.id).await?;
    // Payouts that wait for funds or an account are not coming at this rate: no time to go
    // while only they are left.
    let waiting_payouts: i64 = waiting_rows.iter().map(|w| w.payouts).sum();
    let moving = remaining - waiting_payouts;
    let eta_seconds = (rate_x10 > 0 && moving > 0).then(|| moving * 10 / rate_x10);
    let events = db
        .run_events(run.id, 20)
        .await?
        .into_iter()
        .map(|(at, kind, message)| RunEvent { at: zoned(at, tz), kind, message })
        .collect();
    let waiting = waiting_of(waiting_rows, currency, tz);
    let failed_payouts = db
        .failed_payouts(run.id)
        .await?
        .into_iter()
        .map(|f| FailedPayout {
            payout_id: f.payout_id,
            driver_id: f.driver_id,
            amount: money(f.amount_minor),
            attempts: f.attempts,
            detail: f.detail,
        })
        .collect();
    let held = db
        .held_items(run.id)
        .await?
        .into_iter()
        .map(|h| HeldItem {
            kind: h.kind,
            id: h.id,
            user_id: h.user_id,
            amount: money(h.amount_minor),
            detail: h.detail,
            key: h.key,
            since: h.since.map(|at| zoned(at, tz)),
            proposed_by: h.proposed_by,
        })
        .collect();
    Ok(RunView {
        id: run.id,
        week: run.week,
        phase: run.phase,
        control: run.control,
        reason: run.reason,
        started_at: zoned(run.started_at, tz),
        started_by: run.started_by,
        completed_at: run.completed_at.map(|at| zoned(at, tz)),
        expected: money(run.expected_minor),
        charged: money(counts.charged_minor),
        paid: money(counts.paid_minor),
        invoices: counts.invoices,
        charged_count: counts.charged,
        declined: counts.declined,
        uncollectible: counts.uncollectible,
        pending: counts.pending,
        payouts: counts.transfers,
        paid_count: counts.paid,
        attempts: counts.attempts,
        unknown_attempts: counts.unknown_attempts,
        sparkline,
        rate_x10,
        eta_seconds,
        events,
        waiting,
        failed_payouts,
        held,
        time_zone: tz.name().to_owned(),
    })
}

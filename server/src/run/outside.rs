//! The guard that reads the provider. The other guards compare the database with itself; a
//! charge made outside the product (a stale job, a second deployment of an old version: the
//! incident itself) never reaches the database. While a run works, this guard lists the
//! provider's payments of the run's week as they are made, and halts the run with an alert at
//! the first one its ledger does not explain: a second payment of an invoice, a payment of an
//! invoice the run does not have, or one of the wrong amount.

use std::collections::HashMap;

use serde_json::Value;

use super::*;

/// How often the provider's new payments are listed.
pub(super) const WATCH_EVERY: StdDuration = StdDuration::from_secs(1);

/// How far before the run began the first listing reads, for a difference between clocks (as
/// far as the reconciliation after the run does).
const SLACK_SECONDS: i64 = 60;

/// How long after a second ends its payments are listed: the provider dates a payment when it
/// makes it and lists it once made. A payment listed later than this (a provider clock behind
/// this one by more) is left to the reconciliation after the run, which lists the whole week.
const SETTLE_SECONDS: i64 = 2;

/// Seconds of the run listed side by side, each a creation-time window paged through in turn.
const WINDOWS_IN_FLIGHT: usize = 16;

/// The most seconds of the run one look lists: a watch that fell behind catches up over
/// several looks, each short enough for the run's end to stop it.
const MOST_SECONDS: i64 = 120;

/// Invoices asked about in one query.
const EXPLAIN_AT_ONCE: usize = 1000;

/// The payments of one invoice as the database explains them.
#[derive(Clone, Debug)]
pub struct Explained {
    pub amount_minor: i64,
    /// The payment intent of its recorded success.
    pub recorded: Option<String>,
    /// Whether an attempt is open (its payment may be at the provider, not yet recorded).
    pub open: bool,
}

/// Whether a payment intent took the money: `Some(true)` it did, `Some(false)` it did not and
/// will not, `None` not yet known (on its way).
fn settled(payment: &Value) -> Option<bool> {
    match payment["status"].as_str() {
        Some("succeeded") => Some(true),
        // On its way: it may still succeed.
        Some("processing" | "requires_confirmation" | "requires_action" | "requires_capture") => None,
        // Failed or cancelled: no payment.
        _ => Some(false),
    }
}

/// The guard that reads the provider, in its own task beside the coordinator (a look may take a
/// while; the phases and the other guards do not wait for it): a look every [`WATCH_EVERY`]
/// until the run is over for workers, and a halt at the first payment the ledger does not
/// explain. A provider that cannot be asked is asked again at the next look.
pub(super) async fn watch_payments(shared: Arc<Shared>) {
    let mut watch = Watch::default();
    let mut status = shared.status.clone();
    loop {
        if status.borrow_and_update().finished() {
            return;
        }
        match watch.look(&shared).await {
            Ok(Some(problem)) => match halt(&shared, &problem).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(run = shared.run.id, error = %e, "halting the run failed; the watch looks again")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(run = shared.run.id, error = %e, "listing the provider's payments failed")
            }
        }
        let _ = tokio::time::timeout(WATCH_EVERY, status.changed()).await;
    }
}

/// What the guard remembers between listings.
#[derive(Default)]
pub(super) struct Watch {
    /// Every payment created before this (seconds since 1970, the provider's clock) was listed
    /// and explained, or is among `undecided`.
    since: Option<i64>,
    /// Payments of the week listed that could not be told yet (their attempt open, or the
    /// payment on its way): looked at again at every look, without listing them again.
    undecided: Vec<Value>,
}

/// Why a payment of the week is not explained by the ledger, or `None` when it is; `Err(())`
/// when it cannot be told yet (its attempt is open).
fn verdict(week: &str, payment: &Value, known: &HashMap<i64, Explained>) -> Result<Option<String>, ()> {
    let id = payment["id"].as_str().unwrap_or("?");
    let invoice = payment["metadata"]["invoice_id"].as_str().and_then(|i| i.parse::<i64>().ok());
    let took = payment["amount_received"].as_i64().or_else(|| payment["amount"].as_i64()).unwrap_or(0);
    let Some(invoice) = invoice else {
        return Ok(Some(format!("the provider holds a payment of week {week} without an invoice ({id})")));
    };
    let Some(explained) = known.get(&invoice) else {
        return Ok(Some(format!(
            "the provider holds a payment of invoice {invoice}, which this run does not bill ({id})"
        )));
    };
    if took != explained.amount_minor {
        return Ok(Some(format!(
            "the provider holds a payment of {took} minor units for invoice {invoice} of {} ({id})",
            explained.amount_minor
        )));
    }
    match &explained.recorded {
        Some(recorded) if recorded == id => Ok(None),
        Some(recorded) => Ok(Some(format!(
            "the provider holds a second payment of invoice {invoice} ({id}; the run recorded {recorded})"
        ))),
        None if explained.open => Err(()),
        None => Ok(Some(format!(
            "the provider holds a payment of invoice {invoice} that no attempt of the run made ({id})"
        ))),
    }
}

impl Watch {
    /// One look at the provider's payments of the run's week: the seconds that ended
    /// [`SETTLE_SECONDS`] ago and were not listed yet, in one request when a page holds them,
    /// otherwise each second its own creation-time window listed whole (never a part of the
    /// range cut off at a budget and read again from its start: at a thousand payments a second
    /// that left most unread), side by side, every request within the account's limit; and the
    /// newest page, so that a payment made outside the product a moment ago halts the run
    /// without waiting for its second to settle. `Some(problem)` at the first payment not
    /// explained.
    pub(super) async fn look(&mut self, shared: &Shared) -> anyhow::Result<Option<String>> {
        let week = shared.run.week.as_str();
        let started = shared.run.started_at.timestamp();
        let since = *self.since.get_or_insert(started - SLACK_SECONDS);
        let until = (Utc::now().timestamp() - SETTLE_SECONDS).min(since + MOST_SECONDS);
        let ours =
            |p: &Value| (p["metadata"]["week"] == week && settled(p) != Some(false)).then(|| p.clone());
        let page = |from: i64, until: Option<i64>| {
            let bound = until.map(|t| format!("&created%5Blt%5D={t}")).unwrap_or_default();
            let path = format!("/v1/payment_intents?created%5Bgte%5D={from}{bound}&limit=100");
            async move {
                shared.limiter.until_ready().await;
                shared.client.list_page(&path).await
            }
        };
        // The range in one request when one page holds it (a quiet stretch, or a pause the watch
        // catches up on); the newest page beside it.
        let whole = async {
            if since < until {
                page(since, Some(until)).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (whole, newest) = tokio::join!(whole, page(until.max(since), None));
        let data = |page: &Value| -> Vec<Value> {
            page["data"].as_array().into_iter().flatten().filter_map(ours).collect()
        };
        let newest = data(&newest?);
        let listed = match whole? {
            Some(whole) if whole["has_more"].as_bool().unwrap_or(false) => {
                // Otherwise a window per second, the slack before the run's start too: the week
                // before's run may have ended just before it, and its payments are skipped a
                // second at a time, not paged through.
                let windows: Vec<_> = (since..until).map(|second| (Some(second), Some(second + 1))).collect();
                let pace = (&shared.limiter, WINDOWS_IN_FLIGHT);
                crate::reconcile::list_slices(&shared.client, "/v1/payment_intents", &windows, pace, ours)
                    .await?
            }
            Some(whole) => data(&whole),
            None => Vec::new(),
        };

        // The undecided of earlier looks, each as the provider has it now.
        let mut payments = Vec::with_capacity(listed.len() + self.undecided.len());
        for before in &self.undecided {
            let fresh = match settled(before) {
                None => {
                    shared.limiter.until_ready().await;
                    shared.client.payment_intent(before["id"].as_str().unwrap_or_default()).await?
                }
                Some(_) => before.clone(),
            };
            payments.push(fresh);
        }
        payments.extend(listed);
        let mut undecided = Vec::new();
        if let Some(problem) = explain(shared, week, &payments, Some(&mut undecided)).await? {
            return Ok(Some(problem));
        }
        // The newest: only what is wrong now counts (they are listed again once their second
        // settles).
        if let Some(problem) = explain(shared, week, &newest, None).await? {
            return Ok(Some(problem));
        }
        self.undecided = undecided;
        self.since = Some(until.max(since));
        Ok(None)
    }
}

/// Checks `payments` against the run's ledger: the first that it does not explain, or `None`;
/// the payments that cannot be told yet go to `undecided` (when given).
async fn explain(
    shared: &Shared,
    week: &str,
    payments: &[Value],
    mut undecided: Option<&mut Vec<Value>>,
) -> anyhow::Result<Option<String>> {
    for payments in payments.chunks(EXPLAIN_AT_ONCE) {
        let invoices: Vec<i64> = payments
            .iter()
            .filter_map(|p| p["metadata"]["invoice_id"].as_str().and_then(|i| i.parse().ok()))
            .collect();
        let known = shared.db.charges_explaining(shared.run.id, &invoices).await?;
        for payment in payments {
            let verdict = match settled(payment) {
                Some(true) => verdict(week, payment, &known),
                Some(false) => Ok(None),
                None => Err(()),
            };
            match verdict {
                Ok(None) => {}
                Ok(Some(problem)) => return Ok(Some(problem)),
                Err(()) => {
                    if let Some(undecided) = undecided.as_deref_mut() {
                        undecided.push(payment.clone());
                    }
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment(id: &str, invoice: &str, amount: i64) -> Value {
        json!({ "id": id, "status": "succeeded", "amount_received": amount, "metadata": { "invoice_id": invoice, "week": "2026-W48" } })
    }

    #[test]
    fn each_unexplained_payment_is_named() {
        let known: HashMap<i64, Explained> = [
            (1, Explained { amount_minor: 500, recorded: Some("pi_a".into()), open: false }),
            (2, Explained { amount_minor: 700, recorded: None, open: true }),
            (3, Explained { amount_minor: 900, recorded: None, open: false }),
        ]
        .into_iter()
        .collect();
        let week = "2026-W48";
        assert_eq!(verdict(week, &payment("pi_a", "1", 500), &known), Ok(None));
        let second = verdict(week, &payment("pi_b", "1", 500), &known).unwrap().unwrap();
        assert!(second.contains("second payment of invoice 1"), "{second}");
        let wrong = verdict(week, &payment("pi_a", "1", 501), &known).unwrap().unwrap();
        assert!(wrong.contains("501"), "{wrong}");
        assert_eq!(verdict(week, &payment("pi_c", "2", 700), &known), Err(()), "its attempt is open");
        let unknown = verdict(week, &payment("pi_d", "4", 100), &known).unwrap().unwrap();
        assert!(unknown.contains("does not bill"), "{unknown}");
        let outside = verdict(week, &payment("pi_e", "3", 900), &known).unwrap().unwrap();
        assert!(outside.contains("no attempt of the run made"), "{outside}");
    }
}

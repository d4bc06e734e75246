//! The guard that reads the provider. The other guards compare the database with itself; a
//! charge made outside the product (a stale job, a second deployment of an old version: the
//! incident itself) never reaches the database. While a run works, this guard lists the
//! provider's payments of the run's week as they are made, and halts the run with an alert at
//! the first one its ledger does not explain: a second payment of an invoice, a payment of an
//! invoice the run does not have, or one of the wrong amount.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::*;

/// How often the provider's new payments are listed.
pub(super) const WATCH_EVERY: StdDuration = StdDuration::from_secs(1);

/// How far before the run began the first listing reads, for a difference between clocks.
const SLACK_SECONDS: i64 = 600;

/// The payments of one invoice as the database explains them.
#[derive(Clone, Debug)]
pub struct Explained {
    pub amount_minor: i64,
    /// The payment intent of its recorded success.
    pub recorded: Option<String>,
    /// Whether an attempt is open (its payment may be at the provider, not yet recorded).
    pub open: bool,
}

/// What the guard remembers between listings.
#[derive(Default)]
pub(super) struct Watch {
    /// Payments already found explained.
    explained: HashSet<String>,
    /// Lists from here (seconds since 1970, the provider's clock): no unexplained or undecided
    /// payment is older.
    since: Option<i64>,
    last: Option<std::time::Instant>,
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
    /// Lists the provider's payments made since the last look (once every [`WATCH_EVERY`], at
    /// most a twentieth of the account's limit in pages) and checks each new one of the run's
    /// week against the database. `Some(problem)` at the first one not explained.
    pub(super) async fn look(&mut self, shared: &Shared) -> anyhow::Result<Option<String>> {
        if self.last.is_some_and(|at| at.elapsed() < WATCH_EVERY) {
            return Ok(None);
        }
        self.last = Some(std::time::Instant::now());
        let week = shared.run.week.as_str();
        let since = *self.since.get_or_insert(shared.run.started_at.timestamp() - SLACK_SECONDS);
        let budget = (shared.settings.rate_per_second / 20).max(1) as usize;
        // Newest first; a page at a time up to the budget. What is left is read next time (the
        // start of the range only moves past what was read and explained).
        let mut path = format!("/v1/payment_intents?created[gte]={since}&limit=100");
        let mut payments = Vec::new();
        let mut complete = false;
        for _ in 0..budget {
            shared.limiter.until_ready().await;
            let page = shared.client.list_page(&path).await?;
            let data = page["data"].as_array().cloned().unwrap_or_default();
            let after = data.last().and_then(|p| p["id"].as_str()).map(str::to_owned);
            payments.extend(data);
            match after {
                Some(after) if page["has_more"].as_bool().unwrap_or(false) => {
                    path =
                        format!("/v1/payment_intents?created[gte]={since}&limit=100&starting_after={after}");
                }
                _ => {
                    complete = true;
                    break;
                }
            }
        }
        let ours: Vec<&Value> = payments
            .iter()
            .filter(|p| p["status"] == "succeeded" && p["metadata"]["week"] == week)
            .filter(|p| p["id"].as_str().is_some_and(|id| !self.explained.contains(id)))
            .collect();
        let invoices: Vec<i64> = ours
            .iter()
            .filter_map(|p| p["metadata"]["invoice_id"].as_str().and_then(|i| i.parse().ok()))
            .collect();
        let known = shared.db.charges_explaining(shared.run.id, &invoices).await?;
        let mut oldest_open: Option<i64> = None;
        for payment in ours {
            match verdict(week, payment, &known) {
                Ok(None) => {
                    self.explained.insert(payment["id"].as_str().unwrap_or_default().to_owned());
                }
                Ok(Some(problem)) => return Ok(Some(problem)),
                Err(()) => {
                    let created = payment["created"].as_i64().unwrap_or(since);
                    oldest_open = Some(oldest_open.map_or(created, |o| o.min(created)));
                }
            }
        }
        if complete {
            // Everything up to now was read: the next listing starts at the oldest payment
            // still undecided, or a few seconds back (payments appear in the list in order).
            let newest = payments.iter().filter_map(|p| p["created"].as_i64()).max().unwrap_or(since);
            self.since = Some(oldest_open.unwrap_or(newest - 5).max(since));
        }
        Ok(None)
    }
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

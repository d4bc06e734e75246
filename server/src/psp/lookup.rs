//! Looking a money movement up when its idempotency key can no longer answer. Stripe forgets a
//! key after 24 hours; an attempt older than the key-reuse window is never sent again under its
//! key, which could move the money a second time. The provider's lists are read instead: the
//! customer's payment intents, the driver's transfers, the payment's refunds, from when the
//! attempt began, matched on the metadata every call of the product carries.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::pace::Pace;
use super::stripe::StripeClient;
use super::ProviderError;

/// What the provider's lists say became of a movement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// It was made: the provider's object and the amount it moved. `more` counts any further
    /// movement made for the same item (a duplicate, which halts the run).
    Made { id: String, amount_minor: i64, more: usize },
    /// It was tried and refused (a declined payment, a failed refund): nothing moved.
    Refused { id: String, detail: String },
    /// It is still on its way (a payment processing, a refund pending): look again later.
    Undecided { id: String, status: String },
    /// Nothing was made: a new attempt, under a new key, may go out.
    Nothing,
}

/// Sorts what a list gave for one item into a [`Found`]: successes first, then what is still
/// undecided, then refusals.
fn classify(objects: Vec<Value>, made: fn(&Value) -> Option<&str>) -> Found {
    let id = |o: &Value| o["id"].as_str().unwrap_or("?").to_owned();
    let status = |o: &Value| o["status"].as_str().unwrap_or("").to_owned();
    let succeeded: Vec<&Value> = objects.iter().filter(|o| made(o).is_some()).collect();
    if let Some(first) = succeeded.last() {
        // Lists are newest first: the oldest success is the one the attempt made.
        let amount_minor =
            first["amount_received"].as_i64().or_else(|| first["amount"].as_i64()).unwrap_or(0);
        return Found::Made { id: id(first), amount_minor, more: succeeded.len() - 1 };
    }
    if let Some(open) = objects.iter().find(|o| {
        matches!(status(o).as_str(), "processing" | "pending" | "requires_confirmation" | "requires_capture")
    }) {
        return Found::Undecided { id: id(open), status: status(open) };
    }
    match objects.first() {
        Some(refused) => {
            let error = &refused["last_payment_error"];
            let detail = match error["code"].as_str() {
                Some(code) => format!("{code} {}", error["message"].as_str().unwrap_or("")).trim().to_owned(),
                None => format!("{} is {}", id(refused), status(refused)),
            };
            Found::Refused { id: id(refused), detail }
        }
        None => Found::Nothing,
    }
}

/// Whether an object's metadata names the item: `key` equal to `value`.
fn names(object: &Value, key: &str, value: &str) -> bool {
    object["metadata"][key].as_str() == Some(value)
}

/// A payment intent or refund counts as made once it succeeded.
fn succeeded(object: &Value) -> Option<&str> {
    (object["status"] == "succeeded").then_some("succeeded")
}

impl StripeClient {
    /// Every object of the list at `path` whose metadata has `key` equal to `value`, sorted into
    /// a [`Found`] by `made`.
    async fn find(
        &self,
        path: &str,
        (key, value): (&str, i64),
        limiter: Option<&Pace>,
        made: fn(&Value) -> Option<&str>,
    ) -> Result<Found, ProviderError> {
        let value = value.to_string();
        let mut objects = Vec::new();
        self.list_each(path, limiter, |page| {
            objects.extend(page.into_iter().filter(|o| names(o, key, &value)))
        })
        .await?;
        Ok(classify(objects, made))
    }

    /// The payment of invoice `invoice_id` made for `customer` since `since`, each page within
    /// `limiter`.
    pub async fn find_payment(
        &self,
        customer: &str,
        invoice_id: i64,
        since: DateTime<Utc>,
        limiter: Option<&Pace>,
    ) -> Result<Found, ProviderError> {
        let path = format!("/v1/payment_intents?customer={customer}&created[gte]={}", since.timestamp());
        self.find(&path, ("invoice_id", invoice_id), limiter, succeeded).await
    }

    /// The transfer of payout `payout_id` in `transfer_group` (the week) since `since`, to
    /// whichever account it went (the driver's may have changed since). A transfer exists once it
    /// is made (a reversal is a movement of its own).
    pub async fn find_transfer(
        &self,
        transfer_group: &str,
        payout_id: i64,
        since: DateTime<Utc>,
        limiter: Option<&Pace>,
    ) -> Result<Found, ProviderError> {
        let group: String = url::form_urlencoded::byte_serialize(transfer_group.as_bytes()).collect();
        let path = format!("/v1/transfers?transfer_group={group}&created[gte]={}", since.timestamp());
        self.find(&path, ("payout_id", payout_id), limiter, |o| o["id"].as_str()).await
    }

    /// The refund of refund `refund_id` made on `payment_intent`.
    pub async fn find_refund(
        &self,
        payment_intent: &str,
        refund_id: i64,
        limiter: Option<&Pace>,
    ) -> Result<Found, ProviderError> {
        let path = format!("/v1/refunds?payment_intent={payment_intent}");
        self.find(&path, ("refund_id", refund_id), limiter, succeeded).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payment(id: &str, status: &str) -> Value {
        json!({ "id": id, "status": status, "amount": 1250, "amount_received": 1250 })
    }

    #[test]
    fn nothing_found_is_nothing() {
        assert_eq!(classify(vec![], |o| o["id"].as_str()), Found::Nothing);
    }

    #[test]
    fn a_success_wins_and_the_oldest_is_the_attempts() {
        let found = classify(
            vec![
                payment("pi_new", "succeeded"),
                payment("pi_x", "requires_payment_method"),
                payment("pi_old", "succeeded"),
            ],
            succeeded,
        );
        assert_eq!(found, Found::Made { id: "pi_old".into(), amount_minor: 1250, more: 1 });
    }

    #[test]
    fn processing_is_undecided_and_a_decline_is_refused() {
        let found = classify(vec![payment("pi_1", "processing")], succeeded);
        assert_eq!(found, Found::Undecided { id: "pi_1".into(), status: "processing".into() });
        let mut declined = payment("pi_2", "requires_payment_method");
        declined["last_payment_error"] =
            json!({ "code": "card_declined", "message": "Your card was declined." });
        let found = classify(vec![declined], succeeded);
        assert_eq!(
            found,
            Found::Refused { id: "pi_2".into(), detail: "card_declined Your card was declined.".into() }
        );
    }
}

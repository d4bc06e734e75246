//! The simulator's webhooks: after a payment, refund, transfer or a dispute's change, signed
//! events as Stripe sends them (`Stripe-Signature: t=…,v1=…`, HMAC-SHA256 over `timestamp.body`),
//! delivered in the background and tried again a few times when the receiver does not answer
//! 2xx.
//!
//! The events of one change (a dispute's `charge.dispute.created` and
//! `charge.dispute.funds_withdrawn`) are delivered one after the other, in order; events of
//! different changes travel independently, so, as with Stripe, their order is not guaranteed.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::objects::new_id;
use super::SimConfig;

/// Sends one event of each type in `kinds`, in that order, about `object` (each event's
/// `data.object`), when the simulator has a webhook URL and secret; otherwise nothing.
pub(crate) fn send(config: &SimConfig, object: &Value, kinds: &[&'static str]) {
    let (Some(url), Some(secret)) = (&config.webhook_url, &config.webhook_secret) else { return };
    if kinds.is_empty() {
        return;
    }
    let events = kinds.iter().map(|kind| event(kind, object)).collect();
    deliver(url.clone(), secret.clone(), events);
}

/// A Stripe event of type `kind` about `object`, with an id of its own.
fn event(kind: &str, object: &Value) -> Value {
    json!({
        "id": new_id("evt"),
        "object": "event",
        "type": kind,
        "created": Utc::now().timestamp(),
        "livemode": false,
        "data": { "object": object },
    })
}

/// Delivers `events` to `url` in order, each signed with `secret`: up to four tries a second
/// apart, then it is logged and dropped (as Stripe eventually gives up too) and the next goes.
fn deliver(url: String, secret: String, events: Vec<Value>) {
    tokio::spawn(async move {
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        for event in events {
            if !deliver_one(&client, &url, &secret, &event).await {
                tracing::warn!(event = %event["id"], "psp-sim gave up delivering a webhook");
            }
        }
    });
}

/// Whether the receiver took `event` (answered 2xx) within four tries.
async fn deliver_one(client: &reqwest::Client, url: &str, secret: &str, event: &Value) -> bool {
    let body = event.to_string();
    for attempt in 1..=4 {
        let at = Utc::now().timestamp();
        let signature = psp_signature::sign(secret, at, body.as_bytes());
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header("stripe-signature", format!("t={at},v1={signature}"))
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return true,
            Ok(response) => tracing::debug!(attempt, status = %response.status(), "psp-sim webhook refused"),
            Err(e) => tracing::debug!(attempt, error = %e, "psp-sim webhook not delivered"),
        }
        if attempt < 4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    false
}

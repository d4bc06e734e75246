//! The simulator's webhooks: after a payment, refund or transfer, a signed event as Stripe sends
//! it (`Stripe-Signature: t=…,v1=…`, HMAC-SHA256 over `timestamp.body`), delivered in the
//! background and tried again a few times when the receiver does not answer 2xx.

use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::objects::new_id;

/// The event of an object a request created (`payment_intent`, `refund`, `transfer`).
pub(crate) fn event_for(object: &Value) -> Option<Value> {
    let kind = match (object["object"].as_str()?, object["status"].as_str()) {
        ("payment_intent", Some("succeeded")) => "payment_intent.succeeded",
        ("refund", _) => "refund.created",
        ("transfer", _) => "transfer.created",
        _ => return None,
    };
    Some(json!({
        "id": new_id("evt"),
        "object": "event",
        "type": kind,
        "created": Utc::now().timestamp(),
        "livemode": false,
        "data": { "object": object },
    }))
}

/// Delivers `event` to `url`, signed with `secret`: up to four tries, a second apart, then it is
/// logged and dropped (as Stripe eventually gives up too).
pub(crate) fn deliver(url: String, secret: String, event: Value) {
    tokio::spawn(async move {
        let body = event.to_string();
        let client =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client");
        for attempt in 1..=4 {
            let at = Utc::now().timestamp();
            let signature = psp_signature::sign(&secret, at, body.as_bytes());
            let sent = client
                .post(&url)
                .header("content-type", "application/json")
                .header("stripe-signature", format!("t={at},v1={signature}"))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return,
                Ok(response) => {
                    tracing::debug!(attempt, status = %response.status(), "psp-sim webhook refused")
                }
                Err(e) => tracing::debug!(attempt, error = %e, "psp-sim webhook not delivered"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        tracing::warn!(event = %event["id"], "psp-sim gave up delivering a webhook");
    });
}

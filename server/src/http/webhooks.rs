//! `POST /webhooks/stripe`: the provider's events. Each is verified first (the `Stripe-Signature`
//! header: HMAC-SHA256 of `timestamp.body` with the endpoint's secret, compared in constant time,
//! the timestamp within five minutes), then handled once by its id, by the state it carries (a
//! late or repeated event never moves anything back): a refund, or a transfer to a driver, that
//! finished at the provider after the product's call returned is recorded here, and so is every
//! dispute a card issuer opens (`disputes::webhook`). Refusals and ignored types are answered
//! (400, or 200 for a type the product does not use) and logged once each.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::AppState;

use crate::psp::signature::verify;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// The handler.
pub async fn stripe(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.config.provider.webhook_secret.as_ref() else {
        tracing::warn!("a webhook arrived but STRIPE_WEBHOOK_SECRET is not set; refused");
        return answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "webhooks are not configured" }));
    };
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    if let Err(e) = verify(header, &body, secret.expose_secret(), Utc::now().timestamp()) {
        tracing::warn!(error = %e, "webhook refused");
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": e.to_string(), "field": "Stripe-Signature" }),
        );
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        tracing::warn!("webhook refused: the body is not JSON");
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "the body is not a JSON event", "field": "body" }),
        );
    };
    let (Some(id), Some(kind)) = (event["id"].as_str(), event["type"].as_str()) else {
        tracing::warn!("webhook refused: no id or type");
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "error": "an event needs an id and a type", "field": "body" }),
        );
    };
    match state.db.webhook_seen(id).await {
        Ok(true) => return answer(StatusCode::OK, json!({ "id": id, "outcome": "duplicate" })),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "reading webhook events failed");
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "try again" }));
        }
    }
    let outcome = match handle(&state, kind, &event["data"]["object"]).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // Not recorded: the provider delivers it again.
            tracing::error!(event = id, error = %e, "handling a webhook failed");
            return answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": "try again" }));
        }
    };
    if outcome == "ignored" {
        tracing::info!(event = id, kind, "webhook of a type the product does not use; ignored");
    }
    if let Err(e) =
        state.db.record_webhook(id, kind, event["created"].as_i64().unwrap_or_default(), outcome).await
    {
        tracing::error!(event = id, error = %e, "recording a webhook failed");
    }
    answer(StatusCode::OK, json!({ "id": id, "outcome": outcome }))
}

/// What an event does: its object handed to the service that owns it, which decides by the
/// state the object carries (a late or repeated event never moves anything back).
async fn handle(state: &AppState, kind: &str, object: &Value) -> Result<&'static str, crate::error::Error> {
    let ours = |key: &str| object["metadata"][key].as_str().and_then(|v| v.parse::<i64>().ok());
    let provider_id = object["id"].as_str().unwrap_or_default();
    match kind {
        "refund.created" | "refund.updated" | "charge.refund.updated" | "refund.failed" => {
            let Some(refund_id) = ours("refund_id") else { return Ok("not ours") };
            let status = object["status"].as_str().unwrap_or_default();
            crate::refunds::provider_reports(&state.db, refund_id, provider_id, status).await
        }
        // A transfer whose answer never came back: the event says it was made.
        "transfer.created" | "transfer.updated" => {
            let Some(payout_id) = ours("payout_id") else { return Ok("not ours") };
            if provider_id.is_empty() {
                return Ok("no change");
            }
            let amount = object["amount"].as_i64();
            crate::run::payouts::provider_reports(&state.db, payout_id, provider_id, amount).await
        }
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => crate::disputes::webhook(&state.db, object).await,
        _ => Ok("ignored"),
    }
}

//! `POST /webhooks/stripe`: the provider's events. Each is verified first (the `Stripe-Signature`
//! header: HMAC-SHA256 of `timestamp.body` with the endpoint's secret, compared in constant time,
//! the timestamp within five minutes), then handled once by its id, by the state it carries (a
//! late or repeated event never moves anything back): a refund, or a transfer to a driver, that
//! finished at the provider after the product's call returned is recorded here. Refusals and ignored types are answered
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
use app::model::money::{BillingCurrency, Money};

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

/// What an event does, decided by the state of the object it carries.
async fn handle(state: &AppState, kind: &str, object: &Value) -> anyhow::Result<&'static str> {
    match kind {
        "refund.created" | "refund.updated" | "charge.refund.updated" | "refund.failed" => {
            let Some(refund_id) =
                object["metadata"]["refund_id"].as_str().and_then(|v| v.parse::<i64>().ok())
            else {
                return Ok("not ours");
            };
            let Some(refund) = state.db.refund(refund_id).await? else {
                return Ok("not ours");
            };
            let provider_id = object["id"].as_str().unwrap_or_default();
            match object["status"].as_str() {
                Some("succeeded") => {
                    let ledger = crate::refunds::ledger_of(&refund)?;
                    let changed = state.db.refund_confirmed(refund.id, provider_id, &ledger).await?;
                    Ok(if changed { "refund succeeded" } else { "no change" })
                }
                Some(status @ ("failed" | "canceled")) => {
                    let detail = format!("the provider reports refund {provider_id} {status}");
                    let retry = Utc::now() + chrono::Duration::seconds(60);
                    let changed = state.db.refund_failed_at_provider(refund.id, &detail, retry).await?;
                    Ok(if changed { "refund failed" } else { "no change" })
                }
                _ => Ok("no change"),
            }
        }
        // A transfer whose answer never came back: the event says it was made.
        "transfer.created" | "transfer.updated" => {
            let Some(payout_id) =
                object["metadata"]["payout_id"].as_str().and_then(|v| v.parse::<i64>().ok())
            else {
                return Ok("not ours");
            };
            let Some((driver, week, amount, currency, key)) =
                state.db.payout_awaiting_answer(payout_id).await?
            else {
                return Ok("no change");
            };
            let Some(transfer_id) = object["id"].as_str() else { return Ok("no change") };
            if object["amount"].as_i64() != Some(amount) {
                tracing::error!(
                    payout_id,
                    transfer_id,
                    "a transfer event for another amount than the payout's; left to the run's guards"
                );
                return Ok("amount differs");
            }
            let amount = Money::from_minor(amount, BillingCurrency::from_code(&currency)?);
            let ledger = crate::run::transfer_ledger(payout_id, &driver, amount, &week)?;
            let recorded = state
                .db
                .record_success(crate::db::runs::Work::Transfer, payout_id, &key, transfer_id, Some(&ledger))
                .await?;
            Ok(if recorded { "transfer made" } else { "no change" })
        }
        _ => Ok("ignored"),
    }
}

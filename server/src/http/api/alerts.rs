//! Alerts: the list, acknowledging and resolving, a test alert, and where alerts go.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertsQuery {
    /// Only the messages in this state: `queued`, `retrying`, `sent` or `failed`.
    #[param(pattern = "^(queued|retrying|sent|failed)$")]
    messages: Option<String>,
}

/// Open and past alerts, the latest messages with their delivery state (queued, retrying, sent, failed with the reason), counts by state (every role; the channels for admins)
///
/// The messages are those of one state when `messages` asks for it.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertsQuery),
    responses((status = 200, description = "{open, past, messages, messages_state, counts, settings, smtp_configured}"),
        (status = 422, description = "An unknown message state, naming the field", body = ErrorBody)))]
pub(super) async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ViewOverview)?;
    let messages = query.messages.unwrap_or_default();
    let page = crate::alerts::page(&state.db, &state.config, principal, &messages).await?;
    Ok(Json(page).into_response())
}

/// acknowledge (someone is on it: no escalation) or resolve an alert (every role; audited)
#[utoipa::path(post, path = "/api/v1/alerts/{id}/{action}", tag = "alerts",
    params(("id" = i64, Path, description = "The alert's id"),
        ("action" = String, Path, description = "`acknowledge` or `resolve`",
            pattern = "^(acknowledge|resolve)$")),
    responses((status = 200, description = "the alert"),
        (status = 404, description = "No such alert, or an unknown action", body = ErrorBody),
        (status = 409, description = "The alert is not in a state the action applies to", body = ErrorBody)))]
pub(super) async fn settle_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::HandleAlerts)?;
    let resolve = match action.as_str() {
        "acknowledge" => false,
        "resolve" => true,
        _ => return Err(AppError::NotFound(format!("alert action {action:?}")).into()),
    };
    Ok(Json(crate::alerts::settle(&state.db, &Actor::staff(principal), id, resolve).await?).into_response())
}

/// Send a test alert to the first contact (admin)
#[utoipa::path(post, path = "/api/v1/alerts/test", tag = "alerts",
    responses((status = 201, description = "the alert"), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(super) async fn test_alert(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let alert = crate::alerts::send_test(&state.db, &Actor::staff(principal)).await?;
    Ok((StatusCode::CREATED, Json(alert)).into_response())
}

/// Where alerts go (admin)
#[utoipa::path(get, path = "/api/v1/settings/alerts", tag = "alerts",
    responses((status = 200, description = "{webhook_url, email, second_webhook_url, second_email, escalate_after_seconds, not_started_after_minutes, customer_notices, dispute_threshold}"),
        (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(super) async fn alert_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageSettings)?;
    Ok(Json(crate::alerts::settings(&state.db).await?).into_response())
}

/// Change it (admin); a wrong value is refused naming its field and nothing is stored
#[utoipa::path(put, path = "/api/v1/settings/alerts", tag = "alerts",
    request_body(content = serde_json::Value, description = "{webhook_url, email, second_webhook_url, second_email, escalate_after_seconds, not_started_after_minutes, customer_notices, dispute_threshold}: webhook URLs (Slack-compatible, JSON POST with `text`) and addresses, empty for none; seconds before an unacknowledged alert goes to the second contact (0: never); minutes after the scheduled moment at which a run that has not started alerts; customer_notices a boolean (receipts, refund and declined-charge notices by email); dispute_threshold the disputes on one week's charges that raise an alert (0: never)"),
    responses((status = 200, description = "The settings"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn set_alert_settings(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::alerts::AlertSettings>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let settings = body(payload)?;
    Ok(Json(crate::alerts::save_settings(&state.db, &Actor::staff(principal), settings).await?)
        .into_response())
}

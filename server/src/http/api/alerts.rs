//! Alerts: the list, acknowledging and resolving, a test alert, and where alerts go.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, ApiError, Caller};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertsQuery {
    /// Only the messages in this state.
    messages: Option<String>,
}

/// `GET /api/v1/alerts?messages=`: open and past alerts and the latest messages with their
/// delivery state (of one state, when asked).
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

/// `POST /api/v1/alerts/:id/acknowledge` or `/resolve`.
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

/// `POST /api/v1/alerts/test` (admin): a test alert to the first contact.
pub(super) async fn test_alert(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let alert = crate::alerts::send_test(&state.db, &Actor::staff(principal)).await?;
    Ok((StatusCode::CREATED, Json(alert)).into_response())
}

/// `GET /api/v1/settings/alerts` (admin): where alerts go.
pub(super) async fn alert_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageSettings)?;
    Ok(Json(crate::alerts::settings(&state.db).await?).into_response())
}

/// `PUT /api/v1/settings/alerts` (admin).
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

//! Refunds: refunding an invoice, the refunds awaiting approval, the decision, the limits.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_id, save_setting, ApiError, Caller};
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// `POST /api/v1/invoices/:id/refunds` `{"amount","reason","request_id","note"}` (and optional
/// `lines`, `user_id`): 201 when the refund is made, 202 when it waits for approval, 200 when
/// this `request_id` made it before; 422 naming the field otherwise, nothing changed.
pub(super) async fn refund_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Result<Json<app::model::refund::NewRefund>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Refund)?;
    let id = path_id(&id)?;
    let new = body(payload)?;
    let answer =
        crate::refunds::request(&state.db, &state.config, state.provider.as_ref(), principal, id, new)
            .await?;
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::OK);
    Ok((status, Json(answer)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundsQuery {
    state: Option<String>,
}

/// `GET /api/v1/refunds?state=awaiting_approval`: refunds waiting for a decision (finance, admin).
pub(super) async fn list_refunds(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<RefundsQuery>,
) -> Result<Response, ApiError> {
    caller.may(Action::ApproveRefund)?;
    if query.state.as_deref().is_some_and(|s| s != "awaiting_approval") {
        return Err(AppError::invalid("state", "only awaiting_approval can be listed").into());
    }
    let refunds = crate::refunds::awaiting(&state.db).await?;
    Ok(Json(json!({ "refunds": refunds })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/refunds/:id/approve|reject` `{"note"}`: finance or admin, never the requester.
pub(super) async fn decide_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, decision)): Path<(String, String)>,
    payload: Option<Json<Decision>>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRefund)?;
    let id = path_id(&id)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(AppError::NotFound(format!("refund action {other:?}")).into()),
    };
    let note = payload.map(|Json(d)| d.note.unwrap_or_default()).unwrap_or_default();
    let refund =
        crate::refunds::decide(&state.db, state.provider.as_ref(), principal, id, approve, &note).await?;
    Ok(Json(refund).into_response())
}

/// `GET /api/v1/settings/refund-limits`: what support refunds without a second person.
pub(super) async fn refund_limits(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::LookupUsers)?;
    Ok(Json(crate::refunds::limits(&state.db, state.config.currency).await?).into_response())
}

/// `PUT /api/v1/settings/refund-limits` (admin): both limits, in major units.
pub(super) async fn set_refund_limits(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::refund::RefundLimits>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let limits = body(payload)?;
    limits.parse(state.config.currency).map_err(|(field, message)| AppError::invalid(field, message))?;
    save_setting(&state, principal, app::model::refund::RefundLimits::KEY, &limits).await
}

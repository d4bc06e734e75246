//! Refunds: refunding an invoice, the refunds awaiting approval, the decision, the limits.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_id, save_setting, ApiError, Caller, ErrorBody};
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// Refund (part of) a charged invoice, once per request_id. Support above the refund limits waits for a finance or admin approval.
///
/// 201 when the refund is made, 202 when it waits for approval, 200 when this `request_id` made
/// it before; 422 naming the field otherwise, nothing changed.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/refunds", tag = "refunds",
    params(("id" = i64, Path, description = "The invoice's id")),
    request_body(content = serde_json::Value, description = "{amount, reason, request_id, note, lines, user_id}: \
        reason (required) one of duplicate, fraudulent, requested_by_customer, service_issue, other; \
        request_id (required) made when the form opens, the same id again is the same refund; \
        amount in major units, at most the currency's decimals, may be left out when lines are given; \
        note optional; lines the ride ids of the invoice's lines refunded; \
        user_id, when given, the customer the invoice must belong to"),
    responses((status = 201, description = "{outcome: created, refund} (refund.state: pending, succeeded or failed)"),
        (status = 202, description = "{outcome: awaiting_approval, refund}"),
        (status = 200, description = "{outcome: existing, refund}: this request_id made it before"),
        (status = 404, description = "No such invoice", body = ErrorBody),
        (status = 409, description = "A conflict with the current state, such as this request_id having made a different refund", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field; nothing changed", body = ErrorBody)))]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundsQuery {
    /// `awaiting_approval`, the only state listed.
    #[param(pattern = "^awaiting_approval$")]
    state: Option<String>,
}

/// Refunds waiting for approval (finance, admin)
#[utoipa::path(get, path = "/api/v1/refunds", tag = "refunds", params(RefundsQuery),
    responses((status = 200, description = "{refunds: [...]}"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 422, description = "A state other than awaiting_approval", body = ErrorBody)))]
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

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    /// Why; required to reject.
    #[serde(default)]
    note: Option<String>,
}

/// approve or reject a refund waiting for approval (finance, admin; never one's own); {note}, required to reject
#[utoipa::path(post, path = "/api/v1/refunds/{id}/{decision}", tag = "refunds",
    params(("id" = i64, Path, description = "The refund's id"),
        ("decision" = String, Path, description = "`approve` or `reject`", pattern = "^(approve|reject)$")),
    request_body = Option<Decision>,
    responses((status = 200, description = "the refund"),
        (status = 403, description = "Neither finance nor admin, or the caller's own request", body = ErrorBody),
        (status = 404, description = "No such refund, or an unknown decision", body = ErrorBody),
        (status = 409, description = "The refund is not waiting for approval", body = ErrorBody),
        (status = 422, description = "A refused note: missing on a rejection, or too long", body = ErrorBody)))]
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

/// What support refunds without a second person
#[utoipa::path(get, path = "/api/v1/settings/refund-limits", tag = "refunds",
    responses((status = 200, description = "{support_per_refund, support_per_day} in major units")))]
pub(super) async fn refund_limits(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::LookupUsers)?;
    Ok(Json(crate::refunds::limits(&state.db, state.config.currency).await?).into_response())
}

/// Change the refund limits (admin; audited)
///
/// Both limits, in major units.
#[utoipa::path(put, path = "/api/v1/settings/refund-limits", tag = "refunds",
    request_body(content = serde_json::Value, description = "{support_per_refund, support_per_day}: \
        strings in major units, the largest single refund support makes alone and the most support \
        refunds alone per day (the business time zone's calendar day)"),
    responses((status = 200, description = "the limits"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
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

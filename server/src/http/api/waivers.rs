//! Waivers of a draft week's lines: asking for one, listing a week's, deciding one that waits for
//! approval, withdrawing one. The rules are in `crate::waivers`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_id, path_week, ApiError, Caller, ErrorBody};
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// Waive a line of a draft week's invoice, or the whole invoice, once per request_id. Support above the per-refund limit waits for a finance or admin approval.
///
/// 201 when the waiver applies now (the draft is recomputed: the invoice's total, the week's
/// totals and its content hash drop by the line), 202 when it waits for approval, 200 when this
/// `request_id` made it before; 409 naming `week` once the week is approved (refund the invoice
/// instead), 422 naming the field otherwise, nothing changed.
#[utoipa::path(post, path = "/api/v1/weeks/{week}/waivers", tag = "waivers",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    request_body(content = serde_json::Value, description = "{user_id, ride_id, part, reason, note, request_id}: \
        user_id (required) the passenger; part (required) ride_share (their share of a ride they rode), \
        no_show_fee (the fee of a ride they did not show up for) or invoice (every line of theirs in the week); \
        ride_id the line's ride, null or left out for part invoice; \
        reason (required) one of driver_no_show, service_issue, duplicate_ride, goodwill, other; \
        note at most 1,000 characters, required with reason other; \
        request_id (required) made when the form opens, the same id again is the same waiver"),
    responses((status = 201, description = "{outcome: applied, waiver}"),
        (status = 202, description = "{outcome: awaiting_approval, waiver}"),
        (status = 200, description = "{outcome: existing, waiver}: this request_id made it before"),
        (status = 409, description = "The week is approved (field week), the line is already waived, or this request_id made another waiver", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field; nothing changed", body = ErrorBody)))]
pub(super) async fn waive(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<app::model::waiver::NewWaiver>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Waive)?;
    let week = path_week(&week)?;
    let new = body(payload)?;
    let answer =
        crate::waivers::request(&state.db, (&state.config, &state.drafts), principal, week, new).await?;
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::OK);
    Ok((status, Json(answer)).into_response())
}

/// The week's waivers, every state, oldest first
#[utoipa::path(get, path = "/api/v1/weeks/{week}/waivers", tag = "waivers",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 200, description = "{week, waivers: [{id, request_id, week, user_id, ride_id, part, amount, reason, note, state, requested_by, requested_at, decided_by, decided_at, decision_note, line}]}"),
        (status = 422, description = "Not a week, naming the field", body = ErrorBody)))]
pub(super) async fn list_waivers(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let week = path_week(&week)?;
    let waivers = crate::waivers::list(&state.db, &state.config, week, None).await?;
    Ok(Json(json!({ "week": week, "waivers": waivers })).into_response())
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Decision {
    /// Why; required to reject.
    #[serde(default)]
    note: Option<String>,
}

/// approve (it applies now) or reject a waiver waiting for approval (finance, admin; never one's own); {note}, required to reject
#[utoipa::path(post, path = "/api/v1/waivers/{id}/{decision}", tag = "waivers",
    params(("id" = i64, Path, description = "The waiver's id"),
        ("decision" = String, Path, description = "`approve` or `reject`", pattern = "^(approve|reject)$")),
    request_body = Option<Decision>,
    responses((status = 200, description = "the waiver"),
        (status = 403, description = "Neither finance nor admin, or the caller's own request", body = ErrorBody),
        (status = 404, description = "No such waiver, or an unknown decision", body = ErrorBody),
        (status = 409, description = "Its week is approved (field week), or it is not waiting for approval (field waiver)", body = ErrorBody),
        (status = 422, description = "A refused note: missing on a rejection, or too long", body = ErrorBody)))]
pub(super) async fn decide_waiver(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, decision)): Path<(String, String)>,
    payload: Option<Json<Decision>>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveWaiver)?;
    let id = path_id(&id)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(AppError::NotFound(format!("waiver action {other:?}")).into()),
    };
    let note = payload.map(|Json(d)| d.note.unwrap_or_default()).unwrap_or_default();
    let waiver =
        crate::waivers::decide(&state.db, (&state.config, &state.drafts), principal, id, approve, &note)
            .await?;
    Ok(Json(waiver).into_response())
}

/// Withdraw a waiver of a draft week, applied or waiting: its line is charged again (the requester, or finance or admin)
#[utoipa::path(delete, path = "/api/v1/waivers/{id}", tag = "waivers",
    params(("id" = i64, Path, description = "The waiver's id")),
    request_body = Option<Decision>,
    responses((status = 200, description = "the waiver, withdrawn"),
        (status = 403, description = "Someone else's waiver, and the caller is neither finance nor admin", body = ErrorBody),
        (status = 404, description = "No such waiver", body = ErrorBody),
        (status = 409, description = "Its week is approved (field week), or it was rejected or withdrawn already (field waiver)", body = ErrorBody)))]
pub(super) async fn withdraw_waiver(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Option<Json<Decision>>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Waive)?;
    let id = path_id(&id)?;
    let note = payload.map(|Json(d)| d.note.unwrap_or_default()).unwrap_or_default();
    let waiver =
        crate::waivers::withdraw(&state.db, (&state.config, &state.drafts), principal, id, &note).await?;
    Ok(Json(waiver).into_response())
}

//! Reconciling a week with the provider: the latest result, a new one, repair, acknowledge.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_week, ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// The week's latest reconciliation with the provider: matched count, the unmatched items (provider only, ledger only, amount mismatch; each with user, invoice or payout, attempt key) and the stray charges with their repair refunds (finance, admin)
#[utoipa::path(get, path = "/api/v1/reconciliations/{week}", tag = "reconciliations",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 200, description = "{id, week, ran_at, ran_by, matched, unmatched, items, stray, acknowledged_by}"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 404, description = "The week was never reconciled", body = ErrorBody),
        (status = 422, description = "Not a week", body = ErrorBody)))]
pub(super) async fn latest_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let latest = crate::reconcile::latest(&state.db, &week).await?;
    let found = latest.ok_or_else(|| AppError::NotFound(format!("a reconciliation of {week}")))?;
    Ok(Json(found).into_response())
}

/// Reconcile the week with the provider now (finance, admin)
#[utoipa::path(post, path = "/api/v1/reconciliations/{week}", tag = "reconciliations",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 201, description = "the reconciliation"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 422, description = "Not a week, naming the field", body = ErrorBody)))]
pub(super) async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let result = crate::reconcile::run(
        &state.db,
        state.required_provider()?,
        state.config.currency,
        &week,
        &principal.staff.email,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RepairBody {
    /// The stray charges the reviewer saw: exactly those awaiting repair.
    payment_intents: Vec<String>,
}

/// Approve the proposed repair: {payment_intents} exactly as reviewed; each stray charge is recorded in the ledger and refunded once through the refund path; approving again changes nothing
///
/// 409 when the list changed since it was reviewed.
#[utoipa::path(post, path = "/api/v1/reconciliations/{week}/repair", tag = "reconciliations",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")), request_body = RepairBody,
    responses((status = 200, description = "the reconciliation with the repair refunds"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 409, description = "The stray charges changed since they were reviewed", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn repair(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<RepairBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let body = body(payload)?;
    let result = crate::reconcile::repair(
        &state.db,
        state.provider.as_ref(),
        &Actor::staff(principal),
        &week,
        &body.payment_intents,
    )
    .await?;
    Ok(Json(result).into_response())
}

/// Acknowledge the latest reconciliation's mismatches (the dashboard banner goes; audited)
///
/// The result stays.
#[utoipa::path(post, path = "/api/v1/reconciliations/{week}/acknowledge", tag = "reconciliations",
    params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 200, description = "the reconciliation"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 404, description = "The week was never reconciled", body = ErrorBody)))]
pub(super) async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let result = crate::reconcile::acknowledge(&state.db, principal, &week).await?;
    Ok(Json(result).into_response())
}

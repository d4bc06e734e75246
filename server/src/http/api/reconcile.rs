//! Reconciling a week with the provider: the latest result, a new one, repair, acknowledge.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_week, ApiError, Caller};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// `GET /api/v1/reconciliations/:week`: the week's latest reconciliation (finance, admin).
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

/// `POST /api/v1/reconciliations/:week`: reconciles the week with the provider now.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RepairBody {
    /// The stray charges the reviewer saw: exactly those awaiting repair.
    payment_intents: Vec<String>,
}

/// `POST /api/v1/reconciliations/:week/repair` `{"payment_intents"}`: refunds the reviewed stray
/// charges once each (409 if the list changed since it was reviewed).
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

/// `POST /api/v1/reconciliations/:week/acknowledge`: the latest reconciliation's mismatches are
/// known (the dashboard's banner goes; the result stays).
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

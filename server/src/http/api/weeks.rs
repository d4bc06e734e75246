//! A billing week: its preview, its approval, and the preview's anomaly thresholds.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_week, save_setting, ApiError, Caller};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// `GET /api/v1/weeks/:week/preview`: the same JSON as `billing preview --format json`.
pub(super) async fn week_preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let week = path_week(&week)?;
    let body = crate::preview::preview_json(&state.db, &state.config, week)
        .await
        .map_err(crate::error::Error::from)?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Approval {
    /// The `content_hash` of the preview the approver reviewed.
    content_hash: String,
}

/// `POST /api/v1/weeks/:week/approve` `{"content_hash"}`: freezes the week's invoices and
/// payouts. 201 when this call approved it, 200 when the same content was approved before, 409
/// when the preview changed since it was reviewed.
pub(super) async fn approve_week(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<Approval>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let week = path_week(&week)?;
    let approval = body(payload)?;
    let approved = crate::preview::approve(
        &state.db,
        &state.config,
        &Actor::staff(principal),
        week,
        &approval.content_hash,
    )
    .await
    .map_err(crate::error::Error::from)?;
    let (status, stored) = match approved {
        crate::db::weeks::Approved::Now(s) => (StatusCode::CREATED, s),
        crate::db::weeks::Approved::Before(s) => (StatusCode::OK, s),
    };
    Ok((
        status,
        Json(json!({
            "week": stored.week,
            "status": stored.status.as_str(),
            "content_hash": stored.content_hash,
            "approved_at": stored.approved_at,
            "approved_by": stored.approved_by,
            "invoices": stored.totals.invoices,
            "charged": stored.totals.charged.to_string(),
            "currency": stored.currency.code(),
        })),
    )
        .into_response())
}

/// `GET /api/v1/settings/anomaly-thresholds`: when the preview flags an invoice or a week.
pub(super) async fn anomaly_thresholds(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let (_, thresholds) =
        crate::preview::settings(&state.db, &state.config).await.map_err(crate::error::Error::from)?;
    Ok(Json(thresholds).into_response())
}

/// `PUT /api/v1/settings/anomaly-thresholds` (admin): every field, each checked; drafts are
/// recomputed with the new thresholds the next time they are opened.
pub(super) async fn set_anomaly_thresholds(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::preview::AnomalyThresholds>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let thresholds = body(payload)?;
    thresholds.validate().map_err(|(field, message)| AppError::invalid(field, message))?;
    save_setting(&state, principal, app::model::preview::AnomalyThresholds::KEY, &thresholds).await
}

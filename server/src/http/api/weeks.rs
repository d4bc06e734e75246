//! A billing week: its preview, its approval, and the preview's anomaly thresholds.

use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_week, save_setting, ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// The week's invoices and payouts as the run will charge and pay them (any staff)
///
/// The same JSON as `billing preview --format json`, with the week's waivers.
#[utoipa::path(get, path = "/api/v1/weeks/{week}/preview", tag = "weeks", params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    responses((status = 200, description = "{week, currency, status, content_hash, totals, anomalies, invoices, payouts, payment_gaps: {no_payment_method, no_payout_account, passengers, drivers}, waivers}"),
        (status = 422, description = "Not a week, naming the field", body = ErrorBody)))]
pub(super) async fn week_preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let week = path_week(&week)?;
    // Refusals come before the answer starts; then the JSON goes out a page at a time as it is
    // read, in flat memory whatever the week's size. A failure after that breaks the answer off.
    let stored = state
        .drafts
        .refresh(&state.db, &state.config, week, crate::preview::DRAFT_PATIENCE)
        .await
        .map_err(crate::error::Error::from)?;
    let (chunks, written) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let producer = tokio::spawn(async move {
        crate::preview::write_json(&state.db, &state.config, &stored, crate::preview::JSON_PAGE, chunks).await
    });
    let body =
        futures::stream::unfold((written, Some(producer)), move |(mut written, producer)| async move {
            if let Some(chunk) = written.recv().await {
                return Some((Ok(bytes::Bytes::from(chunk)), (written, producer)));
            }
            let failed = match producer?.await {
                Ok(Ok(())) => return None,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!(week = %week, error = %failed, "the preview's JSON broke off");
            Some((Err(std::io::Error::other(failed)), (written, None)))
        });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], axum::body::Body::from_stream(body))
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    /// Where the page starts: the `next_after` of the page before (empty: the first page).
    after: Option<String>,
    /// How many, from 1 to 10,000 (1,000 when not given).
    limit: Option<i64>,
}

/// One page of the week's invoices, with their lines, as the preview writes them (any staff)
///
/// `{week, currency, status, content_hash, invoices, next_after}`; `next_after` is where the next
/// page starts, null on the last. A whole week is read page by page in flat memory on both sides.
#[utoipa::path(get, path = "/api/v1/weeks/{week}/invoices", tag = "weeks", params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$"), PageQuery),
    responses((status = 200, description = "{week, currency, status, content_hash, invoices, next_after}"),
        (status = 422, description = "A bad week, limit or cursor, naming the field", body = ErrorBody)))]
pub(super) async fn week_invoices(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    preview_page(state, caller, &week, page, crate::preview::PageOf::Invoices).await
}

/// One page of the week's payouts, as the preview writes them (any staff)
///
/// `{week, currency, status, content_hash, payouts, next_after}`, as the invoices' pages.
#[utoipa::path(get, path = "/api/v1/weeks/{week}/payouts", tag = "weeks", params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$"), PageQuery),
    responses((status = 200, description = "{week, currency, status, content_hash, payouts, next_after}"),
        (status = 422, description = "A bad week, limit or cursor, naming the field", body = ErrorBody)))]
pub(super) async fn week_payouts(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    preview_page(state, caller, &week, page, crate::preview::PageOf::Payouts).await
}

async fn preview_page(
    state: AppState,
    caller: Caller,
    week: &str,
    page: Result<Query<PageQuery>, QueryRejection>,
    of: crate::preview::PageOf,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let week = path_week(week)?;
    // A limit that is not a number, or another parameter, names what is wrong.
    let Query(page) = page.map_err(|e| {
        let text = e.body_text();
        let field = if !text.contains("unknown field") && text.contains("limit") { "limit" } else { "query" };
        AppError::invalid(field, format!("{text}: after and limit (a number) are the parameters"))
    })?;
    let after = page.after.unwrap_or_default();
    let body =
        crate::preview::page_json(&state.db, &state.config, week, of, &after, page.limit.unwrap_or(1_000))
            .await?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Approval {
    /// The `content_hash` of the preview the approver reviewed.
    content_hash: String,
}

/// Freeze the week's preview: {content_hash} of the preview reviewed (finance, admin)
///
/// 201 when this call approved it, 200 when the same content was approved before, 409 when the
/// preview changed since it was reviewed.
#[utoipa::path(post, path = "/api/v1/weeks/{week}/approve", tag = "weeks", params(("week" = String, Path, description = "A billing week, e.g. 2026-W48", pattern = "^[0-9]{4}-W[0-9]{2}$")),
    request_body = Approval,
    responses((status = 200, description = "Approved before with this content"),
        (status = 201, description = "Approved now"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 409, description = "The preview changed since it was reviewed (content_hash, week), or a waiver of the week waits for a decision (week)", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn approve_week(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<Approval>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let week = path_week(&week)?;
    let approval = body(payload)?;
    let approved = crate::preview::approve_detached(
        &state.db,
        &state.config,
        Actor::staff(principal),
        week,
        approval.content_hash,
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

/// When the preview flags an invoice or a week (any staff)
#[utoipa::path(get, path = "/api/v1/settings/anomaly-thresholds", tag = "weeks",
    responses((status = 200, description = "{invoice_vs_average_pct, lookback_weeks, week_change_pct, max_distance_km, max_speed_kmh}")))]
pub(super) async fn anomaly_thresholds(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let thresholds = crate::preview::thresholds(&state.db).await.map_err(crate::error::Error::from)?;
    Ok(Json(thresholds).into_response())
}

/// Change them (admin); every field checked
///
/// Drafts are recomputed with the new thresholds the next time they are opened.
#[utoipa::path(put, path = "/api/v1/settings/anomaly-thresholds", tag = "weeks",
    request_body(content = serde_json::Value, description = "Every field, non-negative integers: \
        {invoice_vs_average_pct (an invoice this percentage of the passenger's average is high; 300 = three times), \
        lookback_weeks (the earlier weeks that make the averages), week_change_pct (the week's total is \
        unusual beyond this change from the recent average), max_distance_km, max_speed_kmh (a longer \
        or faster ride is implausible)}"),
    responses((status = 200, description = "The thresholds"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
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

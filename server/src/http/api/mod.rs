//! The staff JSON API under `/api/v1`: personal access tokens (or the dashboard session, with
//! CSRF protection), the same role table as the dashboard, JSON errors that name the field.
//!
//! This file holds the route table, the error type, the caller and the helpers several resources
//! share; each resource's handlers are in their own file.

mod alerts;
mod api_keys;
mod customers;
mod reconcile;
mod refunds;
mod reports;
mod runs;
mod staff;
mod weeks;

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::authenticate::json_error;
use super::AppState;
use crate::db::audit::Actor;
use app::api::AppError;
use app::auth::{authorize, Action};
use app::model::staff::Principal;

/// The `/api/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/staff", get(staff::list_staff).post(staff::add_staff))
        .route("/api/v1/staff/{id}/disable", post(staff::disable_staff))
        .route("/api/v1/weeks/{week}/preview", get(weeks::week_preview))
        .route("/api/v1/weeks/{week}/approve", post(weeks::approve_week))
        .route("/api/v1/runs/{id}", get(runs::run_status))
        .route("/api/v1/runs/{id}/stream", get(runs::run_stream))
        .route("/api/v1/runs/{id}/{action}", post(runs::control_run))
        .route("/api/v1/runs/{id}/payouts/{payout_id}/retry", post(runs::retry_payout))
        .route("/api/v1/runs/{id}/held/{kind}/{item}/look-again", post(runs::look_again))
        .route("/api/v1/runs/{id}/held/{kind}/{item}/not-made", post(runs::mark_not_made))
        .route("/api/v1/settings/run-schedule", get(runs::run_schedule).put(runs::set_run_schedule))
        .route("/api/v1/settings/run", get(runs::run_settings).put(runs::set_run_settings))
        .route("/api/v1/settings/alerts", get(alerts::alert_settings).put(alerts::set_alert_settings))
        .route("/api/v1/alerts", get(alerts::alerts))
        .route("/api/v1/alerts/test", post(alerts::test_alert))
        .route("/api/v1/alerts/{id}/{action}", post(alerts::settle_alert))
        .route(
            "/api/v1/settings/anomaly-thresholds",
            get(weeks::anomaly_thresholds).put(weeks::set_anomaly_thresholds),
        )
        .route("/api/v1/users", get(customers::search_users).post(super::rides::add_users))
        .route("/api/v1/users/{id}", get(customers::customer))
        .route("/api/v1/users/{id}/charges", get(customers::customer_charges))
        .route("/api/v1/invoices/{id}", get(customers::invoice))
        .route("/api/v1/invoices/{id}/refunds", post(refunds::refund_invoice))
        .route("/api/v1/refunds", get(refunds::list_refunds))
        .route("/api/v1/refunds/{id}/{decision}", post(refunds::decide_refund))
        .route("/api/v1/settings/refund-limits", get(refunds::refund_limits).put(refunds::set_refund_limits))
        .route("/api/v1/reports/{week}", get(reports::report))
        .route(
            "/api/v1/reconciliations/{week}",
            get(reconcile::latest_reconciliation).post(reconcile::reconcile),
        )
        .route("/api/v1/reconciliations/{week}/repair", post(reconcile::repair))
        .route("/api/v1/reconciliations/{week}/acknowledge", post(reconcile::acknowledge))
        .route("/api/v1/api-keys", get(api_keys::list_api_keys).post(api_keys::create_api_key))
        .route("/api/v1/api-keys/{id}/revoke", post(api_keys::revoke_api_key))
        .route(
            "/api/v1/rides",
            post(super::rides::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(super::security::MAX_RIDES_BODY_BYTES)),
        )
}

/// An error answered as `{"error": "...", "field": "..."}`.
pub enum ApiError {
    App(AppError),
    /// A body that is not JSON (400), not the expected shape (422) or not labelled JSON (415).
    Body(JsonRejection),
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError::App(error)
    }
}

impl From<crate::error::Error> for ApiError {
    fn from(error: crate::error::Error) -> Self {
        ApiError::App(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::App(error) => json_error(&error, &error.to_string()),
            ApiError::Body(rejection) => {
                (rejection.status(), Json(json!({ "error": rejection.body_text(), "field": "body" })))
                    .into_response()
            }
        }
    }
}

/// The authenticated caller; 401 when there is none.
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::App(AppError::Unauthenticated))
    }
}

impl Caller {
    /// The role check, the same one server functions go through.
    fn may(&self, action: Action) -> Result<&Principal, ApiError> {
        authorize(Some(&self.0), action).map_err(ApiError::App)
    }
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T>(payload: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    payload.map(|Json(v)| v).map_err(ApiError::Body)
}

/// A week in a path, or a 422 naming `week`.
fn path_week(week: &str) -> Result<app::model::week::BillingWeek, ApiError> {
    app::model::week::BillingWeek::parse(week).map_err(|m| ApiError::App(AppError::invalid("week", m)))
}

/// A path id, or a 422 naming `id`.
fn path_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::App(AppError::invalid("id", format!("{id:?} is not an id"))))
}

/// Stores a checked setting on behalf of `principal` (audited) and answers it.
async fn save_setting(
    state: &AppState,
    principal: &Principal,
    key: &str,
    value: &impl serde::Serialize,
) -> Result<Response, ApiError> {
    let value = serde_json::to_value(value).expect("a setting serialises");
    state
        .db
        .change_setting(&Actor::staff(principal), key, &value)
        .await
        .map_err(|e| super::state::internal_error("changing a setting", e))?;
    Ok(Json(value).into_response())
}

/// The OpenAPI description of this API, kept by hand beside the routes (a test checks that it
/// lists every route of this file).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`: public, like any API description.
async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/me`: who the token belongs to, and the role.
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let p = caller.0;
    Json(json!({ "id": p.staff.id, "email": p.staff.email, "role": p.staff.role, "auth": p.method }))
}

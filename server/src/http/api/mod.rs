//! The staff JSON API under `/api/v1`: personal access tokens (or the dashboard session, with
//! CSRF protection), the same role table as the dashboard, JSON errors that name the field.
//!
//! This file holds the route table, the error type, the caller and the helpers several resources
//! share; each resource's handlers are in their own file.

mod alerts;
mod api_keys;
mod customers;
mod disputes;
mod pricing;
mod reconcile;
mod refunds;
mod reports;
mod runs;
mod staff;
mod waivers;
mod weeks;

use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::authenticate::json_error;
use super::AppState;
use crate::db::audit::Actor;
use app::api::AppError;
use app::auth::{authorize, Action};
use app::model::staff::Principal;

/// The `/api/v1` routes, each registered with its OpenAPI description: a route cannot exist
/// without being described, and `GET /api/v1/openapi.json` serves what these annotations generate.
pub fn routes() -> Router<AppState> {
    let (router, doc) = described_routes().split_for_parts();
    let doc = doc.to_json().expect("the OpenAPI description serialises");
    router.route_layer(axum::Extension(Description(std::sync::Arc::from(doc))))
}

/// The OpenAPI description the routes generate.
pub fn description() -> utoipa::openapi::OpenApi {
    described_routes().into_openapi()
}

fn described_routes() -> OpenApiRouter<AppState> {
    let rides_body_limit = axum::extract::DefaultBodyLimit::max(super::security::MAX_RIDES_BODY_BYTES);
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi))
        .routes(routes!(me))
        .routes(routes!(staff::list_staff, staff::add_staff))
        .routes(routes!(staff::disable_staff))
        .routes(routes!(weeks::week_preview))
        .routes(routes!(weeks::week_invoices))
        .routes(routes!(weeks::week_payouts))
        .routes(routes!(weeks::approve_week))
        .routes(routes!(waivers::list_waivers, waivers::waive))
        .routes(routes!(waivers::decide_waiver))
        .routes(routes!(waivers::withdraw_waiver))
        .routes(routes!(runs::run_status))
        .routes(routes!(runs::run_stream))
        .routes(routes!(runs::control_run))
        .routes(routes!(runs::retry_payout))
        .routes(routes!(runs::look_again))
        .routes(routes!(runs::mark_not_made))
        .routes(routes!(runs::run_schedule, runs::set_run_schedule))
        .routes(routes!(runs::run_settings, runs::set_run_settings))
        .routes(routes!(alerts::alert_settings, alerts::set_alert_settings))
        .routes(routes!(alerts::alerts))
        .routes(routes!(alerts::test_alert))
        .routes(routes!(alerts::settle_alert))
        .routes(routes!(weeks::anomaly_thresholds, weeks::set_anomaly_thresholds))
        .routes(routes!(customers::search_users, super::rides::add_users))
        .routes(routes!(customers::customer))
        .routes(routes!(customers::customer_charges))
        .routes(routes!(customers::invoice))
        .routes(routes!(refunds::refund_invoice))
        .routes(routes!(refunds::list_refunds))
        .routes(routes!(refunds::decide_refund))
        .routes(routes!(refunds::refund_limits, refunds::set_refund_limits))
        .routes(routes!(pricing::list_versions, pricing::propose_version))
        .routes(routes!(pricing::approve_version))
        .routes(routes!(pricing::withdraw_version))
        .routes(routes!(pricing::what_if))
        .routes(routes!(disputes::list_disputes))
        .routes(routes!(disputes::send_evidence))
        .routes(routes!(reports::report))
        .routes(routes!(reconcile::latest_reconciliation, reconcile::reconcile))
        .routes(routes!(reconcile::repair))
        .routes(routes!(reconcile::acknowledge))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(super::rides::ingest).layer(rides_body_limit))
}

/// The description's fixed parts; the paths come from the handlers' `#[utoipa::path]`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carpool Billing staff and ingestion API",
        description = "Staff endpoints take a personal access token (Authorization: Bearer cbpat_…) \
            or the dashboard session, under the same role table as the dashboard. Ride and user \
            ingestion take an ingestion key (Bearer cbkey_…). Errors are {\"error\", \"field\"}: \
            400 malformed JSON, 401, 403, 404, 409 a conflict with the current state, 413, 415, 422 \
            a refused value. Amounts are strings in major units with the currency's decimals, \
            beside a currency field; timestamps RFC 3339."
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
    security(("staffToken" = []))
)]
struct ApiDoc;

/// The two ways to call the API.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, what) in [
            ("staffToken", "A staff personal access token (cbpat_…)"),
            ("ingestKey", "A ride-ingestion key (cbkey_…)"),
        ] {
            let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(what)).build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }
    }
}

/// Every error's body: what is wrong, and the field it is about when there is one.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the JSON that `json_error` writes.
pub(crate) struct ErrorBody {
    error: String,
    field: Option<String>,
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

/// The generated description, served by `GET /api/v1/openapi.json`.
#[derive(Clone)]
struct Description(std::sync::Arc<str>);

/// This description (OpenAPI 3.1); public, like any API description.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "api", security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
async fn openapi(axum::Extension(doc): axum::Extension<Description>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.0.to_string()).into_response()
}

/// Who the token belongs to, and the role.
#[utoipa::path(get, path = "/api/v1/me", tag = "api",
    responses((status = 200, description = "{id, email, role, auth}"), (status = 401, body = ErrorBody)))]
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let p = caller.0;
    Json(json!({ "id": p.staff.id, "email": p.staff.email, "role": p.staff.role, "auth": p.method }))
}

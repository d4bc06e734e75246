//! Customers: search, profile, charges, and an invoice (each lookup audited).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{path_id, ApiError, Caller, ErrorBody};
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct UserSearch {
    /// The start of an id, name, email or phone (1 to 100 characters).
    #[param(required = true)]
    q: Option<String>,
    /// At most this many users (20 when left out).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Users whose id, name, email or phone starts with q, ignoring case (every role; audited)
///
/// Each search is in the audit log: who looked for whom.
#[utoipa::path(get, path = "/api/v1/users", tag = "customers", params(UserSearch),
    responses((status = 200, description = "{users: [{id, name, email, phone}]}"),
        (status = 422, description = "A refused q or limit, naming the field", body = ErrorBody)))]
pub(super) async fn search_users(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(search): axum::extract::Query<UserSearch>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::LookupUsers)?;
    let users = crate::customers::search(
        &state.db,
        &state.audit,
        principal,
        &search.q.unwrap_or_default(),
        search.limit.unwrap_or(20),
    )
    .await?;
    Ok(Json(json!({ "users": users })).into_response())
}

/// A customer's profile and last twelve weeks of charges (every role; audited)
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "customers",
    params(("id" = String, Path, description = "The user's id, as the carpool app sent it")),
    responses((status = 200, description = "{id, name, email, phone, language, created_at, is_driver, currency, weeks: [{week, invoiced, charged, refunded, state, invoice_id}], charged_total, refunded_total, open_refunds}"),
        (status = 404, description = "No such user", body = ErrorBody)))]
pub(super) async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::LookupUsers)?;
    let profile = crate::customers::profile(&state.db, &state.config, &state.audit, principal, &id).await?;
    Ok(Json(profile).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ChargesQuery {
    /// `invoices` (the default), `attempts` or `refunds`.
    #[param(pattern = "^(invoices|attempts|refunds)$")]
    section: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// A customer's invoices with charge state and refunds, or every charge attempt (with idempotency keys, provider ids, outcomes, timings), or every refund; newest first, paged (audited)
#[utoipa::path(get, path = "/api/v1/users/{id}/charges", tag = "customers",
    params(("id" = String, Path, description = "The user's id, as the carpool app sent it"), ChargesQuery),
    responses((status = 200, description = "{user_id, section, rows: {section, rows: [...]}, next}"),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 422, description = "An unknown section or a wrong before, naming the field", body = ErrorBody)))]
pub(super) async fn customer_charges(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ChargesQuery>,
) -> Result<Response, ApiError> {
    use app::model::customer::Section;
    let principal = caller.may(Action::LookupUsers)?;
    let section = match query.section.as_deref().unwrap_or("invoices") {
        "invoices" => Section::Invoices,
        "attempts" => Section::Attempts,
        "refunds" => Section::Refunds,
        other => {
            return Err(
                AppError::invalid("section", format!("{other:?}: use invoices, attempts or refunds")).into()
            )
        }
    };
    let page = crate::customers::activity(
        &state.db,
        &state.config,
        &state.audit,
        principal,
        &id,
        section,
        query.before.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "user_id": id, "section": section.as_str(), "rows": page.rows, "next": page.next }))
        .into_response())
}

/// One invoice: lines, every charge attempt, refunds and their provider calls, ledger entries, audit trail (every role; audited)
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "customers",
    params(("id" = i64, Path, description = "The invoice's id")),
    responses((status = 200, description = "{id, week, user_id, total, charge, charged, refunded, refundable, lines, attempts, refunds, refund_attempts, ledger, audit, new_request_id}"),
        (status = 404, description = "No such invoice", body = ErrorBody)))]
pub(super) async fn invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::LookupUsers)?;
    let record =
        crate::customers::invoice(&state.db, &state.config, &state.audit, principal, path_id(&id)?).await?;
    Ok(Json(record).into_response())
}

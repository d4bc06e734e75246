//! Customers: search, profile, charges, and an invoice (each lookup audited).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{path_id, ApiError, Caller};
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

#[derive(Deserialize)]
pub(super) struct UserSearch {
    q: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/users?q=&limit=`: users whose id, name, email or phone starts with `q` (every
/// role; each search is in the audit log: who looked for whom).
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

/// `GET /api/v1/users/:id`: a customer's profile and last twelve weeks (audited).
pub(super) async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::LookupUsers)?;
    let profile = crate::customers::profile(&state.db, &state.config, &state.audit, principal, &id).await?;
    Ok(Json(profile).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChargesQuery {
    /// `invoices` (the default), `attempts` or `refunds`.
    section: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// `GET /api/v1/users/:id/charges?section=&before=`: a customer's invoices with their charge
/// state and refunds (or every charge attempt, or every refund), newest first, paged.
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

/// `GET /api/v1/invoices/:id`: the invoice with its lines, attempts, refunds, ledger entries
/// and audit trail (audited).
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

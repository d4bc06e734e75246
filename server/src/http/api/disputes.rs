//! Disputes (finance, admin; the role check is the service's): the queue by due date with the
//! counts by status, and a dispute's evidence sent to the provider in one action.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_id, ApiError, Caller, ErrorBody};
use crate::http::AppState;
use app::model::dispute::EvidenceRequest;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct DisputesQuery {
    /// Only disputes in this status (`needs_response`, `under_review`, `won`, `lost`, `warning_…`).
    status: Option<String>,
}

/// The dispute queue: the soonest evidence deadline first, with the counts by status.
///
/// Answers `{disputes: [{id, provider_id, invoice_id, week, user_id, charge_id, amount, fee,
/// reason, status, evidence_due_at, evidence_sent_at, evidence_by, evidence_note, opened_at,
/// closed_at}], counts: [[status, n]], status, time_zone}`.
#[utoipa::path(get, path = "/api/v1/disputes", tag = "disputes", params(DisputesQuery),
    responses((status = 200, description = "{disputes, counts, status, time_zone}"),
        (status = 403, body = ErrorBody), (status = 422, description = "An unknown status", body = ErrorBody)))]
pub(super) async fn list_disputes(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DisputesQuery>,
) -> Result<Response, ApiError> {
    let status = query.status.unwrap_or_default();
    Ok(Json(crate::disputes::page(&state.db, &state.config, &caller.0, &status).await?).into_response())
}

/// Send a dispute's evidence and submit it: the receipt, the ride lines, the charge attempts and
/// the note, gathered by the server. Audited as `dispute.evidence`.
#[utoipa::path(post, path = "/api/v1/disputes/{id}/evidence", tag = "disputes",
    params(("id" = i64, Path, description = "The dispute's id (the product's, not the provider's)")),
    request_body(content = serde_json::Value, description = "{note}: optional, at most 5,000 characters"),
    responses((status = 200, description = "The dispute, under review"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Sent already, closed, or the provider did not take it", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(super) async fn send_evidence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Result<Json<EvidenceRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let request = body(payload)?;
    let view = crate::disputes::send_evidence(
        &state.db,
        &state.config,
        state.provider.as_ref(),
        &caller.0,
        id,
        request,
    )
    .await?;
    Ok(Json(view).into_response())
}

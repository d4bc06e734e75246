//! Pricing: the fee policy versions, a proposal, its approval or withdrawal by another member,
//! and a what-if of a proposal on a stored week (finance, admin; the role check is the service's).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_id, path_week, ApiError, Caller, ErrorBody};
use crate::fee_policies;
use crate::http::AppState;
use app::model::pricing::NewPolicyVersion as Proposal;

/// Every fee policy version, newest first, the built-in policy (id 0) last.
///
/// Answers `{current_week, in_force, versions: [{id, effective_week, policy: {base, per_km,
/// platform_fee_bps, no_show_fee}, note, status, proposed_by, proposed_at, decided_by,
/// decided_at}]}`.
#[utoipa::path(get, path = "/api/v1/pricing/versions", tag = "pricing",
    responses((status = 200, description = "{current_week, in_force, versions: [...]}"),
        (status = 403, body = ErrorBody)))]
pub(super) async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    Ok(Json(fee_policies::list(&state.db, &state.config, &caller.0).await?).into_response())
}

/// Propose a version, in force from its week once another member approves it.
///
/// Body `{effective_week, base, per_km, platform_fee_bps, no_show_fee, note}`: amounts in major
/// units of the billing currency as strings ("2.00"), the fee in basis points (1500 = 15 %).
/// Refused naming the field, with nothing stored: a negative amount, more decimals than the
/// currency has, a fee above 100 %, a week in the past or already approved.
#[utoipa::path(post, path = "/api/v1/pricing/versions", tag = "pricing",
    request_body(content = serde_json::Value, description = "{effective_week, base, per_km, platform_fee_bps, no_show_fee, note}"),
    responses((status = 201, description = "The proposed version"), (status = 403, body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn propose_version(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<ProposalBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let proposal = body(payload)?.into();
    let version = fee_policies::propose(&state.db, &state.config, &caller.0, &proposal).await?;
    Ok((StatusCode::CREATED, Json(version)).into_response())
}

/// Approve a proposal: by a finance or admin member other than its proposer.
///
/// 403 for the proposer, 409 when it is not waiting for a decision or its week has begun or been
/// approved since.
#[utoipa::path(post, path = "/api/v1/pricing/versions/{id}/approve", tag = "pricing",
    params(("id" = i64, Path, description = "The version's id")),
    responses((status = 200, description = "The approved version"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn approve_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    Ok(Json(fee_policies::decide(&state.db, &state.config, &caller.0, id, true).await?).into_response())
}

/// Withdraw a proposal before anyone approves it.
#[utoipa::path(post, path = "/api/v1/pricing/versions/{id}/withdraw", tag = "pricing",
    params(("id" = i64, Path, description = "The version's id")),
    responses((status = 200, description = "The withdrawn version"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn withdraw_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    Ok(Json(fee_policies::decide(&state.db, &state.config, &caller.0, id, false).await?).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct WhatIfQuery {
    /// The stored week to price both ways (2026-W48).
    week: String,
}

/// A stored week priced with its version and with this one, storing nothing.
///
/// Answers `{week, current_version, proposed_version, before, after, passengers, up, down, same,
/// distribution: [{low, high, passengers}], largest_increases: [{user_id, before, after,
/// change}]}`; a frozen week is compared with the version it was approved with.
#[utoipa::path(get, path = "/api/v1/pricing/versions/{id}/what-if", tag = "pricing",
    params(("id" = i64, Path, description = "The version's id (0: the built-in policy)"), WhatIfQuery),
    responses((status = 200, description = "The comparison"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(super) async fn what_if(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<WhatIfQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let Query(query) = query
        .map_err(|e| app::api::AppError::invalid("week", format!("a week is required: {}", e.body_text())))?;
    let week = path_week(&query.week)?;
    Ok(Json(fee_policies::what_if(&state.db, &state.config, &caller.0, id, week).await?).into_response())
}

/// A proposal as JSON: the fee in basis points as a number or a string.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProposalBody {
    effective_week: String,
    base: String,
    per_km: String,
    platform_fee_bps: serde_json::Value,
    no_show_fee: String,
    #[serde(default)]
    note: String,
}

impl From<ProposalBody> for Proposal {
    fn from(b: ProposalBody) -> Proposal {
        let platform_fee_bps = match b.platform_fee_bps {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        };
        Proposal {
            effective_week: b.effective_week,
            base: b.base,
            per_km: b.per_km,
            platform_fee_bps,
            no_show_fee: b.no_show_fee,
            note: b.note,
        }
    }
}

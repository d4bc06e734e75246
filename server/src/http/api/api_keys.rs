//! Ride-ingestion API keys: list, create, revoke (admin).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_id, ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// Ride-ingestion keys (admin), never their secrets
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys",
    responses((status = 200, description = "{api_keys: [...]}"), (status = 403, description = "Not an admin", body = ErrorBody)))]
pub(super) async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ManageSettings)?;
    let keys = state
        .db
        .ingest_keys()
        .await
        .map_err(|e| crate::http::state::internal_error("listing API keys", e))?;
    let keys: Vec<_> = keys
        .into_iter()
        .map(|k| json!({ "id": k.id, "name": k.name, "prefix": k.prefix, "created_at": k.created_at, "revoked_at": k.revoked_at }))
        .collect();
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewApiKey {
    /// What the key is for.
    name: String,
}

/// Create a ride-ingestion key (admin): {name}; the secret is shown once
///
/// The answer is the only time the secret is shown.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = NewApiKey,
    responses((status = 201, description = "{id, name, key, prefix}"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A refused name", body = ErrorBody)))]
pub(super) async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<NewApiKey>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let name =
        crate::auth::token::parse_name(&body(payload)?.name).map_err(|m| AppError::invalid("name", m))?;
    let key = crate::auth::token::generate(crate::auth::token::INGEST_KEY_PREFIX);
    let id = state
        .db
        .add_ingest_key(&Actor::staff(principal), &name, &key.hash, &key.prefix)
        .await
        .map_err(|e| crate::http::state::internal_error("creating an API key", e))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": name, "key": key.secret, "prefix": key.prefix })),
    )
        .into_response())
}

/// Revoke a ride-ingestion key (admin)
#[utoipa::path(post, path = "/api/v1/api-keys/{id}/revoke", tag = "api-keys",
    params(("id" = i64, Path, description = "The key's id")),
    responses((status = 200, description = "{id, revoked}"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No live key of this id", body = ErrorBody)))]
pub(super) async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let id = path_id(&id)?;
    let revoked = state
        .db
        .revoke_ingest_key(&Actor::staff(principal), id)
        .await
        .map_err(|e| crate::http::state::internal_error("revoking an API key", e))?;
    if !revoked {
        return Err(AppError::NotFound(format!("live API key {id}")).into());
    }
    Ok(Json(json!({ "id": id, "revoked": true })).into_response())
}

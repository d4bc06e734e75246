//! Ride-ingestion API keys: list, create, revoke (admin).

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{body, path_id, ApiError, Caller};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewApiKey {
    name: String,
}

/// Creates a ride-ingestion key; the answer is the only time the secret is shown.
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

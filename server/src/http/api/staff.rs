//! Staff accounts: list, add, disable (admin).

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
use app::model::staff::Role;

/// Every staff account (admin).
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff",
    responses((status = 200, description = "{staff: [...]}"), (status = 403, body = ErrorBody)))]
pub(super) async fn list_staff(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ManageStaff)?;
    let staff = crate::staff::list(&state.db).await?;
    Ok(Json(json!({ "staff": staff })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewStaff {
    email: String,
    role: String,
    password: String,
}

/// Add a staff account (admin).
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = NewStaff,
    responses((status = 201, description = "The account"), (status = 403, body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn add_staff(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<NewStaff>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageStaff)?;
    let new = body(payload)?;
    let role = Role::parse(&new.role).map_err(|m| AppError::invalid("role", m))?;
    let staff =
        crate::staff::add(&state.db, &Actor::staff(principal), &new.email, role, new.password).await?;
    Ok((StatusCode::CREATED, Json(staff)).into_response())
}

/// Disable an account (admin); its sessions and tokens stop at once.
#[utoipa::path(post, path = "/api/v1/staff/{id}/disable", tag = "staff",
    params(("id" = i64, Path, description = "The account's id")),
    responses((status = 200, description = "The account"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn disable_staff(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageStaff)?;
    let id = path_id(&id)?;
    let staff = crate::staff::disable(&state.db, &Actor::staff(principal), id).await?;
    Ok(Json(staff).into_response())
}

//! Runs: status, live stream, the kill switch, payout retries, held charges and payouts,
//! and the run settings and schedule.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_id, save_setting, ApiError, Caller, ErrorBody};
use crate::db::audit::Actor;
use crate::http::AppState;
use app::api::AppError;
use app::auth::Action;

/// Run `id` as the answer's JSON, or 404.
async fn run_answer(state: &AppState, id: i64) -> Result<Response, ApiError> {
    let run = state
        .db
        .run(id)
        .await
        .map_err(|e| crate::http::state::internal_error("reading a run", e))?
        .ok_or_else(|| AppError::NotFound(format!("run {id}")))?;
    Ok(Json(run_json(state, run).await?).into_response())
}

/// A run with its counts, as the API and the run page show it.
async fn run_json(state: &AppState, run: crate::db::runs::RunRow) -> Result<serde_json::Value, ApiError> {
    let view = crate::run::view::view(&state.db, run, state.config.time_zone)
        .await
        .map_err(|e| crate::http::state::internal_error("reading a run", e))?;
    Ok(serde_json::to_value(view).expect("a run view serialises"))
}

/// The run as server-sent events: a `run` event with the run's JSON whenever it changes
///
/// Checked every 500 ms, until the run is over.
#[utoipa::path(get, path = "/api/v1/runs/{id}/stream", tag = "runs", params(("id" = i64, Path, description = "The run's id")),
    responses((status = 200, description = "text/event-stream")))]
pub(super) async fn run_stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    caller.may(Action::ViewOverview)?;
    let id = path_id(&id)?;
    let (db, tz) = (state.db.clone(), state.config.time_zone);
    let stream = futures::stream::unfold((db, None::<String>, false), move |(db, last, done)| async move {
        if done {
            return None;
        }
        let mut last = last;
        loop {
            let run = match db.run(id).await {
                Ok(Some(run)) => run,
                _ => return None,
            };
            let over = run.phase == app::model::run::Phase::Completed
                || run.control == app::model::run::Control::Aborted;
            let view = match crate::run::view::view(&db, run, tz).await {
                Ok(view) => view,
                Err(_) => return None,
            };
            let json = serde_json::to_string(&view).expect("a run view serialises");
            if last.as_deref() != Some(json.as_str()) {
                last = Some(json.clone());
                let event =
                    Event::default().event("run").retry(std::time::Duration::from_millis(500)).data(json);
                return Some((Ok::<_, std::convert::Infallible>(event), (db, last, over)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// A run: phase, control, counts, amounts, throughput, events
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path, description = "The run's id")),
    responses((status = 200, description = "The run: {id, week, phase (canary, charging, paying_out, completed), control (running, paused, halted, aborted), reason, expected, charged, paid, invoices, charged_count, declined, pending, payouts, paid_count, events, ...}"),
        (status = 404, description = "No such run", body = ErrorBody)))]
pub(super) async fn run_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    run_answer(&state, path_id(&id)?).await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlBody {
    /// Why (at most 500 characters); "<action> by <who>" when left out.
    #[serde(default)]
    reason: Option<String>,
}

/// The kill switch: pause (every role), resume or abort (finance, admin); body {reason} optional
///
/// Pausing is open to everyone on call; resuming and aborting to finance and admin.
#[utoipa::path(post, path = "/api/v1/runs/{id}/{action}", tag = "runs",
    params(("id" = i64, Path, description = "The run's id"),
        ("action" = String, Path, description = "`pause`, `resume` or `abort`", pattern = "^(pause|resume|abort)$")),
    request_body = Option<ControlBody>,
    responses((status = 200, description = "The run after the change"),
        (status = 403, description = "Resuming or aborting, neither finance nor admin", body = ErrorBody),
        (status = 404, description = "No such run, or an unknown action", body = ErrorBody),
        (status = 409, description = "The run is not in a state the action applies to", body = ErrorBody),
        (status = 422, description = "A refused reason", body = ErrorBody)))]
pub(super) async fn control_run(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    payload: Option<Json<ControlBody>>,
) -> Result<Response, ApiError> {
    let needs = if action == "pause" { Action::PauseRun } else { Action::ResumeOrAbortRun };
    let principal = caller.may(needs)?;
    let id = path_id(&id)?;
    if !["pause", "resume", "abort"].contains(&action.as_str()) {
        return Err(AppError::NotFound(format!("run action {action:?}")).into());
    }
    let reason = payload.and_then(|Json(b)| b.reason).unwrap_or_default();
    let run = crate::run::apply_control(&state.db, &Actor::staff(principal), id, &action, &reason).await?;
    Ok(Json(run_json(&state, run).await?).into_response())
}

/// Try a failed payout again (finance, admin; audited): a new attempt with its own key, the database refusing a second success
#[utoipa::path(post, path = "/api/v1/runs/{id}/payouts/{payout_id}/retry", tag = "runs",
    params(("id" = i64, Path, description = "The run's id"), ("payout_id" = i64, Path, description = "The payout's id")),
    responses((status = 200, description = "The run"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 404, description = "No such run or payout", body = ErrorBody),
        (status = 409, description = "The payout is not failed", body = ErrorBody)))]
pub(super) async fn retry_payout(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, payout_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let (id, payout_id) = (path_id(&id)?, path_id(&payout_id)?);
    crate::run::payouts::retry(&state.db, &Actor::staff(principal), id, payout_id).await?;
    run_answer(&state, id).await
}

/// Look a held charge or payout up at the provider again (finance, admin; audited): its attempt is past the key-reuse window and is never sent again
#[utoipa::path(post, path = "/api/v1/runs/{id}/held/{kind}/{item}/look-again", tag = "runs",
    params(("id" = i64, Path, description = "The run's id"), ("kind" = String, Path, description = "`charge` or `payout`", pattern = "^(charge|payout)$"), ("item" = i64, Path, description = "The held invoice's or payout's id")),
    responses((status = 200, description = "The run"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 404, description = "Nothing of that id is held", body = ErrorBody)))]
pub(super) async fn look_again(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, kind, item)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let (id, item) = (path_id(&id)?, path_id(&item)?);
    crate::run::held::look_again(&state.db, &Actor::staff(principal), id, &kind, item).await?;
    run_answer(&state, id).await
}

/// Mark a held charge or payout as not made at the provider: one finance member asks (202), a second confirms (200; its attempt is closed and a new one goes out under a new key); audited
///
/// 409 when the member who asked confirms; 404 when nothing of that id is held.
#[utoipa::path(post, path = "/api/v1/runs/{id}/held/{kind}/{item}/not-made", tag = "runs",
    params(("id" = i64, Path, description = "The run's id"), ("kind" = String, Path, description = "`charge` or `payout`", pattern = "^(charge|payout)$"), ("item" = i64, Path, description = "The held invoice's or payout's id")),
    responses((status = 200, description = "The run, confirmed"),
        (status = 202, description = "The run, asked: a second member must confirm"),
        (status = 403, description = "Neither finance nor admin", body = ErrorBody),
        (status = 404, description = "Nothing of that id is held", body = ErrorBody),
        (status = 409, description = "The member who asked cannot confirm", body = ErrorBody)))]
pub(super) async fn mark_not_made(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, kind, item)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let (id, item) = (path_id(&id)?, path_id(&item)?);
    let step = crate::run::held::mark_not_made(&state.db, &Actor::staff(principal), id, &kind, item).await?;
    let mut answer = run_answer(&state, id).await?;
    if step == crate::db::held::MarkStep::Proposed {
        *answer.status_mut() = axum::http::StatusCode::ACCEPTED;
    }
    Ok(answer)
}

/// When the weekly run is due (any staff: those who may preview weeks)
#[utoipa::path(get, path = "/api/v1/settings/run-schedule", tag = "runs",
    responses((status = 200, description = "{enabled, weekday, time, auto_approve}")))]
pub(super) async fn run_schedule(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let schedule = crate::run::schedule::RunSchedule::load(&state.db)
        .await
        .map_err(|e| crate::http::state::internal_error("reading the run schedule", e))?;
    Ok(Json(schedule).into_response())
}

/// Change it (admin)
#[utoipa::path(put, path = "/api/v1/settings/run-schedule", tag = "runs",
    request_body(content = serde_json::Value, description = "{enabled, weekday, time, auto_approve}: \
        enabled and auto_approve booleans (auto_approve: approve the week's preview without a person); \
        weekday mon … sun; time HH:MM, local time in BILLING_TZ"),
    responses((status = 200, description = "The schedule"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A refused value, naming the field", body = ErrorBody)))]
pub(super) async fn set_run_schedule(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<crate::run::schedule::RunSchedule>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let schedule = body(payload)?;
    schedule.parse().map_err(|(field, message)| AppError::invalid(field, message))?;
    save_setting(&state, principal, crate::run::schedule::RunSchedule::KEY, &schedule).await
}

/// How runs work (every role): the provider account's call limit shared by every process, workers, batch, canary, attempts, retry delays, the guards
#[utoipa::path(get, path = "/api/v1/settings/run", tag = "runs",
    responses((status = 200, description = "{rate_per_second, workers, batch, canary_size, max_attempts, decline_retry_seconds, unknown_retry_seconds, funds_retry_seconds, lease_seconds, provider_timeout_seconds, key_window_seconds, user_cap_minor, failure_rate_pct, failure_min_attempts}")))]
pub(super) async fn run_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    Ok(Json(crate::run::settings::get(&state.db).await?).into_response())
}

/// Change them (admin; audited); every field checked, a value out of range refused naming its field
#[utoipa::path(put, path = "/api/v1/settings/run", tag = "runs",
    request_body(content = serde_json::Value, description = "Every field: {rate_per_second, workers, batch, \
        canary_size, max_attempts, decline_retry_seconds, unknown_retry_seconds, funds_retry_seconds, \
        lease_seconds, provider_timeout_seconds, key_window_seconds, user_cap_minor, failure_rate_pct, \
        failure_min_attempts}, integers"),
    responses((status = 200, description = "The settings"), (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A value out of range, naming the field", body = ErrorBody)))]
pub(super) async fn set_run_settings(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<crate::run::RunSettings>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let settings = body(payload)?;
    let saved = crate::run::settings::save(&state.db, &Actor::staff(principal), settings).await?;
    Ok(Json(saved).into_response())
}

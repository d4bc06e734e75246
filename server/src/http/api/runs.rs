//! Runs: status, live stream, the kill switch, payout retries, held charges and payouts,
//! and the run settings and schedule.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{body, path_id, save_setting, ApiError, Caller};
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
    let view = crate::run::view::view(&state.db, run)
        .await
        .map_err(|e| crate::http::state::internal_error("reading a run", e))?;
    Ok(serde_json::to_value(view).expect("a run view serialises"))
}

/// `GET /api/v1/runs/:id/stream`: the run as server-sent events, a `run` event with the
/// run's JSON whenever it changes (checked every 500 ms), until it is over.
pub(super) async fn run_stream(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    caller.may(Action::ViewOverview)?;
    let id = path_id(&id)?;
    let db = state.db.clone();
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
            let view = match crate::run::view::view(&db, run).await {
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

/// `GET /api/v1/runs/:id`: the run's phase, control and counts.
pub(super) async fn run_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    run_answer(&state, path_id(&id)?).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ControlBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/runs/:id/pause|resume|abort` `{"reason"}`: the kill switch. Pausing is open to
/// everyone on call; resuming and aborting to finance and admin. 200 with the run; 409 when the
/// run is not in a state the action applies to.
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

/// `POST /api/v1/runs/:id/payouts/:payout_id/retry` (finance, admin): a failed payout is tried
/// again (audited); 200 with the run, 404 unknown, 409 when the payout is not failed.
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

/// `POST /api/v1/runs/:id/held/:kind/:item/look-again` (finance, admin): a held charge or payout
/// (`kind` = `charge` or `payout`) is looked up at the provider again (audited); 200 with the
/// run, 404 when nothing of that id is held.
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

/// `POST /api/v1/runs/:id/held/:kind/:item/not-made` (finance, admin): asks that a held charge or
/// payout be marked as not made at the provider (202 with the run: a second member must
/// confirm), or confirms it as that second member (200 with the run: its attempt is closed and
/// a new one, under a new key, goes out). 409 when the member who asked confirms; 404 when
/// nothing of that id is held. Each step audited.
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

/// `GET /api/v1/settings/run-schedule`: when the weekly run is due.
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

/// `PUT /api/v1/settings/run-schedule` (admin) `{"enabled","weekday","time","auto_approve"}`.
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

/// `GET /api/v1/settings/run`: how runs work (the provider account's shared call limit,
/// workers, batch, canary, attempts, retry delays, the guards).
pub(super) async fn run_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    Ok(Json(crate::run::settings::get(&state.db).await?).into_response())
}

/// `PUT /api/v1/settings/run` (admin): every field, each checked and named on refusal; audited.
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

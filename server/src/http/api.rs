//! The staff JSON API under `/api/v1`: personal access tokens (or the dashboard session, with
//! CSRF protection), the same role table as the dashboard, JSON errors that name the field.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::authenticate::json_error;
use super::AppState;
use crate::db::audit::Actor;
use app::api::AppError;
use app::auth::{authorize, Action};
use app::model::staff::{Principal, Role};

/// The `/api/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/staff", get(list_staff).post(add_staff))
        .route("/api/v1/staff/{id}/disable", post(disable_staff))
        .route("/api/v1/weeks/{week}/preview", get(week_preview))
        .route("/api/v1/weeks/{week}/approve", post(approve_week))
        .route("/api/v1/runs/{id}", get(run_status))
        .route("/api/v1/runs/{id}/stream", get(run_stream))
        .route("/api/v1/runs/{id}/{action}", post(control_run))
        .route("/api/v1/runs/{id}/payouts/{payout_id}/retry", post(retry_payout))
        .route("/api/v1/runs/{id}/held/{kind}/{item}/look-again", post(look_again))
        .route("/api/v1/runs/{id}/held/{kind}/{item}/not-made", post(mark_not_made))
        .route("/api/v1/settings/run-schedule", get(run_schedule).put(set_run_schedule))
        .route("/api/v1/settings/run", get(run_settings).put(set_run_settings))
        .route("/api/v1/settings/alerts", get(alert_settings).put(set_alert_settings))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/test", post(test_alert))
        .route("/api/v1/alerts/{id}/{action}", post(settle_alert))
        .route("/api/v1/settings/anomaly-thresholds", get(anomaly_thresholds).put(set_anomaly_thresholds))
        .route("/api/v1/users", get(search_users).post(super::rides::add_users))
        .route("/api/v1/users/{id}", get(customer))
        .route("/api/v1/users/{id}/charges", get(customer_charges))
        .route("/api/v1/invoices/{id}", get(invoice))
        .route("/api/v1/invoices/{id}/refunds", post(refund_invoice))
        .route("/api/v1/refunds", get(list_refunds))
        .route("/api/v1/refunds/{id}/{decision}", post(decide_refund))
        .route("/api/v1/settings/refund-limits", get(refund_limits).put(set_refund_limits))
        .route("/api/v1/reports/{week}", get(report))
        .route("/api/v1/reconciliations/{week}", get(latest_reconciliation).post(reconcile))
        .route("/api/v1/reconciliations/{week}/repair", post(repair))
        .route("/api/v1/reconciliations/{week}/acknowledge", post(acknowledge))
        .route("/api/v1/api-keys", get(list_api_keys).post(create_api_key))
        .route("/api/v1/api-keys/{id}/revoke", post(revoke_api_key))
        .route(
            "/api/v1/rides",
            post(super::rides::ingest)
                .layer(axum::extract::DefaultBodyLimit::max(super::security::MAX_RIDES_BODY_BYTES)),
        )
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

/// The OpenAPI description of this API, kept by hand beside the routes (a test checks that it
/// lists every route of this file).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`: public, like any API description.
async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /api/v1/me`: who the token belongs to, and the role.
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let p = caller.0;
    Json(json!({ "id": p.staff.id, "email": p.staff.email, "role": p.staff.role, "auth": p.method }))
}

async fn list_staff(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ManageStaff)?;
    let staff = state.db.list_staff().await.map_err(|e| super::state::internal_error("listing staff", e))?;
    Ok(Json(json!({ "staff": staff })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStaff {
    email: String,
    role: String,
    password: String,
}

async fn add_staff(
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

/// A week in a path, or a 422 naming `week`.
fn path_week(week: &str) -> Result<app::model::week::BillingWeek, ApiError> {
    app::model::week::BillingWeek::parse(week).map_err(|m| ApiError::App(AppError::invalid("week", m)))
}

/// `GET /api/v1/weeks/:week/preview`: the same JSON as `billing preview --format json`.
async fn week_preview(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let week = path_week(&week)?;
    let body = crate::preview::preview_json(&state.db, &state.config, week)
        .await
        .map_err(crate::error::Error::from)?;
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    /// The `content_hash` of the preview the approver reviewed.
    content_hash: String,
}

/// `POST /api/v1/weeks/:week/approve` `{"content_hash"}`: freezes the week's invoices and
/// payouts. 201 when this call approved it, 200 when the same content was approved before, 409
/// when the preview changed since it was reviewed.
async fn approve_week(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<Approval>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRun)?;
    let week = path_week(&week)?;
    let approval = body(payload)?;
    let approved = crate::preview::approve(
        &state.db,
        &state.config,
        &Actor::staff(principal),
        week,
        &approval.content_hash,
    )
    .await
    .map_err(crate::error::Error::from)?;
    let (status, stored) = match approved {
        crate::db::weeks::Approved::Now(s) => (StatusCode::CREATED, s),
        crate::db::weeks::Approved::Before(s) => (StatusCode::OK, s),
    };
    Ok((
        status,
        Json(json!({
            "week": stored.week,
            "status": stored.status.as_str(),
            "content_hash": stored.content_hash,
            "approved_at": stored.approved_at,
            "approved_by": stored.approved_by,
            "invoices": stored.totals.invoices,
            "charged": stored.totals.charged.to_string(),
            "currency": stored.currency.code(),
        })),
    )
        .into_response())
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

/// `GET /api/v1/settings/anomaly-thresholds`: when the preview flags an invoice or a week.
async fn anomaly_thresholds(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let (_, thresholds) =
        crate::preview::settings(&state.db, &state.config).await.map_err(crate::error::Error::from)?;
    Ok(Json(thresholds).into_response())
}

/// `PUT /api/v1/settings/anomaly-thresholds` (admin): every field, each checked; drafts are
/// recomputed with the new thresholds the next time they are opened.
async fn set_anomaly_thresholds(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::preview::AnomalyThresholds>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let thresholds = body(payload)?;
    thresholds.validate().map_err(|(field, message)| AppError::invalid(field, message))?;
    save_setting(&state, principal, app::model::preview::AnomalyThresholds::KEY, &thresholds).await
}

/// Run `id` as the answer's JSON, or 404.
async fn run_answer(state: &AppState, id: i64) -> Result<Response, ApiError> {
    let run = state
        .db
        .run(id)
        .await
        .map_err(|e| super::state::internal_error("reading a run", e))?
        .ok_or_else(|| AppError::NotFound(format!("run {id}")))?;
    Ok(Json(run_json(state, run).await?).into_response())
}

/// A run with its counts, as the API and the run page show it.
async fn run_json(state: &AppState, run: crate::db::runs::RunRow) -> Result<serde_json::Value, ApiError> {
    let view = crate::run::view::view(&state.db, run)
        .await
        .map_err(|e| super::state::internal_error("reading a run", e))?;
    Ok(serde_json::to_value(view).expect("a run view serialises"))
}

/// `GET /api/v1/runs/:id/stream`: the run as server-sent events, a `run` event with the
/// run's JSON whenever it changes (checked every 500 ms), until it is over.
async fn run_stream(
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
async fn run_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    run_answer(&state, path_id(&id)?).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/runs/:id/pause|resume|abort` `{"reason"}`: the kill switch. Pausing is open to
/// everyone on call; resuming and aborting to finance and admin. 200 with the run; 409 when the
/// run is not in a state the action applies to.
async fn control_run(
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
async fn retry_payout(
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
async fn look_again(
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
async fn mark_not_made(
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
async fn run_schedule(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::PreviewWeek)?;
    let schedule = crate::run::schedule::RunSchedule::load(&state.db)
        .await
        .map_err(|e| super::state::internal_error("reading the run schedule", e))?;
    Ok(Json(schedule).into_response())
}

/// `PUT /api/v1/settings/run-schedule` (admin) `{"enabled","weekday","time","auto_approve"}`.
async fn set_run_schedule(
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
async fn run_settings(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ViewOverview)?;
    Ok(Json(crate::run::settings::get(&state.db).await?).into_response())
}

/// `PUT /api/v1/settings/run` (admin): every field, each checked and named on refusal; audited.
async fn set_run_settings(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<crate::run::RunSettings>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let settings = body(payload)?;
    let saved = crate::run::settings::save(&state.db, &Actor::staff(principal), settings).await?;
    Ok(Json(saved).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    /// Only the messages in this state.
    messages: Option<String>,
}

/// `GET /api/v1/alerts?messages=`: open and past alerts and the latest messages with their
/// delivery state (of one state, when asked).
async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ViewOverview)?;
    let messages = query.messages.unwrap_or_default();
    let page = crate::alerts::page(&state.db, &state.config, principal, &messages).await?;
    Ok(Json(page).into_response())
}

/// `POST /api/v1/alerts/:id/acknowledge` or `/resolve`.
async fn settle_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::HandleAlerts)?;
    let resolve = match action.as_str() {
        "acknowledge" => false,
        "resolve" => true,
        _ => return Err(AppError::NotFound(format!("alert action {action:?}")).into()),
    };
    Ok(Json(crate::alerts::settle(&state.db, &Actor::staff(principal), id, resolve).await?).into_response())
}

/// `POST /api/v1/alerts/test` (admin): a test alert to the first contact.
async fn test_alert(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let alert = crate::alerts::send_test(&state.db, &Actor::staff(principal)).await?;
    Ok((StatusCode::CREATED, Json(alert)).into_response())
}

/// `GET /api/v1/settings/alerts` (admin): where alerts go.
async fn alert_settings(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ManageSettings)?;
    Ok(Json(crate::alerts::settings(&state.db).await?).into_response())
}

/// `PUT /api/v1/settings/alerts` (admin).
async fn set_alert_settings(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::alerts::AlertSettings>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let settings = body(payload)?;
    Ok(Json(crate::alerts::save_settings(&state.db, &Actor::staff(principal), settings).await?)
        .into_response())
}

#[derive(Deserialize)]
struct UserSearch {
    q: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/users?q=&limit=`: users whose id, name, email or phone starts with `q` (every
/// role; each search is in the audit log: who looked for whom).
async fn search_users(
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
async fn customer(
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
struct ChargesQuery {
    /// `invoices` (the default), `attempts` or `refunds`.
    section: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
}

/// `GET /api/v1/users/:id/charges?section=&before=`: a customer's invoices with their charge
/// state and refunds (or every charge attempt, or every refund), newest first, paged.
async fn customer_charges(
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
async fn invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::LookupUsers)?;
    let record =
        crate::customers::invoice(&state.db, &state.config, &state.audit, principal, path_id(&id)?).await?;
    Ok(Json(record).into_response())
}

/// `POST /api/v1/invoices/:id/refunds` `{"amount","reason","request_id","note"}` (and optional
/// `lines`, `user_id`): 201 when the refund is made, 202 when it waits for approval, 200 when
/// this `request_id` made it before; 422 naming the field otherwise, nothing changed.
async fn refund_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    payload: Result<Json<app::model::refund::NewRefund>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Refund)?;
    let id = path_id(&id)?;
    let new = body(payload)?;
    let answer =
        crate::refunds::request(&state.db, &state.config, state.provider.as_ref(), principal, id, new)
            .await?;
    let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::OK);
    Ok((status, Json(answer)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundsQuery {
    state: Option<String>,
}

/// `GET /api/v1/refunds?state=awaiting_approval`: refunds waiting for a decision (finance, admin).
async fn list_refunds(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(query): axum::extract::Query<RefundsQuery>,
) -> Result<Response, ApiError> {
    caller.may(Action::ApproveRefund)?;
    if query.state.as_deref().is_some_and(|s| s != "awaiting_approval") {
        return Err(AppError::invalid("state", "only awaiting_approval can be listed").into());
    }
    let rows = state
        .db
        .refunds_awaiting_approval(200)
        .await
        .map_err(|e| super::state::internal_error("listing refunds", e))?;
    let refunds = rows.iter().map(crate::refunds::view).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "refunds": refunds })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Decision {
    #[serde(default)]
    note: Option<String>,
}

/// `POST /api/v1/refunds/:id/approve|reject` `{"note"}`: finance or admin, never the requester.
async fn decide_refund(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, decision)): Path<(String, String)>,
    payload: Option<Json<Decision>>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ApproveRefund)?;
    let id = path_id(&id)?;
    let approve = match decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => return Err(AppError::NotFound(format!("refund action {other:?}")).into()),
    };
    let note = payload.map(|Json(d)| d.note.unwrap_or_default()).unwrap_or_default();
    let refund =
        crate::refunds::decide(&state.db, state.provider.as_ref(), principal, id, approve, &note).await?;
    Ok(Json(refund).into_response())
}

/// `GET /api/v1/settings/refund-limits`: what support refunds without a second person.
async fn refund_limits(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::LookupUsers)?;
    Ok(Json(crate::refunds::limits(&state.db, state.config.currency).await?).into_response())
}

/// `PUT /api/v1/settings/refund-limits` (admin): both limits, in major units.
async fn set_refund_limits(
    State(state): State<AppState>,
    caller: Caller,
    payload: Result<Json<app::model::refund::RefundLimits>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageSettings)?;
    let limits = body(payload)?;
    limits.parse(state.config.currency).map_err(|(field, message)| AppError::invalid(field, message))?;
    save_setting(&state, principal, app::model::refund::RefundLimits::KEY, &limits).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `json` (the default), `csv` or `xlsx`.
    format: Option<String>,
    /// The last week of a range starting with the path's week.
    to: Option<String>,
}

/// `GET /api/v1/reports/:week?format=json|csv|xlsx&to=`: the week's (or range's) report from the
/// ledger as JSON, or its invoices as CSV (streamed) or XLSX (summary and detail sheets).
async fn report(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ReportQuery>,
) -> Result<Response, ApiError> {
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    let principal = caller.may(Action::ExportReports)?;
    let to = query.to.clone().unwrap_or_else(|| week.clone());
    let weeks = crate::reports::range(&week, &to)?;
    let (from, to) = (weeks[0].to_string(), weeks.last().expect("one week").to_string());
    let format = query.format.as_deref().unwrap_or("json");
    if !["json", "csv", "xlsx"].contains(&format) {
        return Err(AppError::invalid("format", format!("{format:?}: use json, csv or xlsx")).into());
    }
    let mut entry = crate::db::audit::NewAuditEntry::new(
        &Actor::staff(principal),
        "report.export",
        "report",
        format!("{from}..{to}"),
    );
    entry.detail = Some(format.to_owned());
    state.db.audit(&entry).await.map_err(|e| super::state::internal_error("auditing an export", e))?;
    let name = if from == to {
        format!("carpool-billing-{from}")
    } else {
        format!("carpool-billing-{from}-to-{to}")
    };
    match format {
        "csv" => {
            let stream = crate::reports::csv_stream(state.db.clone(), from, to, crate::reports::EXPORT_PAGE)
                .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
            Ok((
                [
                    (CONTENT_TYPE, "text/csv; charset=utf-8; header=present".to_owned()),
                    (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.csv\"")),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response())
        }
        "xlsx" => {
            let report = crate::reports::report(&state.db, state.config.currency, &from, &to).await?;
            let file = tempfile::NamedTempFile::new()
                .map_err(|e| super::state::internal_error("writing XLSX", e))?;
            crate::reports::write_xlsx(&state.db, &report, crate::reports::EXPORT_PAGE, file.path()).await?;
            // The open file outlives its name: the stream reads it after the name is removed.
            let std_file = std::fs::File::open(file.path())
                .map_err(|e| super::state::internal_error("reading XLSX", e))?;
            drop(file);
            let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(std_file));
            Ok((
                [
                    (
                        CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
                    ),
                    (CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.xlsx\"")),
                ],
                axum::body::Body::from_stream(stream),
            )
                .into_response())
        }
        _ => {
            Ok(Json(crate::reports::report(&state.db, state.config.currency, &from, &to).await?)
                .into_response())
        }
    }
}

/// `GET /api/v1/reconciliations/:week`: the week's latest reconciliation (finance, admin).
async fn latest_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let latest = crate::reconcile::latest(&state.db, &week).await?;
    let found = latest.ok_or_else(|| AppError::NotFound(format!("a reconciliation of {week}")))?;
    Ok(Json(found).into_response())
}

/// `POST /api/v1/reconciliations/:week`: reconciles the week with the provider now.
async fn reconcile(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let result = crate::reconcile::run(
        &state.db,
        state.required_provider()?,
        state.config.currency,
        &week,
        &principal.staff.email,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(result)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepairBody {
    /// The stray charges the reviewer saw: exactly those awaiting repair.
    payment_intents: Vec<String>,
}

/// `POST /api/v1/reconciliations/:week/repair` `{"payment_intents"}`: refunds the reviewed stray
/// charges once each (409 if the list changed since it was reviewed).
async fn repair(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
    payload: Result<Json<RepairBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let body = body(payload)?;
    let result = crate::reconcile::repair(
        &state.db,
        state.provider.as_ref(),
        &Actor::staff(principal),
        &week,
        &body.payment_intents,
    )
    .await?;
    Ok(Json(result).into_response())
}

/// `POST /api/v1/reconciliations/:week/acknowledge`: the latest reconciliation's mismatches are
/// known (the dashboard's banner goes; the result stays).
async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(week): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::Reconcile)?;
    let week = path_week(&week)?.to_string();
    let result = crate::reconcile::acknowledge(&state.db, principal, &week).await?;
    Ok(Json(result).into_response())
}

/// A path id, or a 422 naming `id`.
fn path_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::App(AppError::invalid("id", format!("{id:?} is not an id"))))
}

async fn list_api_keys(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.may(Action::ManageSettings)?;
    let keys =
        state.db.ingest_keys().await.map_err(|e| super::state::internal_error("listing API keys", e))?;
    let keys: Vec<_> = keys
        .into_iter()
        .map(|k| json!({ "id": k.id, "name": k.name, "prefix": k.prefix, "created_at": k.created_at, "revoked_at": k.revoked_at }))
        .collect();
    Ok(Json(json!({ "api_keys": keys })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiKey {
    name: String,
}

/// Creates a ride-ingestion key; the answer is the only time the secret is shown.
async fn create_api_key(
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
        .map_err(|e| super::state::internal_error("creating an API key", e))?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": name, "key": key.secret, "prefix": key.prefix })),
    )
        .into_response())
}

async fn revoke_api_key(
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
        .map_err(|e| super::state::internal_error("revoking an API key", e))?;
    if !revoked {
        return Err(AppError::NotFound(format!("live API key {id}")).into());
    }
    Ok(Json(json!({ "id": id, "revoked": true })).into_response())
}

async fn disable_staff(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let principal = caller.may(Action::ManageStaff)?;
    let id = path_id(&id)?;
    let staff = crate::staff::disable(&state.db, &Actor::staff(principal), id).await?;
    Ok(Json(staff).into_response())
}

//! The HTTP edge: Stripe's routes and authentication, the POST pipeline (idempotency key,
//! latency, faults, execution, saved answer), and the `/sim` test controls.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HeaderName, AUTHORIZATION};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::disputes::{NewDispute, Verdict};
use super::error::StripeError;
use super::form::Params;
use super::idempotency::{Begin, Fingerprint, Saved, Scope, MAX_KEY_CHARS};
use super::lists::Kind;
use super::objects::new_id;
use super::requests::{Endpoint, Mutation};
use super::state::{FaultsUpdate, Reservation, Sim};
use super::store::{json_of, Context, Executed};

/// Every route the simulator answers.
pub(crate) fn routes(sim: Sim) -> Router {
    Router::new()
        .route("/v1/customers", create(Endpoint::Customers).merge(list(Kind::Customer)))
        .route("/v1/customers/{id}", retrieve(Kind::Customer))
        .route("/v1/payment_methods", create(Endpoint::PaymentMethods))
        .route("/v1/payment_methods/{id}", retrieve(Kind::PaymentMethod))
        .route(
            "/v1/payment_methods/{id}/attach",
            post(
                |State(sim): State<Sim>,
                 Path(id): Path<String>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| {
                    mutate(sim, Endpoint::AttachPaymentMethod(id), uri, headers, body)
                },
            ),
        )
        .route("/v1/balance", get(balance))
        .route("/v1/account", get(platform_account))
        .route("/v1/accounts", create(Endpoint::Accounts))
        .route("/v1/accounts/{id}", retrieve(Kind::Account))
        .route("/v1/payment_intents", create(Endpoint::PaymentIntents).merge(list(Kind::PaymentIntent)))
        .route("/v1/payment_intents/{id}", retrieve(Kind::PaymentIntent))
        .route("/v1/charges", list(Kind::Charge))
        .route("/v1/charges/{id}", retrieve(Kind::Charge))
        .route("/v1/refunds", create(Endpoint::Refunds).merge(list(Kind::Refund)))
        .route("/v1/refunds/{id}", retrieve(Kind::Refund))
        .route("/v1/transfers", create(Endpoint::Transfers).merge(list(Kind::Transfer)))
        .route("/v1/transfers/{id}", retrieve(Kind::Transfer))
        .route("/v1/disputes", list(Kind::Dispute))
        .route(
            "/v1/disputes/{id}",
            retrieve(Kind::Dispute).merge(post(
                |State(sim): State<Sim>,
                 Path(id): Path<String>,
                 uri: Uri,
                 headers: HeaderMap,
                 body: Bytes| {
                    mutate(sim, Endpoint::UpdateDispute(id), uri, headers, body)
                },
            )),
        )
        .route_layer(axum::middleware::from_fn_with_state(sim.clone(), count_request))
        .route("/sim/ledger", get(ledger))
        .route("/sim/stats", get(stats))
        .route("/sim/reset", post(reset))
        .route("/sim/faults", get(faults).put(set_faults))
        .route("/sim/clock", post(move_clock))
        .route("/sim/disputes", post(open_dispute))
        .route("/sim/disputes/{id}/close", post(close_dispute))
        .fallback(unrecognized)
        .method_not_allowed_fallback(unrecognized)
        .with_state(sim)
}

fn create(endpoint: Endpoint) -> MethodRouter<Sim> {
    post(move |State(sim): State<Sim>, uri: Uri, headers: HeaderMap, body: Bytes| {
        mutate(sim, endpoint.clone(), uri, headers, body)
    })
}

fn retrieve(kind: Kind) -> MethodRouter<Sim> {
    get(
        move |State(sim): State<Sim>,
              Path(id): Path<String>,
              headers: HeaderMap,
              RawQuery(query): RawQuery| { read(sim, kind, Some(id), headers, query) },
    )
}

fn list(kind: Kind) -> MethodRouter<Sim> {
    get(move |State(sim): State<Sim>, headers: HeaderMap, RawQuery(query): RawQuery| {
        read(sim, kind, None, headers, query)
    })
}

/// A POST, checked at the door and then executed on its own task: once past the door, a
/// request runs to the end (and moves its money) even if the client hangs up, as a real
/// provider's would.
async fn mutate(sim: Sim, endpoint: Endpoint, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = new_id("req");
    let job = match Job::read(endpoint, uri.path(), &headers, &body) {
        Ok(job) => job,
        Err(error) => return Answer::refusal(error, request_id, None).into_response(),
    };
    let key = job.key.clone();
    let answer = match tokio::spawn(run(sim.clone(), job, request_id.clone())).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::error!(%error, request_id, "psp-sim request failed");
            Answer::refusal(StripeError::api_error(), request_id, key)
        }
    };
    if let Some(hang_ms) = answer.hold_ms {
        // The dangerous case: done and saved, but the client hears nothing in time.
        sim.pause(hang_ms).await;
    }
    match answer.garble {
        Some(garble) => garbled(garble),
        None => answer.into_response(),
    }
}

/// A POST that passed authentication and parameter checks.
struct Job {
    api_key: String,
    key: Option<String>,
    fingerprint: Fingerprint,
    mutation: Mutation,
}

impl Job {
    fn read(endpoint: Endpoint, path: &str, headers: &HeaderMap, body: &[u8]) -> Result<Self, StripeError> {
        let api_key = authenticate(headers)?;
        let key = idempotency_key(headers)?;
        let params = Params::parse(body)?;
        let fingerprint = Fingerprint { path: path.to_owned(), params: params.fingerprint() };
        let mutation = Mutation::parse(endpoint, &params)?;
        Ok(Self { api_key, key, fingerprint, mutation })
    }
}

/// Reserve the key (or replay, or refuse), take the latency, roll the faults, execute, save.
async fn run(sim: Sim, job: Job, request_id: String) -> Answer {
    let Job { api_key, key, fingerprint, mutation } = job;
    let mut reservation = None;
    if let Some(key) = &key {
        let scope = Scope { api_key, key: key.clone() };
        let begun = {
            let mut state = sim.lock();
            let now = state.now();
            state.keys.begin(&scope, &fingerprint, now)
        };
        match begun {
            Begin::Run => reservation = Some(Reservation::new(sim.clone(), scope)),
            Begin::Replay(saved) => return Answer::replay(saved, request_id, key.clone()),
            Begin::Refuse(error) => return Answer::refusal(error, request_id, Some(key.clone())),
        }
    }
    let latency_ms = sim.lock().faults.config.latency_ms;
    sim.pause(latency_ms).await;

    let mut guard = sim.lock();
    let state = &mut *guard;
    let executed = match state.faults.injected_error() {
        Some(fault) => {
            tracing::debug!(request_id, status = %fault.status, "psp-sim injected an error");
            Err(fault)
        }
        None => {
            let force_decline =
                matches!(mutation, Mutation::CreatePaymentIntent(_)) && state.faults.declines();
            let overcharge_minor = state.faults.overcharge_minor();
            let funds_delay = state.faults.funds_delay();
            let ctx = Context {
                now: state.now(),
                idempotency_key: key.as_deref(),
                force_decline,
                overcharge_minor,
                funds_delay,
            };
            state.store.execute(mutation, &ctx)
        }
    };
    match executed {
        Err(error) => {
            if let Some(reservation) = reservation {
                reservation.release(&mut state.keys);
            }
            Answer::refusal(error, request_id, key)
        }
        Ok(executed) => {
            let hold_ms = if executed.moved_money { state.faults.holds_answer() } else { None };
            let garble = if executed.moved_money { state.faults.garbles() } else { None };
            super::webhook::send(&state.faults.config, &executed.body, &executed.events);
            if let Some(reservation) = reservation {
                let saved = Saved {
                    status: executed.status,
                    body: executed.body.clone(),
                    request_id: request_id.clone(),
                    saved_at: state.now(),
                };
                reservation.save(&mut state.keys, saved);
            }
            Answer {
                status: executed.status,
                body: executed.body,
                request_id,
                idempotency_key: key,
                original_request: None,
                should_retry: false,
                hold_ms,
                garble,
            }
        }
    }
}

/// A GET: one object or a page of a list.
async fn read(
    sim: Sim,
    kind: Kind,
    id: Option<String>,
    headers: HeaderMap,
    query: Option<String>,
) -> Response {
    let request_id = new_id("req");
    let found = async {
        authenticate(&headers)?;
        let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes())?;
        let latency_ms = sim.lock().faults.config.latency_ms;
        sim.pause(latency_ms).await;
        let state = sim.lock();
        match &id {
            Some(id) => state.store.retrieve(kind, id, &params),
            None => state.store.list(kind, &params),
        }
    }
    .await;
    match found {
        Ok(body) => Answer::ok(body, request_id).into_response(),
        Err(error) => Answer::refusal(error, request_id, None).into_response(),
    }
}

/// `GET /v1/balance`: the platform's available and pending funds by currency.
async fn balance(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    let request_id = new_id("req");
    if let Err(error) = authenticate(&headers) {
        return Answer::refusal(error, request_id, None).into_response();
    }
    let body = {
        let mut state = sim.lock();
        let now = state.now();
        state.store.balance.settled_json(now)
    };
    Answer::ok(body, request_id).into_response()
}

/// `GET /v1/account`: the platform account the key belongs to, named as a simulator's, so the
/// product can say which provider and account it bills through.
async fn platform_account(State(_): State<Sim>, headers: HeaderMap) -> Response {
    let request_id = new_id("req");
    match authenticate(&headers) {
        Err(error) => Answer::refusal(error, request_id, None).into_response(),
        Ok(_) => {
            let body = serde_json::json!({
                "id": "acct_simulator",
                "object": "account",
                "business_profile": { "name": "billing psp-sim" },
                "charges_enabled": true,
                "payouts_enabled": true,
                "country": "US",
                "livemode": false,
            });
            Answer::ok(body, request_id).into_response()
        }
    }
}

/// The secret key from `Authorization: Bearer sk_test_…`. Live keys are refused outright: a
/// simulator must never be mistaken for the real provider, in either direction.
fn authenticate(headers: &HeaderMap) -> Result<String, StripeError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(StripeError::unauthenticated(
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| {
            StripeError::unauthenticated(
                "Invalid Authorization header: use Bearer auth with a secret key (sk_test_…).",
            )
        })?;
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        return Err(StripeError::unauthenticated(
            "This is a payment-provider simulator: it refuses live keys. Use a test key (sk_test_…).",
        ));
    }
    match key.strip_prefix("sk_test_") {
        Some(rest) if !rest.is_empty() && key.bytes().all(|b| b.is_ascii_graphic()) => Ok(key.to_owned()),
        _ => Err(StripeError::unauthenticated(format!("Invalid API Key provided: {}", redact(key)))),
    }
}

/// A key as Stripe echoes it in errors: its start and last four characters only.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 12 {
        return "*".repeat(chars.len().min(12));
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, StripeError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .map_err(|_| {
            StripeError::invalid("Invalid Idempotency-Key: only printable ASCII characters are allowed.")
        })?
        .trim();
    if key.is_empty() {
        return Err(StripeError::invalid("Invalid Idempotency-Key: it is empty."));
    }
    if key.chars().count() > MAX_KEY_CHARS {
        return Err(StripeError::invalid(format!(
            "Invalid Idempotency-Key: keys can be at most {MAX_KEY_CHARS} characters long."
        )));
    }
    Ok(Some(key.to_owned()))
}

/// An answer and the headers Stripe sends with it.
struct Answer {
    status: StatusCode,
    body: Value,
    request_id: String,
    idempotency_key: Option<String>,
    /// Set on replays: the request whose answer this is.
    original_request: Option<String>,
    should_retry: bool,
    /// Held this long before it is sent (the `timeout_after_charge` fault).
    hold_ms: Option<u64>,
    /// Sent as something that does not say what happened (the `ambiguous_rate` fault).
    garble: Option<super::state::Garble>,
}

/// An answer that does not say what happened to a request that did move money.
fn garbled(garble: super::state::Garble) -> Response {
    use super::state::Garble;
    match garble {
        Garble::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "Request Timeout").into_response(),
        Garble::FailedDependency => {
            (StatusCode::FAILED_DEPENDENCY, Json(serde_json::json!({ "message": "upstream failed" })))
                .into_response()
        }
        Garble::ProxyPage => (
            StatusCode::BAD_GATEWAY,
            [(axum::http::header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Garble::Reset => {
            let reset = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "reset",
                ))
            });
            let mut response = axum::body::Body::from_stream(reset).into_response();
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    }
}

impl Answer {
    fn ok(body: Value, request_id: String) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            request_id,
            idempotency_key: None,
            original_request: None,
            should_retry: false,
            hold_ms: None,
            garble: None,
        }
    }

    fn refusal(error: StripeError, request_id: String, idempotency_key: Option<String>) -> Self {
        Self {
            status: error.status,
            body: error.body(),
            request_id,
            idempotency_key,
            original_request: None,
            should_retry: error.should_retry,
            hold_ms: None,
            garble: None,
        }
    }

    fn replay(saved: Saved, request_id: String, idempotency_key: String) -> Self {
        Self {
            status: saved.status,
            body: saved.body,
            request_id,
            idempotency_key: Some(idempotency_key),
            original_request: Some(saved.request_id),
            should_retry: false,
            hold_ms: None,
            garble: None,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        set("request-id", &self.request_id);
        if let Some(key) = &self.idempotency_key {
            set("idempotency-key", key);
        }
        if let Some(original) = &self.original_request {
            set("idempotent-replayed", "true");
            set("original-request", original);
        }
        if self.should_retry {
            set("stripe-should-retry", "true");
        }
        response
    }
}

/// `GET /sim/ledger`: every movement in the order it was made.
async fn ledger(State(sim): State<Sim>) -> Json<Value> {
    let state = sim.lock();
    let entries: Vec<Value> = state.store.ledger.iter().map(json_of).collect();
    Json(json!({ "entries": entries }))
}

/// Counts every Stripe API request, answered or not, for `GET /sim/stats`.
async fn count_request(
    State(sim): State<Sim>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    sim.count_request();
    next.run(request).await
}

/// `GET /sim/stats`: how many Stripe API requests the simulator received since it started (what
/// the benchmarks divide by the time to get the achieved call rate), and the most it received in
/// any one second (what a provider's per-second limit counts), from `?since_ms=` (milliseconds
/// since the epoch) when given.
async fn stats(State(sim): State<Sim>, RawQuery(query): RawQuery) -> Json<Value> {
    let since_ms = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("since_ms=")))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    Json(json!({ "requests": sim.requests(), "max_per_second": sim.max_per_second(since_ms) }))
}

/// The furthest `POST /sim/clock` moves the clock at once: a year.
const MAX_ADVANCE_SECONDS: i64 = 366 * 24 * 3600;

/// `POST /sim/clock` `{"advance_seconds": N}`: moves the simulator's clock forward (never back),
/// so that tests see what a provider does a day later: keys saved more than 24 h before are
/// forgotten, funds pending become available. Answers the clock.
async fn move_clock(State(sim): State<Sim>, body: Bytes) -> Response {
    let advance = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("advance_seconds").and_then(Value::as_i64))
        .filter(|s| (0..=MAX_ADVANCE_SECONDS).contains(s));
    let Some(advance) = advance else {
        let message = format!("advance_seconds: a whole number of seconds from 0 to {MAX_ADVANCE_SECONDS}");
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "type": "invalid_request_error", "message": message } })),
        )
            .into_response();
    };
    let mut state = sim.lock();
    state.clock_offset += chrono::Duration::seconds(advance);
    let now = state.now();
    Json(json!({ "now": now.to_rfc3339(), "offset_seconds": state.clock_offset.num_seconds() }))
        .into_response()
}

/// `POST /sim/disputes` `{"charge": "ch_…", "reason"?: "fraudulent", "amount"?: N}`: the
/// cardholder's bank disputes the charge. Answers the dispute (`needs_response`) and sends
/// `charge.dispute.created` then `charge.dispute.funds_withdrawn`.
async fn open_dispute(State(sim): State<Sim>, body: Bytes) -> Response {
    let opened = NewDispute::parse(&body).and_then(|req| {
        let mut state = sim.lock();
        let now = state.now();
        state.store.open_dispute(req, now).inspect(|done| announce(&state, done))
    });
    answer(opened)
}

/// `POST /sim/disputes/:id/close` `{"outcome": "won"|"lost"}`: the bank decides. Answers the
/// dispute and sends `charge.dispute.closed` (then `charge.dispute.funds_reinstated` on a win).
async fn close_dispute(State(sim): State<Sim>, Path(id): Path<String>, body: Bytes) -> Response {
    let closed = Verdict::parse(&body).and_then(|verdict| {
        let mut state = sim.lock();
        let now = state.now();
        state.store.close_dispute(&id, verdict, now).inspect(|done| announce(&state, done))
    });
    answer(closed)
}

/// Sends the webhook events of a test control's change.
fn announce(state: &super::state::State, done: &Executed) {
    super::webhook::send(&state.faults.config, &done.body, &done.events);
}

/// A test control's answer: its object, or the refusal in Stripe's error shape.
fn answer(done: Result<Executed, StripeError>) -> Response {
    match done {
        Ok(done) => Answer::ok(done.body, new_id("req")).into_response(),
        Err(error) => Answer::refusal(error, new_id("req"), None).into_response(),
    }
}

/// `POST /sim/reset`: an empty provider with the starting faults, for the next test.
async fn reset(State(sim): State<Sim>) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

/// `GET /sim/faults`: the fault settings in force.
async fn faults(State(sim): State<Sim>) -> Json<Value> {
    Json(json_of(&sim.lock().faults.config))
}

/// `PUT /sim/faults`: change some fault settings while running; the answer is all of them.
async fn set_faults(State(sim): State<Sim>, body: Bytes) -> Response {
    let update: FaultsUpdate = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            let error = StripeError::invalid(format!("Invalid fault settings: {error}"));
            return Answer::refusal(error, new_id("req"), None).into_response();
        }
    };
    let mut state = sim.lock();
    match state.faults.update(update) {
        Ok(()) => Json(json_of(&state.faults.config)).into_response(),
        Err(error) => {
            let error = StripeError::invalid_param(error.field, error.to_string());
            Answer::refusal(error, new_id("req"), None).into_response()
        }
    }
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    Answer::refusal(StripeError::unrecognized_url(method.as_str(), uri.path()), new_id("req"), None)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).expect("ASCII"));
        headers
    }

    #[test]
    fn only_test_secret_keys_get_in() {
        assert_eq!(authenticate(&headers("Bearer sk_test_abc")).expect("test key"), "sk_test_abc");
        for refused in
            ["Bearer sk_live_abc", "Bearer sk_test_", "Bearer pk_test_abc", "Basic abc", "sk_test_abc"]
        {
            let error = authenticate(&headers(refused)).expect_err(refused);
            assert_eq!(error.status, StatusCode::UNAUTHORIZED, "{refused}");
        }
        assert!(authenticate(&HeaderMap::new()).is_err());
    }

    #[test]
    fn errors_show_only_the_ends_of_a_key() {
        assert_eq!(redact("sk_test_1234567890abcd"), "sk_test_****abcd");
        assert_eq!(redact("short"), "*****");
    }
}

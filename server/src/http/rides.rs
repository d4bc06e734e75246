//! `POST /api/v1/rides`: the carpool app reports rides, one or a batch of up to 10,000, with a
//! ride-ingestion API key. Each ride is validated and stored once by its id; every refused ride
//! comes back with its index, field and reason, and the others are stored anyway.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::api::ErrorBody;
use super::authenticate::IngestKey;
use super::AppState;
use crate::db::rides::{StoreRideError, Stored};
use app::model::billing::Ride;

/// The most rides one request may carry.
pub const MAX_BATCH: usize = 10_000;

fn error(status: StatusCode, field: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into(), "field": field }))).into_response()
}

/// The outcome of one ride, as the answer reports it.
enum Outcome {
    Stored(Stored),
    Refused { status: StatusCode, field: String, reason: String, stored: Option<Ride> },
}

/// A ride as sent, or why it could not be read (the field and the reason).
fn parse_ride(value: Value) -> Result<Ride, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "ride".to_owned() } else { field };
        (field, e.into_inner().to_string())
    })
}

/// How the answer reports what storing a ride did.
fn outcome(stored: Result<Stored, StoreRideError>) -> Outcome {
    match stored {
        Ok(stored) => Outcome::Stored(stored),
        Err(StoreRideError::Conflict { stored }) => Outcome::Refused {
            status: StatusCode::CONFLICT,
            field: "ride_id".into(),
            reason: "another ride was already stored under this id".into(),
            stored: Some(*stored),
        },
        Err(StoreRideError::Database(e)) => {
            let error = super::state::internal_error("storing a ride", e);
            Outcome::Refused {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                field: "ride".into(),
                reason: error.to_string(),
                stored: None,
            }
        }
        Err(refused) => {
            let message = refused.to_string();
            let (field, reason) = message.split_once(": ").unwrap_or(("ride", &message));
            Outcome::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                field: field.to_owned(),
                reason: reason.to_owned(),
                stored: None,
            }
        }
    }
}

fn unreadable((field, reason): (String, String)) -> Outcome {
    Outcome::Refused { status: StatusCode::UNPROCESSABLE_ENTITY, field, reason, stored: None }
}

/// The body as JSON, once an ingestion key authenticated the request; else the error to answer
/// with: 401 without a key, 400 when the body is not JSON.
fn keyed_json(
    key: Option<Extension<IngestKey>>,
    body: &[u8],
) -> Result<Value, (StatusCode, &'static str, String)> {
    if key.is_none() {
        let message = "a ride-ingestion API key is required (Bearer cbkey_…)";
        return Err((StatusCode::UNAUTHORIZED, "authorization", message.into()));
    }
    serde_json::from_slice(body).map_err(|e| (StatusCode::BAD_REQUEST, "body", format!("not JSON: {e}")))
}

/// One ride, or {rides: [...]} up to 10,000; idempotent by ride_id
///
/// Each ride is validated and stored once by its id; in a batch every refused ride comes back
/// with its index, field and reason, and the others are stored anyway.
#[utoipa::path(post, path = "/api/v1/rides", tag = "ingestion", security(("ingestKey" = [])),
    request_body(content = serde_json::Value, description = "One ride {ride_id, driver_id, distance_m \
        (metres), started_at, ended_at (RFC 3339; the ride belongs to the billing week in which it ended), \
        seats: [{passenger_id, attendance: completed, cancelled or no_show}]}, or {rides: [...]} of up \
        to 10,000 rides"),
    responses((status = 200, description = "The same ride again ({ride_id, stored: already}), or a batch: {created, duplicates, rejected: [{index, ride_id, status, field, reason}]}"),
        (status = 201, description = "Stored"),
        (status = 409, description = "Another ride under this id: {stored, received}"),
        (status = 422, description = "A refused ride, naming the field", body = ErrorBody)))]
pub async fn ingest(
    State(state): State<AppState>,
    key: Option<Extension<IngestKey>>,
    body: Bytes,
) -> Response {
    let value = match keyed_json(key, &body) {
        Ok(value) => value,
        Err((status, field, message)) => return error(status, field, message),
    };
    let batch = match value {
        Value::Object(mut object) if object.contains_key("rides") => match object.remove("rides") {
            Some(Value::Array(rides)) => rides,
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "rides", "must be an array of rides"),
        },
        single @ Value::Object(_) => return answer_single(&state, single).await,
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", "must be a ride or {\"rides\": [...]}"),
    };
    if batch.len() > MAX_BATCH {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rides",
            format!("at most {MAX_BATCH} rides per request"),
        );
    }
    // Every ride read first, then the readable ones stored together (one transaction), each
    // answered at its index.
    let mut ids: Vec<Option<String>> = Vec::with_capacity(batch.len());
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
    let (mut rides, mut at) = (Vec::new(), Vec::new());
    for (index, value) in batch.into_iter().enumerate() {
        ids.push(value.get("ride_id").and_then(Value::as_str).map(str::to_owned));
        match parse_ride(value) {
            Ok(ride) => {
                outcomes.push(None);
                rides.push(ride);
                at.push(index);
            }
            Err(unread) => outcomes.push(Some(unreadable(unread))),
        }
    }
    match state.db.store_rides(&rides).await {
        Ok(stored) => {
            for (index, stored) in at.into_iter().zip(stored) {
                outcomes[index] = Some(outcome(stored));
            }
        }
        Err(e) => {
            let error = super::state::internal_error("storing a batch of rides", e);
            return super::authenticate::json_error(&error, &error.to_string());
        }
    }
    let (mut created, mut duplicates, mut rejected) = (0u64, 0u64, Vec::new());
    for (index, (ride_id, outcome)) in ids.into_iter().zip(outcomes).enumerate() {
        match outcome.expect("every ride has an outcome") {
            Outcome::Stored(Stored::Created) => created += 1,
            Outcome::Stored(Stored::AlreadyStored) => duplicates += 1,
            Outcome::Refused { status, field, reason, stored } => rejected.push(json!({
                "index": index,
                "ride_id": ride_id,
                "status": status.as_u16(),
                "field": field,
                "reason": reason,
                "stored": stored,
            })),
        }
    }
    Json(json!({ "created": created, "duplicates": duplicates, "rejected": rejected })).into_response()
}

async fn answer_single(state: &AppState, value: Value) -> Response {
    let received = value.clone();
    let ride_id = value.get("ride_id").and_then(Value::as_str).map(str::to_owned);
    let answer = match parse_ride(value) {
        Ok(ride) => (Some(ride.ride_id.clone()), outcome(state.db.store_ride(&ride).await)),
        Err(unread) => (ride_id, unreadable(unread)),
    };
    match answer {
        (ride_id, Outcome::Stored(Stored::Created)) => {
            (StatusCode::CREATED, Json(json!({ "ride_id": ride_id, "stored": "created" }))).into_response()
        }
        (ride_id, Outcome::Stored(Stored::AlreadyStored)) => {
            (StatusCode::OK, Json(json!({ "ride_id": ride_id, "stored": "already" }))).into_response()
        }
        (ride_id, Outcome::Refused { status, field, reason, stored }) => (
            status,
            Json(json!({ "ride_id": ride_id, "error": reason, "field": field, "stored": stored, "received": stored.as_ref().map(|_| received) })),
        )
            .into_response(),
    }
}

/// A user as the carpool app sends it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserIn {
    id: String,
    name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    language: Option<String>,
    /// The rider's customer at the provider (`cus_…`); null removes it.
    #[serde(default, deserialize_with = "sent")]
    provider_customer_id: Option<Option<String>>,
    /// The rider's saved card (`pm_…`); null removes it.
    #[serde(default, deserialize_with = "sent")]
    provider_payment_method_id: Option<Option<String>>,
    /// The driver's connected account (`acct_…`); null removes it.
    #[serde(default, deserialize_with = "sent")]
    provider_account_id: Option<Option<String>>,
}

/// A field that was sent, as null or as a string (a field not sent stays `None`).
fn sent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    <Option<String> as serde::Deserialize>::deserialize(d).map(Some)
}

/// A provider reference as sent: checked against its prefix when it is a string.
fn provider_ref(
    sent: Option<Option<String>>,
    field: &'static str,
    prefix: &str,
) -> Result<Option<Option<String>>, (&'static str, String)> {
    match sent {
        Some(Some(raw)) => {
            crate::psp::parse_object_id(&raw, prefix).map(|id| Some(Some(id))).map_err(|m| (field, m))
        }
        other => Ok(other),
    }
}

fn check_user(user: UserIn) -> Result<crate::db::rides::NewUser, (&'static str, String)> {
    let id = user.id.trim().to_owned();
    if !crate::billing::plan::valid_id(&id) {
        return Err(("id", "must be 1 to 100 characters".into()));
    }
    let name = user.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(("name", "must be 1 to 200 characters".into()));
    }
    let email =
        user.email.map(|e| app::model::staff::parse_email(&e)).transpose().map_err(|m| ("email", m))?;
    let language = user.language.unwrap_or_else(|| "en".into());
    if !matches!(language.as_str(), "en" | "es") {
        return Err(("language", format!("{language:?} is not one of en, es")));
    }
    let provider = crate::db::rides::ProviderRefs {
        customer_id: provider_ref(user.provider_customer_id, "provider_customer_id", "cus_")?,
        payment_method_id: provider_ref(
            user.provider_payment_method_id,
            "provider_payment_method_id",
            "pm_",
        )?,
        account_id: provider_ref(user.provider_account_id, "provider_account_id", "acct_")?,
    };
    Ok(crate::db::rides::NewUser { id, name, email, phone: user.phone, language, provider })
}

/// The carpool app syncs its users: {users: [{id, name, email, phone, language, provider_customer_id (cus_…), provider_payment_method_id (pm_…), provider_account_id (acct_…)}]}, up to 10,000. New users are added; a known user's provider references are updated (null removes one), each change audited with before and after
///
/// A known user's name and contact are left as they are. Each refused user comes back with its
/// index, field and reason, with nothing stored for it, and the others are stored.
#[utoipa::path(post, path = "/api/v1/users", tag = "ingestion", security(("ingestKey" = [])),
    request_body(content = serde_json::Value, description = "{users: [{id, name, email, phone, language \
        (en or es; en when left out), provider_customer_id (cus_…), provider_payment_method_id (pm_…), \
        provider_account_id (acct_…)}]}, up to 10,000 users; id and name required, a provider \
        reference sent as null is removed"),
    responses((status = 200, description = "{created, existing, updated, rejected: [{index, field, reason}]} (a refused user has nothing stored)"),
        (status = 422, description = "No users array, or more than 10,000 users", body = ErrorBody)))]
pub async fn add_users(
    State(state): State<AppState>,
    key: Option<Extension<IngestKey>>,
    peer: Option<Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Bytes,
) -> Response {
    let actor = crate::db::audit::Actor {
        kind: "token",
        name: key.as_ref().map(|k| format!("ingestion key {}", k.0 .0)).unwrap_or_default(),
        staff_id: None,
        source: peer.map(|p| p.0 .0.ip().to_string()).unwrap_or_default(),
    };
    let value = match keyed_json(key, &body) {
        Ok(value) => value,
        Err((status, field, message)) => return error(status, field, message),
    };
    let Some(Value::Array(batch)) = value.get("users").cloned() else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "users", "must be an array of users");
    };
    if batch.len() > MAX_BATCH {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "users",
            format!("at most {MAX_BATCH} users per request"),
        );
    }
    let (mut good, mut rejected) = (Vec::new(), Vec::new());
    for (index, value) in batch.into_iter().enumerate() {
        let checked = serde_path_to_error::deserialize::<_, UserIn>(value)
            .map_err(|e| (e.path().to_string(), e.into_inner().to_string()))
            .and_then(|user| check_user(user).map_err(|(field, reason)| (field.to_owned(), reason)));
        match checked {
            Ok(user) => good.push(user),
            Err((field, reason)) => {
                rejected.push(json!({ "index": index, "field": field, "reason": reason }))
            }
        }
    }
    match state.db.sync_users(&good, &actor).await {
        Ok(synced) => Json(json!({
            "created": synced.created,
            "existing": good.len() as u64 - synced.created,
            "updated": synced.updated,
            "rejected": rejected,
        }))
        .into_response(),
        Err(e) => {
            let error = super::state::internal_error("adding users", e);
            super::authenticate::json_error(&error, &error.to_string())
        }
    }
}

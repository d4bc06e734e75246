//! The middleware every request passes through: find out who is asking (session cookie or
//! bearer token), refuse cross-site state changes, apply the role table to server functions,
//! send anonymous page views to `/login`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use tower_sessions::Session;

use super::AppState;
use crate::auth::session::{
    ABSOLUTE_TIMEOUT_HOURS, IDLE_TIMEOUT_MINUTES, LOGIN_AT, SEEN_AT, STAFF_ID, TOUCH_EVERY_SECONDS,
};
use app::api::AppError;
use app::model::staff::{AuthMethod, Principal};

/// A ride-ingestion API key that authenticated this request (its id), put in the request's
/// extensions. It opens only `POST /api/v1/rides`; staff endpoints still need a [`Principal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestKey(pub i64);

/// Paths that need no identity at all: health, metrics, the API description and the dashboard's
/// static assets (no session is read for them, so they cost no database query).
fn is_static_or_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics" | "/favicon.svg" | "/api/v1/openapi.json")
        || path.starts_with("/pkg/")
}

/// Pages anyone may load.
fn is_open(path: &str) -> bool {
    matches!(path, "/login" | "/logout") || is_static_or_probe(path)
}

/// The client's address as this server sees it (the peer; proxies' headers are not trusted).
pub fn client_address(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr)
}

/// The client's address: the peer's, or the one a trusted proxy reports (see
/// [`crate::auth::throttle::client_ip`]).
pub fn client_ip(request: &Request, trusted: &[std::net::IpAddr]) -> Option<std::net::IpAddr> {
    let forwarded = request.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    crate::auth::throttle::client_ip(client_address(request).map(|a| a.ip()), forwarded, trusted)
}

/// Authenticates, checks CSRF and access, then runs the handler with the [`Principal`] (if any)
/// in the request's extensions.
pub async fn authenticate(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    if is_static_or_probe(&path) && request.method() == Method::GET {
        return next.run(request).await;
    }
    let source = client_ip(&request, &state.config.trusted_proxies)
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    let bearer = bearer_token(request.headers());

    let principal = match &bearer {
        Some(key) if key.starts_with(crate::auth::token::INGEST_KEY_PREFIX) => {
            match state.db.ingest_key(&crate::auth::token::hash(key)).await {
                Ok(Some(id)) => {
                    request.extensions_mut().insert(IngestKey(id));
                    None
                }
                Ok(None) => {
                    return json_error(&AppError::Unauthenticated, "the API key is unknown or revoked")
                }
                Err(e) => {
                    let error = crate::http::state::internal_error("checking the API key", e);
                    return json_error(&error, &error.to_string());
                }
            }
        }
        Some(token) => match principal_from_token(&state, token, &source).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                return json_error(
                    &AppError::Unauthenticated,
                    "the bearer token is unknown, revoked or expired",
                )
            }
            Err(e) => return json_error(&e, &e.to_string()),
        },
        None => match principal_from_session(&state, &session, &source).await {
            Ok(SessionState::Active(p)) => Some(p),
            Ok(SessionState::Expired) if is_page_view(&request, &path) => {
                return Redirect::to(&format!("/login?error=expired&next={}", encode_next(&request)))
                    .into_response();
            }
            Ok(_) => None,
            Err(e) => return json_error(&e, &e.to_string()),
        },
    };

    // CSRF: a state change carried by a cookie (or signing in, which sets one) must come from
    // this site's own pages. Requests with neither a cookie nor a bearer token fall through to
    // the 401 of the handler.
    let carries_cookie =
        request.headers().contains_key(header::COOKIE) || matches!(path.as_str(), "/login" | "/logout");
    if is_state_changing(request.method()) && bearer.is_none() && carries_cookie {
        if let Err(reason) = same_origin(request.headers(), state.public_origin.as_deref()) {
            let error =
                AppError::Forbidden(format!("cross-site request refused (CSRF protection): {reason}"));
            return json_error(&error, &error.to_string());
        }
    }

    if path.starts_with("/api/fn/") {
        // Checked here too, before the body is read (the function checks again when SSR calls it).
        if let Err(error) = app::api::check_access(&path, principal.as_ref()) {
            return server_fn_error(&error);
        }
    } else if principal.is_none() && is_page_view(&request, &path) && !is_open(&path) {
        return Redirect::to(&format!("/login?next={}", encode_next(&request))).into_response();
    }

    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

enum SessionState {
    Anonymous,
    Expired,
    Active(Principal),
}

async fn principal_from_session(
    state: &AppState,
    session: &Session,
    source: &str,
) -> Result<SessionState, AppError> {
    let internal =
        |e: tower_sessions::session::Error| crate::http::state::internal_error("reading the session", e);
    let Some(staff_id) = session.get::<i64>(STAFF_ID).await.map_err(internal)? else {
        return Ok(SessionState::Anonymous);
    };
    let now = Utc::now().timestamp();
    let login_at = session.get::<i64>(LOGIN_AT).await.map_err(internal)?.unwrap_or(0);
    let seen_at = session.get::<i64>(SEEN_AT).await.map_err(internal)?.unwrap_or(0);
    if now - login_at > ABSOLUTE_TIMEOUT_HOURS * 3600 || now - seen_at > IDLE_TIMEOUT_MINUTES * 60 {
        session.flush().await.map_err(internal)?;
        return Ok(SessionState::Expired);
    }
    let staff = state
        .db
        .staff_by_id(staff_id)
        .await
        .map_err(|e| crate::http::state::internal_error("reading the staff account", e))?;
    let Some(staff) = staff.filter(|s| s.disabled_at.is_none()) else {
        session.flush().await.map_err(internal)?;
        return Ok(SessionState::Expired);
    };
    if now - seen_at >= TOUCH_EVERY_SECONDS {
        session.insert(SEEN_AT, now).await.map_err(internal)?;
    }
    Ok(SessionState::Active(Principal { staff, method: AuthMethod::Session, source: source.to_owned() }))
}

async fn principal_from_token(
    state: &AppState,
    token: &str,
    source: &str,
) -> Result<Option<Principal>, AppError> {
    let internal = |e: sqlx::Error| crate::http::state::internal_error("checking the access token", e);
    let Some(staff_id) =
        state.db.staff_for_token(&crate::auth::token::hash(token)).await.map_err(internal)?
    else {
        return Ok(None);
    };
    let staff = state.db.staff_by_id(staff_id).await.map_err(internal)?;
    Ok(staff.filter(|s| s.disabled_at.is_none()).map(|staff| Principal {
        staff,
        method: AuthMethod::Token,
        source: source.to_owned(),
    }))
}

fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A browser navigating to a page (not a script, an asset or an API call).
fn is_page_view(request: &Request, path: &str) -> bool {
    request.method() == Method::GET && !path.starts_with("/api/") && !path.starts_with("/pkg/")
}

/// Whether the request comes from this site's own pages: `Sec-Fetch-Site: same-origin`, or an
/// `Origin` equal to the public address (or, when none is configured, to the `Host` header).
fn same_origin(headers: &HeaderMap, public_origin: Option<&str>) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site != "same-origin" {
            return Err("the request came from another site");
        }
    }
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or("the Origin header is missing (use a bearer token for scripts)")?;
    let expected = match public_origin {
        Some(public) => public.to_owned(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .ok_or("the Host header is missing")?;
            let scheme = if origin.starts_with("https://") { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    if origin.eq_ignore_ascii_case(&expected) {
        Ok(())
    } else {
        Err("the Origin header names another site")
    }
}

/// `/path?query`, percent-encoded for a `next=` parameter.
fn encode_next(request: &Request) -> String {
    let target = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    url::form_urlencoded::byte_serialize(target.as_bytes()).collect()
}

/// An error for a server function, in the encoding its client reads (JSON of [`AppError`]).
fn server_fn_error(error: &AppError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_string(error).unwrap_or_else(|_| "\"Unauthenticated\"".into());
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error for API clients: `{"error": "..."}` with the status of `error`.
pub fn json_error(error: &AppError, message: &str) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = serde_json::json!({ "error": message });
    if let AppError::Invalid { field, .. } | AppError::Conflict { field, .. } = error {
        body["field"] = serde_json::Value::String(field.clone());
    }
    (status, axum::Json(body)).into_response()
}

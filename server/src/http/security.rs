//! Protections every response gets: browser security headers, a body size limit, a timeout,
//! and panics turned into a plain 500 that reveals nothing.

use std::any::Any;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Response, StatusCode};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest body of `POST /api/v1/rides` (a batch of up to 10,000 rides).
pub const MAX_RIDES_BODY_BYTES: usize = 16 * 1024 * 1024;
/// The longest a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers set on every response unless the handler set them itself (the Content-Security-Policy
/// comes from `csp.rs`, with its nonce).
pub fn headers() -> [(HeaderName, HeaderValue); 5] {
    [
        // Pages and answers hold staff's and customers' data: kept only by this browser, and
        // checked again before each use (the assets under /pkg set their own).
        (header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("strict-origin-when-cross-origin")),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
        ),
    ]
}

/// A panic inside a handler: logged, and answered with a bare 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    Response::builder()
        .status(StatusCode::INTERNAL_SERVER_ERROR)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"error":"internal error"}"#))
        .expect("a static response is valid")
}

/// Refuses bodies over the limit of their route with 413, before reading them when the length is
/// announced, and stops reading at the limit when it is not.
pub async fn limit_body(request: axum::extract::Request, next: axum::middleware::Next) -> Response<Body> {
    let limit = if request.uri().path() == "/api/v1/rides" { MAX_RIDES_BODY_BYTES } else { MAX_BODY_BYTES };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"error":"the body is larger than {limit} bytes"}}"#)))
            .expect("a static response is valid");
    }
    next.run(request.map(|body| Body::new(http_body_util::Limited::new(body, limit)))).await
}

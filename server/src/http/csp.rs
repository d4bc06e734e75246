//! Content-Security-Policy with a fresh nonce per response: only this server's scripts run
//! (the hydration bootstrap carries the nonce; the bundle is loaded from `'self'`), WebAssembly
//! may compile, and nothing may frame the dashboard.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use leptos::nonce::Nonce;

/// Puts a nonce in the request's extensions (for Leptos to stamp on its scripts) and the
/// matching policy on the response.
pub async fn content_security_policy(mut request: Request, next: Next) -> Response {
    let nonce = Nonce::new();
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'"
    );
    request.extensions_mut().insert(nonce);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

//! `/healthz` (the process answers) and `/readyz` (the database answers and its schema is the
//! one this build expects). Load balancers send traffic only to ready instances.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use serde_json::json;

use super::AppState;

/// The process is up. Touches nothing else.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// 200 when the database answers and every migration of this build is applied; 503 with the
/// reason otherwise. Either way it says which payment provider, mode (test or live) and account
/// the process bills through.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let backend = state.db.backend();
    let provider = state.provider_info();
    if let Err(error) = state.db.ping().await {
        tracing::warn!(%error, "readiness: database unreachable");
        return not_ready(
            json!({ "status": "not_ready", "database": backend, "reason": "database unreachable" }),
        );
    }
    match state.db.migration_state().await {
        Ok(migrations) if migrations.is_current() => (
            StatusCode::OK,
            Json(
                json!({ "status": "ready", "database": backend, "migrations": migrations, "provider": provider }),
            ),
        ),
        Ok(migrations) => not_ready(json!({
            "status": "not_ready",
            "database": backend,
            "reason": "migrations pending or unknown: run `billing migrate`",
            "migrations": migrations,
            "provider": provider,
        })),
        Err(error) => {
            tracing::warn!(%error, "readiness: migration state unreadable");
            not_ready(
                json!({ "status": "not_ready", "database": backend, "reason": "migration state unreadable" }),
            )
        }
    }
}

fn not_ready(body: serde_json::Value) -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

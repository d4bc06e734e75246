//! Builds the whole HTTP application: dashboard pages, server functions, health and metrics.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{middleware, Router};
use leptos::nonce::Nonce;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{file_and_error_handler_with_context, generate_route_list, LeptosRoutes};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::authenticate::authenticate;
use super::login;
use super::{api, assets, csp, health, metrics, security, webhooks, AppState};
use crate::auth::session;
use app::api::Backend;
use app::{shell, App};

/// `/weeks`: the last complete week's preview, the one finance reviews next.
async fn last_week(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Redirect {
    let week =
        app::model::week::BillingWeek::containing(chrono::Utc::now(), state.config.time_zone).previous();
    axum::response::Redirect::to(&format!("/weeks/{week}"))
}

/// The application, ready to serve. Tests bind it to port 0.
pub fn router(state: AppState) -> Router {
    let backend: Arc<dyn Backend> = Arc::new(state.clone());
    let band = (state.config.provider.mode == crate::config::ProviderMode::Test).then(|| {
        app::model::system::TestModeBand(format!(
            "Test mode: no real money moves · {}",
            state.config.provider.describe()
        ))
    });
    let context = move || {
        provide_context(backend.clone());
        if let Some(band) = &band {
            provide_context(band.clone());
        }
        // The nonce the CSP middleware put on the response, for Leptos's scripts.
        if let Some(nonce) =
            use_context::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<Nonce>().cloned())
        {
            provide_context(nonce);
        }
    };
    let leptos = state.leptos.clone();
    let sessions = session::Store::new(&state.db).layer(state.config.secure_cookies());

    let mut router = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route("/login", post(login::login))
        .route("/logout", post(login::logout))
        .route("/weeks", get(last_week))
        .route("/webhooks/stripe", post(webhooks::stripe))
        .nest_service("/pkg", assets::service(&state.config.site_root, &state.leptos.output_name))
        .merge(api::routes())
        .leptos_routes_with_context(&state, generate_route_list(App), context.clone(), move || {
            shell(leptos.clone())
        })
        .fallback(file_and_error_handler_with_context::<AppState, _>(context, shell))
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(sessions)
        .layer(middleware::from_fn(csp::content_security_policy))
        .layer(middleware::from_fn(metrics::track));
    for (name, value) in security::headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, security::REQUEST_TIMEOUT))
        .layer(middleware::from_fn(security::limit_body))
        .layer(CatchPanicLayer::custom(security::panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

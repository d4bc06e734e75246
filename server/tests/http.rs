//! `billing serve` as a separate process, on each database: readiness, health, metrics,
//! security headers, errors that reveal nothing, and a graceful stop.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::Value;
use support::{email_of, Kind, ServerProcess, StaffedServer, TestDb};

on_both_databases! {
    async fn readyz_reports_ready_once_migrated(kind: Kind) {
        let test_db = TestDb::empty(kind).await;
        let server = ServerProcess::start(&test_db.url).await;
        let client = reqwest::Client::new();

        let response = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "not_ready");
        assert!(body["reason"].as_str().unwrap().contains("billing migrate"), "{body}");

        let output = support::billing().arg("migrate").env("DATABASE_URL", &test_db.url).output().await.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

        let response = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        assert_eq!(body["database"], match kind { Kind::Sqlite => "sqlite", Kind::Postgres => "postgres" });
        assert_eq!(body["migrations"]["pending"], Value::Array(vec![]));

        assert!(server.terminate().await.success(), "SIGTERM ends serve with exit 0");
    }

    async fn overview_is_rendered_on_the_server(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let client = app.signed_in(&email_of(Role::Support)).await;
        let response = client.get(app.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        let html = response.text().await.unwrap();
        let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a nonce in the CSP");
        assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the hydration script carries the response's nonce");
        let backend = match kind { Kind::Sqlite => "SQLite", Kind::Postgres => "PostgreSQL" };
        assert!(html.contains(backend), "the overview names the backend");
        assert!(html.contains("migrations applied"), "the overview shows the migration state");
        assert!(html.contains(env!("CARGO_PKG_VERSION")));
    }
}

#[tokio::test]
async fn health_metrics_headers_and_errors() {
    let app = StaffedServer::start(Kind::Sqlite).await;
    let server = &app.server;
    let client = app.signed_in(&email_of(Role::Finance)).await;

    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        assert_eq!(health.headers().get(name).and_then(|v| v.to_str().ok()), Some(value), "{name}");
    }
    assert!(health.headers().contains_key("x-request-id"));
    let csp = health.headers()["content-security-policy"].to_str().unwrap();
    for directive in
        ["script-src 'self' 'nonce-", "'wasm-unsafe-eval'", "frame-ancestors 'none'", "object-src 'none'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }

    let missing = client.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.text().await.unwrap().contains("Page not found"));

    // A body over the limit is refused before it is read.
    assert_eq!(
        support::status_of_oversized_post(&server.base, "/api/fn/overview", 2 * 1024 * 1024).await,
        413
    );

    // The overview's server function answers JSON.
    let overview = client.post(server.url("/api/fn/overview")).send().await.unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    let body: Value = overview.json().await.unwrap();
    assert_eq!(body["backend"], "sqlite");
    assert_eq!(body["time_zone"], "UTC");

    let metrics = client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"route="/healthz""#), "{metrics}");
    assert!(metrics.contains(r#"route="unmatched""#), "unknown paths share one label: {metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"), "{metrics}");
}

#[tokio::test]
async fn the_business_clock_follows_billing_tz() {
    let app = StaffedServer::start_with_env(Kind::Sqlite, &[("BILLING_TZ", "Asia/Tokyo")]).await;
    let body: Value = app
        .signed_in(&email_of(Role::Support))
        .await
        .post(app.url("/api/fn/overview"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["time_zone"], "Asia/Tokyo");
    assert!(body["local_time"].as_str().unwrap().ends_with("+09:00"), "{body}");
}

/// The OpenAPI description is served to anyone, is generated from the routes themselves (no
/// `/api/v1` route is registered outside `routes!`, which adds each handler's description), and
/// every operation it describes is a real route: unauthenticated, each answers 401, never 404 or
/// 405.
#[tokio::test]
async fn the_openapi_description_lists_every_api_route() {
    let (test_db, _db) = TestDb::migrated(Kind::Sqlite).await;
    let server = ServerProcess::start(&test_db.url).await;
    let response = reqwest::get(server.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "paths described: {:?}", paths.keys().collect::<Vec<_>>());

    // No route of the API's folder bypasses the described router.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/api");
    let files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    assert!(files.iter().any(|path| path.ends_with("mod.rs")), "no mod.rs in {folder}: {files:?}");
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        assert!(!source.contains(".route(\"/api"), "{} registers an undescribed route", file.display());
    }
    let router = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/router.rs")).unwrap();
    assert!(!router.contains("\"/api/"), "router.rs registers an API route outside api::routes()");

    let client = reqwest::Client::new();
    for (path, operations) in paths {
        let url = path
            .replace("{week}", "2026-W48")
            .replace("{action}", "pause")
            .replace("{decision}", "approve")
            .replace("{kind}", "charge")
            .replace("{payout_id}", "1")
            .replace("{item}", "1")
            .replace("{id}", "1");
        assert!(!url.contains('{'), "a path parameter this test does not fill in: {path}");
        for (method, operation) in operations.as_object().unwrap() {
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            assert!(operation["summary"].is_string(), "{method} {path} has no summary");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = client
                .request(method.clone(), server.url(&url))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap()
                .status();
            let expected = if path == "/api/v1/openapi.json" { 200 } else { 401 };
            assert_eq!(status.as_u16(), expected, "{method} {url} (described as {path})");
        }
    }
    server.terminate().await;
}

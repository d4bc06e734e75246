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

/// The OpenAPI description is served to anyone and lists every route of the JSON API.
#[tokio::test]
async fn the_openapi_description_lists_every_api_route() {
    let (test_db, _db) = TestDb::migrated(Kind::Sqlite).await;
    let server = ServerProcess::start(&test_db.url).await;
    let response = reqwest::get(server.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every file of the API's folder, so a route is found wherever it is declared.
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/api");
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    assert!(files.iter().any(|path| path.ends_with("mod.rs")), "no mod.rs in {folder}: {files:?}");
    let source: String = files.iter().map(|path| std::fs::read_to_string(path).unwrap()).collect();
    let routes: Vec<&str> = source
        .split(".route(")
        .skip(1)
        .map(|rest| rest.trim_start().trim_start_matches('"').split('"').next().unwrap())
        .collect();
    assert!(routes.len() >= 15, "routes found in src/http/api/: {routes:?}");
    for route in &routes {
        assert!(paths.contains_key(*route), "{route} is missing from openapi.json");
    }
    for path in paths.keys() {
        assert!(routes.contains(&path.as_str()), "openapi.json lists {path}, which is not a route");
    }
    server.terminate().await;
}

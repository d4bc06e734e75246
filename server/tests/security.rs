//! Staff access over real HTTP against a running `billing serve`: the role table for every
//! server function and API call, sign-in failures, sessions, CSRF, injection and bad input.
//! Each test runs on SQLite and on PostgreSQL.

mod support;

use std::collections::BTreeSet;

use app::api::{Access, ACCESS};
use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{email_of, StaffedServer, PASSWORD};

/// A valid request body for each server function: (path, content type, body).
fn sample_call(path: &str) -> (&'static str, String) {
    const FORM: &str = "application/x-www-form-urlencoded";
    match path {
        "/api/fn/whoami" | "/api/fn/overview" | "/api/fn/staff/list" | "/api/fn/tokens/list" => {
            (FORM, String::new())
        }
        "/api/fn/tokens/create" => (FORM, "name=matrix&days=30".into()),
        "/api/fn/tokens/revoke" => (FORM, "token_id=999999".into()),
        "/api/fn/audit" => ("application/json", json!({ "query": {} }).to_string()),
        "/api/fn/staff/add" => (
            FORM,
            format!(
                "email=new-{}%40test.example&role=support&password=a+long+enough+password",
                uuid::Uuid::new_v4().simple()
            ),
        ),
        "/api/fn/staff/disable" => (FORM, "staff_id=999999".into()),
        "/api/fn/weeks/summary" => (FORM, "week=2026-W01".into()),
        "/api/fn/runs/list" | "/api/fn/runs/halted" => (FORM, String::new()),
        "/api/fn/runs/get" => (FORM, "id=999999".into()),
        "/api/fn/runs/settings" => (FORM, String::new()),
        "/api/fn/runs/settings/save" => {
            ("application/json", json!({ "settings": { "workers": 8 } }).to_string())
        }
        // No such payout: 404 for the roles that may retry payouts.
        "/api/fn/runs/payouts/retry" => (FORM, "run_id=999999&payout_id=1".into()),
        "/api/fn/runs/held/look-again" | "/api/fn/runs/held/not-made" => {
            (FORM, "run_id=999999&kind=charge&id=1".into())
        }
        // Not approved: 409 for the roles that may start runs.
        "/api/fn/runs/start" => (FORM, "week=2026-W01".into()),
        "/api/fn/runs/control" => (FORM, "id=999999&action=pause&reason=".into()),
        "/api/fn/weeks/invoices" => {
            ("application/json", json!({ "query": { "week": "2026-W01" } }).to_string())
        }
        "/api/fn/weeks/invoice" => (FORM, "week=2026-W01&user_id=nobody".into()),
        "/api/fn/weeks/payouts" => (FORM, "week=2026-W01&after=".into()),
        // A hash no preview has: refused with 409 for the roles that may approve.
        "/api/fn/weeks/approve" => (FORM, "week=2026-W01&content_hash=not-the-reviewed-one".into()),
        "/api/fn/users/search" => (FORM, "q=nobody".into()),
        "/api/fn/users/profile" => (FORM, "id=nobody".into()),
        "/api/fn/users/activity" => (FORM, "id=nobody&section=rides&before=".into()),
        "/api/fn/invoices/get" | "/api/fn/invoices/refunds" => (FORM, "id=999999".into()),
        // No such invoice: 404 for the roles that may refund.
        "/api/fn/refunds/create" => {
            (FORM, "invoice_id=999999&amount=1.00&reason=duplicate&request_id=matrix&note=&lines=".into())
        }
        "/api/fn/refunds/decide" => (FORM, "refund_id=999999&decision=approve&note=".into()),
        "/api/fn/refunds/awaiting" => (FORM, String::new()),
        "/api/fn/reports/get" => (FORM, "from=2026-W01&to=".into()),
        "/api/fn/reconcile/latest" => (FORM, "week=2026-W01".into()),
        // The test server has the in-process simulator: an empty week reconciles to nothing.
        "/api/fn/reconcile/run" => (FORM, "week=2026-W01".into()),
        // Nothing to repair: an empty list is what was reviewed.
        "/api/fn/reconcile/repair" => (FORM, "week=2026-W01&payment_intents=".into()),
        "/api/fn/reconcile/acknowledge" => (FORM, "week=2026-W01".into()),
        "/api/fn/reconcile/open" => (FORM, String::new()),
        "/api/fn/alerts/page" => (FORM, "messages=".into()),
        "/api/fn/alerts/test" | "/api/fn/alerts/open" => (FORM, String::new()),
        // No such alert: 404 for the roles that may handle alerts.
        "/api/fn/alerts/settle" => (FORM, "id=999999&action=acknowledge".into()),
        "/api/fn/alerts/settings" => {
            ("application/json", json!({ "settings": { "escalate_after_seconds": 600 } }).to_string())
        }
        "/api/fn/pricing/versions" => (FORM, String::new()),
        // A week in the past: refused with 422 for the roles that may propose.
        "/api/fn/pricing/propose" => (
            "application/json",
            json!({ "version": { "effective_week": "2026-W01", "base": "2.00", "per_km": "0.35",
                "platform_fee_bps": "1500", "no_show_fee": "3.00", "note": "" } })
            .to_string(),
        ),
        // No such version: 404 for the roles that may decide.
        "/api/fn/pricing/decide" => (FORM, "version_id=999999&decision=approve".into()),
        "/api/fn/pricing/what-if" => (FORM, "version_id=999999&week=2026-W01".into()),
        "/api/fn/disputes/list" => (FORM, "status=".into()),
        "/api/fn/disputes/evidence" => (FORM, "dispute_id=999999&note=".into()),
        // A week without rides: nobody has an invoice, so 422 naming user_id for the roles that
        // may waive.
        "/api/fn/waivers/create" => (
            FORM,
            "week=2026-W01&user_id=nobody&target=invoice&reason=goodwill&note=&request_id=matrix".into(),
        ),
        // No such waiver: 404 for the roles that may decide or withdraw.
        "/api/fn/waivers/decide" => (FORM, "waiver_id=999999&decision=approve&note=".into()),
        "/api/fn/waivers/withdraw" => (FORM, "waiver_id=999999&note=".into()),
        other => {
            panic!("{other} has no sample call in this test: add one, with its entry in app::api::ACCESS")
        }
    }
}

#[test]
fn every_server_function_is_in_the_role_table() {
    let registered: BTreeSet<&str> =
        leptos::server_fn::axum::server_fn_paths().map(|(path, _)| path).collect();
    assert!(
        registered.contains("/api/fn/overview"),
        "server functions are linked into this test: {registered:?}"
    );
    let listed: BTreeSet<&str> = ACCESS.iter().map(|(path, _)| *path).collect();
    assert_eq!(
        registered, listed,
        "every server function needs an entry in app::api::ACCESS (and no stale ones)"
    );
    for path in &registered {
        sample_call(path);
    }
}

on_both_databases! {
    async fn every_role_against_every_server_function(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let anonymous = app.browser();
        for (path, access) in ACCESS {
            let (content_type, body) = sample_call(path);
            let status = anonymous.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap().status();
            let expected = if *access == Access::Public { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            assert_eq!(status, expected, "anonymous {path}");
        }
        for role in Role::ALL {
            let client = app.signed_in(&email_of(role)).await;
            for (path, access) in ACCESS {
                let (content_type, body) = sample_call(path);
                let response = client.post(app.url(path)).header("content-type", content_type).body(body).send().await.unwrap();
                let status = response.status();
                match access {
                    Access::Requires(action) if !role.can(*action) => {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{role} {path}");
                        let text = response.text().await.unwrap();
                        assert!(text.contains(&format!("the {role} role may not")), "{role} {path}: {text}");
                    }
                    _ => assert!(
                        status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                        "{role} {path}: {status} {}", response.text().await.unwrap()
                    ),
                }
            }
        }
    }

    async fn server_rendered_pages_show_only_what_the_role_may_see(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        for (role, page, marker) in [(Role::Support, "/audit", "audit-table"), (Role::Finance, "/staff", "staff-table"), (Role::Support, "/staff", "staff-table"), (Role::Support, "/pricing", "data-testid=\"versions\"")] {
            let client = app.signed_in(&email_of(role)).await;
            let response = client.get(app.url(page)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{role} {page}");
            let html = response.text().await.unwrap();
            assert!(!html.contains(marker), "{role} must not get {page}'s data");
            assert!(html.contains(&format!("the {role} role may not")), "{role} {page} says why");
        }
        let admin = app.signed_in(&email_of(Role::Admin)).await;
        for (page, marker) in [("/audit", "audit-table"), ("/staff", "staff-table"), ("/weeks/2026-W01", "week-totals"), ("/pricing", "data-testid=\"versions\"")] {
            let html = admin.get(app.url(page)).send().await.unwrap().text().await.unwrap();
            assert!(html.contains(marker), "admin sees {page}");
        }
        // Support reads the week (to waive its lines) but is offered no approval.
        let support = app.signed_in(&email_of(Role::Support)).await;
        let week = support.get(app.url("/weeks/2026-W01")).send().await.unwrap();
        assert_eq!(week.status(), StatusCode::OK);
        let html = week.text().await.unwrap();
        assert!(html.contains("week-totals") && !html.contains("approve-form"), "support sees the week, not the approval");
    }

    async fn pages_and_api_refuse_anonymous_callers(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let client = app.browser();
        for page in ["/", "/audit", "/staff"] {
            let response = client.get(app.url(page)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
            let location = response.headers()["location"].to_str().unwrap();
            assert!(location.starts_with("/login?next="), "{page}: {location}");
        }
        let login = client.get(app.url("/login")).send().await.unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        for api in ["/api/v1/me", "/api/v1/staff"] {
            let response = client.get(app.url(api)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{api}");
            let body: Value = response.json().await.unwrap();
            assert!(body["error"].is_string());
        }
    }

    async fn the_api_applies_the_same_roles_to_tokens(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let http = reqwest::Client::new();
        for role in Role::ALL {
            let token = app.token_for(&email_of(role)).await;
            assert!(token.starts_with("cbpat_"));
            let me: Value = http.get(app.url("/api/v1/me")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
            assert_eq!(me["email"], email_of(role));
            assert_eq!(me["role"], role.as_str());
            let staff = http.get(app.url("/api/v1/staff")).bearer_auth(&token).send().await.unwrap();
            let expected = if role == Role::Admin { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(staff.status(), expected, "{role}");
        }
        let wrong = http.get(app.url("/api/v1/me")).bearer_auth("cbpat_not_a_real_token").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }

    async fn staff_manage_their_own_tokens_only(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let support = app.signed_in(&email_of(Role::Support)).await;
        let created = support.post(app.url("/api/fn/tokens/create")).form(&[("name", "export script"), ("days", "30")]).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::OK);
        let created: Value = created.json().await.unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        let http = reqwest::Client::new();
        let me: Value = http.get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().json().await.unwrap();
        assert_eq!(me["role"], "support");

        let listed = support.post(app.url("/api/fn/tokens/list")).send().await.unwrap().text().await.unwrap();
        assert!(listed.contains("export script") && !listed.contains(&secret), "listed, never with its secret");

        // A hostile token name is shown as text on the profile page.
        let hostile = support.post(app.url("/api/fn/tokens/create")).form(&[("name", "<img src=x onerror=alert(1)>"), ("days", "1")]).send().await.unwrap();
        assert_eq!(hostile.status(), StatusCode::OK);
        let profile = support.get(app.url("/profile")).send().await.unwrap().text().await.unwrap();
        assert!(!profile.contains("<img src=x"), "no markup from a token name");
        assert!(profile.contains("&lt;img src=x onerror=alert(1)&gt;"));

        for (field, body) in [("name", [("name", " "), ("days", "30")]), ("days", [("name", "x"), ("days", "400")])] {
            let refused = support.post(app.url("/api/fn/tokens/create")).form(&body).send().await.unwrap();
            assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
            assert!(refused.text().await.unwrap().contains(field));
        }

        // Someone else's token cannot be revoked: it looks like no token at all.
        let id = created["token"]["id"].as_i64().unwrap();
        let other = app.signed_in(&email_of(Role::Admin)).await;
        let theirs = other.post(app.url("/api/fn/tokens/revoke")).form(&[("token_id", id.to_string())]).send().await.unwrap();
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
        assert_eq!(http.get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().status(), StatusCode::OK);

        let revoked = support.post(app.url("/api/fn/tokens/revoke")).form(&[("token_id", id.to_string())]).send().await.unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        assert_eq!(http.get(app.url("/api/v1/me")).bearer_auth(&secret).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }

    async fn staff_management_over_the_api(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let http = reqwest::Client::new();
        let admin = app.token_for(&email_of(Role::Admin)).await;
        let post = |body: Value| http.post(app.url("/api/v1/staff")).bearer_auth(&admin).json(&body).send();

        let created = post(json!({"email": "Nina@Test.Example", "role": "finance", "password": "twelve chars ok"})).await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let nina: Value = created.json().await.unwrap();
        assert_eq!(nina["email"], "nina@test.example");

        for (body, field) in [
            (json!({"email": "nina@test.example", "role": "finance", "password": "twelve chars ok"}), "email"),
            (json!({"email": "not-an-email", "role": "finance", "password": "twelve chars ok"}), "email"),
            (json!({"email": "x@test.example", "role": "root", "password": "twelve chars ok"}), "role"),
            (json!({"email": "x@test.example", "role": "support", "password": "short"}), "password"),
        ] {
            let response = post(body.clone()).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["field"], field, "{error}");
        }
        let listed: Value = http.get(app.url("/api/v1/staff")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(listed["staff"].as_array().unwrap().len(), 4, "rejected requests stored nothing");

        // A disabled account's session and tokens stop working at once.
        let nina_token = app.token_for("nina@test.example").await;
        let nina_browser = app.browser();
        let signed_in = app.login(&nina_browser, "nina@test.example", "twelve chars ok").await;
        assert_eq!(signed_in.headers()["location"], "/");
        let id = nina["id"].as_i64().unwrap();
        let disabled = http.post(app.url(&format!("/api/v1/staff/{id}/disable"))).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(disabled.status(), StatusCode::OK);
        let me = http.get(app.url("/api/v1/me")).bearer_auth(&nina_token).send().await.unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        let page = nina_browser.get(app.url("/")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        let relogin = app.login(&app.browser(), "nina@test.example", "twelve chars ok").await;
        assert!(relogin.headers()["location"].to_str().unwrap().contains("error=invalid"));

        // Nobody disables themselves.
        let admin_id = app.db.staff_credentials(&email_of(Role::Admin)).await.unwrap().unwrap().staff.id;
        let own = http.post(app.url(&format!("/api/v1/staff/{admin_id}/disable"))).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(own.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // Everything above is in the audit log, with the actor.
        let page = app.db.audit_page(&app::model::audit::AuditQuery { action: Some("staff.".into()), ..Default::default() }).await.unwrap();
        let actions: Vec<(&str, &str)> = page.entries.iter().map(|e| (e.action.as_str(), e.actor_kind.as_str())).collect();
        assert_eq!(actions[0], ("staff.disable", "token"));
        assert_eq!(actions[1], ("staff.add", "token"));
        assert!(actions[2..].iter().all(|(a, k)| *a == "staff.add" && *k == "cli"), "{actions:?}");
    }

    async fn ride_ingestion_keys_are_admin_only_hashed_and_revocable(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let http = reqwest::Client::new();
        let admin = app.token_for(&email_of(Role::Admin)).await;
        let finance = app.token_for(&email_of(Role::Finance)).await;

        let refused = http.post(app.url("/api/v1/api-keys")).bearer_auth(&finance).json(&json!({"name": "app"})).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let unnamed = http.post(app.url("/api/v1/api-keys")).bearer_auth(&admin).json(&json!({"name": "  "})).send().await.unwrap();
        assert_eq!(unnamed.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(unnamed.json::<Value>().await.unwrap()["field"], "name");

        let created = http.post(app.url("/api/v1/api-keys")).bearer_auth(&admin).json(&json!({"name": "carpool app"})).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let key = created["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("cbkey_") && key.len() > 60, "{key}");
        let hash = server::auth::token::hash(&key);
        assert_eq!(app.db.ingest_key(&hash).await.unwrap(), created["id"].as_i64());

        let listed = http.get(app.url("/api/v1/api-keys")).bearer_auth(&admin).send().await.unwrap().text().await.unwrap();
        assert!(listed.contains("carpool app") && !listed.contains(&key), "the secret is shown once, never listed");
        // A ride-ingestion key is not a staff token.
        assert_eq!(http.get(app.url("/api/v1/me")).bearer_auth(&key).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

        let revoke = |id: i64| http.post(app.url(&format!("/api/v1/api-keys/{id}/revoke"))).bearer_auth(&admin).send();
        let id = created["id"].as_i64().unwrap();
        assert_eq!(revoke(id).await.unwrap().status(), StatusCode::OK);
        assert_eq!(app.db.ingest_key(&hash).await.unwrap(), None);
        assert_eq!(revoke(id).await.unwrap().status(), StatusCode::NOT_FOUND);
        let audit = app.db.audit_page(&app::model::audit::AuditQuery { action: Some("api_key.".into()), ..Default::default() }).await.unwrap();
        let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["api_key.revoke", "api_key.create"]);
    }

    async fn sign_in_failures_and_sessions(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let admin = email_of(Role::Admin);

        for (email, password) in [(admin.as_str(), "wrong password!"), ("nobody@test.example", PASSWORD)] {
            let client = app.browser();
            let response = app.login(&client, email, password).await;
            assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?error=invalid"), "{email}");
            assert_eq!(client.get(app.url("/")).send().await.unwrap().status(), StatusCode::SEE_OTHER, "no session for {email}");
        }

        // A tampered cookie is nobody.
        let client = app.signed_in(&admin).await;
        assert_eq!(client.get(app.url("/")).send().await.unwrap().status(), StatusCode::OK);
        let tampered = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let response = tampered.get(app.url("/")).header("cookie", "billing_session=AAAAAAAAAAAAAAAAAAAAAA").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);

        // The session id changes at sign-in (no fixation) and a logged-out cookie is worthless.
        let fresh = app.browser();
        let first = session_cookie(&app.login(&fresh, &admin, PASSWORD).await);
        let second = session_cookie(&app.login(&fresh, &admin, PASSWORD).await);
        assert_ne!(first, second, "the session id is rotated at sign-in");
        let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let with_cookie = |c: &str| raw.post(app.url("/api/fn/overview")).header("cookie", format!("billing_session={c}")).header("origin", &app.server.base).send();
        assert_eq!(with_cookie(&second).await.unwrap().status(), StatusCode::OK);
        let logout = fresh.post(app.url("/logout")).send().await.unwrap();
        assert_eq!(logout.headers()["location"], "/login");
        assert_eq!(with_cookie(&second).await.unwrap().status(), StatusCode::UNAUTHORIZED, "replayed logout cookie");

        // An expired session (the store's expiry passed) is nobody.
        let client = app.signed_in(&admin).await;
        server::with_pool!(&app.db, pool => {
            sqlx::query("UPDATE staff_sessions SET expiry_date = $1").bind(chrono::Utc::now() - chrono::Duration::hours(1)).execute(pool).await.map(|_| ()).unwrap()
        });
        assert_eq!(client.post(app.url("/api/fn/overview")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

        let failed = app.db.audit_page(&app::model::audit::AuditQuery { action: Some("auth.login_failed".into()), ..Default::default() }).await.unwrap();
        assert_eq!(failed.entries.len(), 2);
        assert!(failed.entries.iter().all(|e| e.actor_kind == "anonymous" && e.source == "127.0.0.1"));
    }

    async fn after_sign_in_only_this_sites_paths_are_followed(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        // After signing in, only a plain path of this site is followed (no open redirect): the
        // classic bypasses, over HTTP, all land on `/`.
        for (n, (next, to)) in [
            ("/users/p1", "/users/p1"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("/\t/evil.example", "/"),
            ("%2F%2Fevil.example", "/"),
            ("/%2F%2Fx/../..//evil.example", "/"),
            ("https:evil.example", "/"),
            ("javascript:alert(1)", "/"),
        ]
        .into_iter()
        .enumerate()
        {
            // Each account signs in at most twice (sign-ins are throttled per account).
            let email = email_of(Role::ALL[n % Role::ALL.len()]);
            let client = app.browser();
            let response = client.post(app.url("/login")).form(&[("email", email.as_str()), ("password", PASSWORD), ("next", next)]).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}");
            assert_eq!(response.headers()["location"].to_str().unwrap(), to, "{next:?}");
        }
    }

    // Two processes share the counts (through the database); behind a trusted proxy each client
    // is counted on its own; an account waits a growing delay, never more than a minute.
    async fn sign_in_throttling_is_shared_and_reads_a_trusted_proxy(kind: Kind) {
        let env = [("TRUSTED_PROXIES", "127.0.0.1")];
        let app = StaffedServer::start_with_env(kind, &env).await;
        let mut second = support::billing();
        second.envs(env);
        let other = support::ServerProcess::start_with(second, &app.test_db.url).await;
        let bases = [app.server.base.clone(), other.base.clone()];
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let attempt = |n: usize, from: &'static str, email: String, password: &'static str| {
            let (client, base) = (client.clone(), bases[n % 2].clone());
            async move {
                let form = [("email", email), ("password", password.to_owned()), ("next", "/".to_owned())];
                let url = format!("{base}/login");
                let response = client.post(url).header("x-forwarded-for", from).header("origin", base).form(&form).send().await.unwrap();
                response.headers()["location"].to_str().unwrap().to_owned()
            }
        };
        // One client through the proxy, alternating between the processes: 30 a minute in all.
        let mut throttled_after = None;
        for i in 0..40 {
            let location = attempt(i, "203.0.113.9", format!("guess{i}@test.example"), "wrong password!").await;
            if location.contains("error=throttled_address") {
                throttled_after = Some(i);
                break;
            }
        }
        assert_eq!(throttled_after, Some(30), "30 attempts a minute from one client across both processes");
        // Another client behind the same proxy is not affected.
        let location = attempt(0, "203.0.113.10", "guess@test.example".into(), "wrong password!").await;
        assert!(location.contains("error=invalid"), "{location}");

        // An account: four failures free, then a delay; the right password waits it out too.
        let email = email_of(Role::Finance);
        for i in 0..5 {
            let location = attempt(i, "198.51.100.1", email.clone(), "wrong password!").await;
            assert!(location.contains("error=invalid"), "failure {i}: {location}");
        }
        let location = attempt(5, "198.51.100.2", email.clone(), PASSWORD).await;
        assert!(location.contains("error=throttled_account"), "{location}");
        let blocked: Vec<(chrono::DateTime<chrono::Utc>,)> = support::rows(&app.db, &format!("SELECT blocked_until FROM login_throttle WHERE key = 'account:{email}'")).await;
        let left = blocked[0].0 - chrono::Utc::now();
        assert!(left <= chrono::Duration::seconds(60) && left > chrono::Duration::zero(), "blocked for {left}");
        tokio::time::sleep((left + chrono::Duration::milliseconds(200)).to_std().unwrap()).await;
        let location = attempt(6, "198.51.100.2", email.clone(), PASSWORD).await;
        assert_eq!(location, "/", "the delay passed: signed in");
        let cleared: Vec<(String,)> = support::rows(&app.db, &format!("SELECT key FROM login_throttle WHERE key = 'account:{email}'")).await;
        assert!(cleared.is_empty(), "a success clears the failures");
        // The audit names the client the proxy reported, not the proxy.
        let sources: Vec<(String,)> = support::rows(&app.db, "SELECT source FROM audit_log WHERE action = 'auth.login' ORDER BY id DESC LIMIT 1").await;
        assert_eq!(sources, vec![("198.51.100.2".to_owned(),)]);
    }

    async fn sign_in_is_throttled_per_account_and_address(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let email = email_of(Role::Support);
        let client = app.browser();
        for _ in 0..5 {
            let response = app.login(&client, &email, "wrong password!").await;
            assert!(response.headers()["location"].to_str().unwrap().contains("error=invalid"));
        }
        let throttled = app.login(&client, &email, PASSWORD).await;
        assert!(throttled.headers()["location"].to_str().unwrap().contains("error=throttled_account"), "even the right password waits");
        // Another account from the same address is not affected.
        app.signed_in(&email_of(Role::Finance)).await;
        let page = client.get(app.url("/login?error=throttled_account")).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("Too many sign-in attempts for this account"));

        // One address guessing across many accounts is stopped too, whatever X-Forwarded-For it
        // sends: no proxy is trusted here, so the header is ignored.
        let mut throttled_after = None;
        for i in 0..40 {
            let form = [("email", format!("guess{i}@test.example")), ("password", "wrong password!".into()), ("next", "/".into())];
            let response = client.post(app.url("/login")).header("x-forwarded-for", format!("203.0.113.{i}")).form(&form).send().await.unwrap();
            if response.headers()["location"].to_str().unwrap().contains("error=throttled_address") {
                throttled_after = Some(i);
                break;
            }
        }
        let attempts = throttled_after.expect("the address is throttled");
        assert!(attempts <= 30, "at most 30 attempts a minute from one address, got {attempts} more");
    }

    async fn cross_site_state_changes_are_refused(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let client = app.signed_in(&email_of(Role::Admin)).await;
        let cookie = client.get(app.url("/")).send().await.unwrap();
        assert_eq!(cookie.status(), StatusCode::OK);
        let cases: [(&str, Option<&str>, Option<&str>); 3] = [
            ("missing Origin", None, None),
            ("foreign Origin", Some("https://evil.example"), None),
            ("cross-site fetch", Some("https://evil.example"), Some("cross-site")),
        ];
        for (case, origin, fetch_site) in cases {
            let mut request = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(app.url("/api/fn/staff/add"))
                .header("cookie", copy_session_cookie(&client, &app).await)
                .form(&[("email", "csrf@test.example"), ("role", "admin"), ("password", "a long enough password")]);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = fetch_site {
                request = request.header("sec-fetch-site", site);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
            assert!(response.text().await.unwrap().contains("CSRF"), "{case}");
        }
        assert!(app.db.staff_credentials("csrf@test.example").await.unwrap().is_none(), "nothing was created");
    }

    async fn injection_is_inert_and_bad_input_is_refused(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let admin = app.signed_in(&email_of(Role::Admin)).await;

        // Hostile text goes into the audit log through a failed sign-in ...
        let hostile = "<script>alert(1)</script>'--@x.example";
        app.login(&app.browser(), hostile, "whatever password").await;
        // ... and comes out escaped on the audit page.
        let html = admin.get(app.url("/audit?action=auth.login_failed")).send().await.unwrap().text().await.unwrap();
        assert!(!html.contains("<script>alert(1)</script>"), "raw HTML must not reach the page");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the text is shown, escaped");

        // SQL in every filter is only a value to compare with.
        for field in ["actor", "action", "object_type", "object_id"] {
            let body = json!({ "query": { field: "x' OR '1'='1'; DROP TABLE staff; --" } });
            let response = admin.post(app.url("/api/fn/audit")).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{field}");
            let page: Value = response.json().await.unwrap();
            assert_eq!(page["entries"], json!([]), "{field}");
        }
        assert_eq!(app.db.staff_count().await.unwrap(), 3);

        let bad_date = admin.post(app.url("/api/fn/audit")).json(&json!({"query": {"since": "yesterday"}})).send().await.unwrap();
        assert_eq!(bad_date.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(bad_date.text().await.unwrap().contains("since"));

        let token = app.token_for(&email_of(Role::Admin)).await;
        let http = reqwest::Client::new();
        let malformed = http.post(app.url("/api/v1/staff")).bearer_auth(&token).header("content-type", "application/json").body("{\"email\": ").send().await.unwrap();
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        let error: Value = malformed.json().await.unwrap();
        assert_eq!(error["field"], "body");
        let unknown_field = http.post(app.url("/api/v1/staff")).bearer_auth(&token).json(&json!({"email": "a@b.example", "role": "admin", "password": "long enough pw!", "is_root": true})).send().await.unwrap();
        assert_eq!(unknown_field.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(unknown_field.text().await.unwrap().contains("is_root"), "the message names the field");
        for path in ["/api/v1/staff", "/api/fn/staff/add", "/login"] {
            assert_eq!(support::status_of_oversized_post(&app.server.base, path, 2 * 1024 * 1024).await, 413, "{path}");
        }
        assert_eq!(http.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK, "still serving");
    }
}

fn session_cookie(response: &reqwest::Response) -> String {
    response
        .cookies()
        .find(|c| c.name() == "billing_session")
        .map(|c| c.value().to_owned())
        .expect("the sign-in sets the session cookie")
}

/// The signed-in client's session cookie as a `Cookie` header value.
async fn copy_session_cookie(client: &reqwest::Client, app: &StaffedServer) -> String {
    // Sign in again on a throwaway client to read a cookie value; the original stays valid.
    let _ = client;
    let fresh = app.browser();
    let response = app.login(&fresh, &email_of(Role::Admin), PASSWORD).await;
    format!("billing_session={}", session_cookie(&response))
}

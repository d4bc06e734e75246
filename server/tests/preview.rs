//! `billing demo-data` and `billing preview` as processes, on each database.

mod support;

use serde_json::Value;
use support::{billing, Kind, TestDb};

async fn run(url: &str, args: &[&str]) -> std::process::Output {
    billing().args(args).env("DATABASE_URL", url).output().await.unwrap()
}

fn money(v: &Value) -> i64 {
    // Amounts are strings in major units with exactly two decimals (USD).
    let s = v.as_str().unwrap();
    let (whole, cents) = s.split_once('.').expect("two decimals");
    assert_eq!(cents.len(), 2, "{s}");
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

on_both_databases! {
    async fn demo_data_is_deterministic_and_the_preview_adds_up(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let args = ["demo-data", "--passengers", "40", "--drivers", "6", "--weeks", "1", "--seed", "7"];
        let first = run(&test_db.url, &args).await;
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        let rides = db.ride_count().await.unwrap();
        assert!(rides > 40, "about five rides per passenger: {rides}");
        let second = run(&test_db.url, &args).await;
        let said = String::from_utf8_lossy(&second.stdout);
        assert!(said.contains("0 users added, 0 rides added"), "{said}");
        assert_eq!(db.ride_count().await.unwrap(), rides, "running again adds nothing");

        let week = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string();
        let output = run(&test_db.url, &["preview", "--week", &week, "--format", "json"]).await;
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let preview: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(preview["week"], week.as_str());
        assert_eq!(preview["currency"], "USD");
        let invoices = preview["invoices"].as_array().unwrap();
        assert!(!invoices.is_empty());
        assert_eq!(preview["totals"]["invoices"].as_u64().unwrap(), invoices.len() as u64);
        let sum: i64 = invoices.iter().map(|i| money(&i["total"])).sum();
        assert_eq!(money(&preview["totals"]["charged"]), sum, "charged is the sum of the invoices");
        for invoice in invoices {
            let lines: i64 = invoice["lines"].as_array().unwrap().iter().map(|l| money(&l["amount"])).sum();
            assert_eq!(money(&invoice["total"]), lines);
        }
        assert_eq!(money(&preview["totals"]["fees"]) + money(&preview["totals"]["payouts"]), sum);
        let payouts: i64 = preview["payouts"].as_array().unwrap().iter().map(|p| money(&p["total"])).sum();
        assert_eq!(money(&preview["totals"]["payouts"]), payouts);
        // The first preview prints the plan it just stored; the second reads it back: the same.
        let again = run(&test_db.url, &["preview", "--week", &week, "--format", "json"]).await;
        assert_eq!(serde_json::from_slice::<Value>(&again.stdout).unwrap(), preview, "stored as planned");

        let csv = run(&test_db.url, &["preview", "--week", &week, "--format", "csv"]).await;
        let csv = String::from_utf8(csv.stdout).unwrap();
        assert_eq!(csv.lines().count(), invoices.len() + 1, "a header and a row per invoice");
        assert!(csv.starts_with("invoice_id,user_id,lines,late_lines,total,currency"));
        // The CSV and the table are read from the stored week as they are printed: row by row
        // the invoices of the JSON, in the same order.
        let table = run(&test_db.url, &["preview", "--week", &week]).await;
        let table = String::from_utf8(table.stdout).unwrap();
        let table_rows: Vec<&str> = table.lines().skip_while(|l| !l.starts_with("user ")).skip(1).collect();
        assert_eq!(table_rows.len(), invoices.len(), "{table}");
        for ((row, invoice), printed) in csv.lines().skip(1).zip(invoices).zip(table_rows) {
            let user = invoice["user_id"].as_str().unwrap();
            let lines = invoice["lines"].as_array().unwrap();
            let late = lines.iter().filter(|l| l["late"] == true).count();
            let total = invoice["total"].as_str().unwrap();
            assert_eq!(row, format!("{week}/{user},{user},{},{late},{total},USD", lines.len()));
            let words: Vec<&str> = printed.split_whitespace().collect();
            assert_eq!(words, [user, &lines.len().to_string(), total], "{printed}");
        }
    }
}

on_both_databases! {
    async fn every_role_sees_the_preview_over_the_api_as_the_cli_prints_it(kind: Kind) {
        let app = support::StaffedServer::start(kind).await;
        let out = run(&app.test_db.url, &["demo-data", "--passengers", "10", "--drivers", "3", "--weeks", "1"]).await;
        assert!(out.status.success());
        let week = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string();
        let cli: Value = serde_json::from_slice(&run(&app.test_db.url, &["preview", "--week", &week, "--format", "json"]).await.stdout).unwrap();
        let http = reqwest::Client::new();
        // Support too: it waives lines from the week's invoice panel (docs/pricing.md).
        for role in app::model::staff::Role::ALL {
            let token = app.token_for(&support::email_of(role)).await;
            let response = http.get(app.url(&format!("/api/v1/weeks/{week}/preview"))).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK, "{role}");
            assert_eq!(response.json::<Value>().await.unwrap(), cli, "the API and the CLI show the same preview");
        }
        let token = app.token_for(&support::email_of(app::model::staff::Role::Finance)).await;
        // Page by page, the same invoices and payouts in the same order.
        for (list, limit) in [("invoices", 3), ("payouts", 2)] {
            let (mut after, mut read, mut pages) = (String::new(), Vec::new(), 0);
            loop {
                let page: Value = http
                    .get(app.url(&format!("/api/v1/weeks/{week}/{list}")))
                    .query(&[("after", after.as_str()), ("limit", &limit.to_string())])
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(page["content_hash"], cli["content_hash"]);
                let items = page[list].as_array().unwrap();
                assert!(items.len() <= limit, "{page}");
                read.extend(items.iter().cloned());
                pages += 1;
                match page["next_after"].as_str() {
                    Some(next) => after = next.to_owned(),
                    None => break,
                }
            }
            assert_eq!(Value::Array(read), cli[list], "{list} page by page");
            assert!(pages > 1, "{list}: more than one page");
        }
        for bad in ["limit=0", "limit=10001", "limit=many", "offset=3"] {
            let response = http.get(app.url(&format!("/api/v1/weeks/{week}/invoices?{bad}"))).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            let field = response.json::<Value>().await.unwrap()["field"].clone();
            assert_eq!(field, if bad.starts_with("limit") { "limit" } else { "query" }, "{bad}");
        }
        for bad in ["2026-48", "2999-W01"] {
            let response = http.get(app.url(&format!("/api/v1/weeks/{bad}/preview"))).bearer_auth(&token).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert_eq!(response.json::<Value>().await.unwrap()["field"], "week");
        }
    }
}

#[tokio::test]
async fn preview_refuses_bad_and_future_weeks() {
    let (test_db, _db) = TestDb::migrated(Kind::Sqlite).await;
    for (week, says) in [("2026-48", "--week"), ("2021-W53", "no week 53"), ("2999-W01", "has not started")] {
        let output = run(&test_db.url, &["preview", "--week", week]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{week}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains("--week"), "{week}: {stderr}");
    }
}

on_both_databases! {
    async fn finance_approves_the_reviewed_preview_over_the_api(kind: Kind) {
        let app = support::StaffedServer::start(kind).await;
        let out = run(&app.test_db.url, &["demo-data", "--passengers", "8", "--drivers", "2", "--weeks", "1"]).await;
        assert!(out.status.success());
        let week = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string();
        let http = reqwest::Client::new();
        let finance = app.token_for(&support::email_of(app::model::staff::Role::Finance)).await;
        let support_token = app.token_for(&support::email_of(app::model::staff::Role::Support)).await;
        let preview: Value = http.get(app.url(&format!("/api/v1/weeks/{week}/preview"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(preview["status"], "previewed");
        let hash = preview["content_hash"].as_str().unwrap().to_owned();
        let approve = |token: &str, body: Value, week: &str| {
            http.post(app.url(&format!("/api/v1/weeks/{week}/approve"))).bearer_auth(token).json(&body).send()
        };
        use reqwest::StatusCode;
        assert_eq!(approve(&support_token, serde_json::json!({"content_hash": hash}), &week).await.unwrap().status(), StatusCode::FORBIDDEN);
        let wrong = approve(&finance, serde_json::json!({"content_hash": "0".repeat(64)}), &week).await.unwrap();
        assert_eq!(wrong.status(), StatusCode::CONFLICT);
        assert_eq!(wrong.json::<Value>().await.unwrap()["field"], "content_hash");
        let missing = approve(&finance, serde_json::json!({}), &week).await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let current = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).to_string();
        let early = approve(&finance, serde_json::json!({"content_hash": hash}), &current).await.unwrap();
        assert_eq!(early.status(), StatusCode::UNPROCESSABLE_ENTITY, "a week still running cannot be approved");

        let done = approve(&finance, serde_json::json!({"content_hash": hash}), &week).await.unwrap();
        assert_eq!(done.status(), StatusCode::CREATED);
        let done: Value = done.json().await.unwrap();
        assert_eq!((done["status"].as_str(), done["approved_by"].as_str()), (Some("approved"), Some(support::email_of(app::model::staff::Role::Finance).as_str())));
        let again = approve(&finance, serde_json::json!({"content_hash": hash}), &week).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK, "approving the same content again is one approval");
        let frozen: Value = http.get(app.url(&format!("/api/v1/weeks/{week}/preview"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(frozen["status"], "approved");
        assert_eq!(frozen["invoices"], preview["invoices"], "the frozen week is what was reviewed");
        // One invoice id everywhere: the preview's is the one the dashboard and the API know.
        for listed in frozen["invoices"].as_array().unwrap() {
            let id = listed["invoice_id"].as_i64().expect("a stored invoice's id");
            let record: Value = http.get(app.url(&format!("/api/v1/invoices/{id}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
            assert_eq!((record["id"].as_i64(), &record["user_id"], record["week"].as_str()), (Some(id), &listed["user_id"], Some(week.as_str())), "{record}");
        }
        assert!(frozen["payouts"].as_array().unwrap().iter().all(|p| p["payout_id"].is_i64()), "{frozen}");
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        assert!(audit.entries.iter().any(|e| e.action == "week.approve" && e.object_id.as_deref() == Some(week.as_str())));
    }
}

on_both_databases! {
    async fn anomaly_thresholds_are_an_admin_setting_checked_field_by_field(kind: Kind) {
        use reqwest::StatusCode;
        use serde_json::json;
        let app = support::StaffedServer::start(kind).await;
        let http = reqwest::Client::new();
        let admin = app.token_for(&support::email_of(app::model::staff::Role::Admin)).await;
        let finance = app.token_for(&support::email_of(app::model::staff::Role::Finance)).await;
        let url = app.url("/api/v1/settings/anomaly-thresholds");
        let defaults: Value = http.get(&url).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(defaults["lookback_weeks"], 4);
        let mut changed = defaults.clone();
        changed["max_distance_km"] = json!(150);
        assert_eq!(http.put(&url).bearer_auth(&finance).json(&changed).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        let mut bad = changed.clone();
        bad["lookback_weeks"] = json!(0);
        let refused = http.put(&url).bearer_auth(&admin).json(&bad).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.json::<Value>().await.unwrap()["field"], "lookback_weeks");
        let unknown = http.put(&url).bearer_auth(&admin).json(&json!({"max_km": 1})).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let now: Value = http.get(&url).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(now, defaults, "a refused change stores nothing");
        assert_eq!(http.put(&url).bearer_auth(&admin).json(&changed).send().await.unwrap().status(), StatusCode::OK);
        let now: Value = http.get(&url).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(now["max_distance_km"], 150);
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        assert!(audit.entries.iter().any(|e| e.action == "setting.change"));
    }
}

on_both_databases! {
    async fn the_streamed_json_is_the_preview_page_after_page(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let args = ["demo-data", "--passengers", "40", "--drivers", "6", "--weeks", "1", "--seed", "11"];
        assert!(run(&test_db.url, &args).await.status.success());
        let url = test_db.url.clone();
        let config = server::config::Config::from_lookup(move |name| (name == "DATABASE_URL").then(|| url.clone())).unwrap();
        let week = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous();
        let whole = server::preview::preview_json(&db, &config, week).await.unwrap();
        let stored = server::preview::refresh(&db, &config, week).await.unwrap();
        // Pages of three: the lists cross many pages, and each page is sent as it is written.
        let (chunks, mut written) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        let reader = tokio::spawn(async move {
            let mut parts = Vec::new();
            while let Some(chunk) = written.recv().await {
                parts.push(chunk);
            }
            parts
        });
        server::preview::write_json(&db, &config, &stored, 3, chunks).await.unwrap();
        let parts = reader.await.unwrap();
        let invoices = whole["invoices"].as_array().unwrap().len();
        assert!(parts.len() > invoices / 3, "{} chunks for {invoices} invoices", parts.len());
        let streamed: Value = serde_json::from_slice(&parts.concat()).unwrap();
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&streamed), keys(&whole));
        for key in keys(&whole) {
            assert_eq!(streamed[&key], whole[&key], "{key}");
        }
        assert_eq!(streamed, whole, "the same JSON, in the same order");
        // And the command prints it so.
        let printed = run(&test_db.url, &["preview", "--week", &week.to_string(), "--format", "json"]).await;
        let printed: Value = serde_json::from_slice(&printed.stdout).unwrap();
        assert_eq!(keys(&printed), keys(&whole));
        // Its process provisions test objects at the provider (PSP_PROVISION=test), so nobody is
        // in its payment gaps; everything else is the same.
        for key in keys(&whole).into_iter().filter(|k| k != "payment_gaps") {
            assert_eq!(printed[&key], whole[&key], "{key}");
        }
    }
}

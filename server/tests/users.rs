//! Finding a customer (`GET /api/v1/users?q=`), on each database: by id, name, email or phone,
//! by prefix and ignoring case, refused with a named field when the query is bad, audited.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::Value;
use server::db::rides::NewUser;
use support::{email_of, StaffedServer};

on_both_databases! {
    async fn support_finds_a_customer_by_id_name_email_or_phone(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let user = |id: &str, name: &str, email: &str, phone: &str| NewUser {
            id: id.into(),
            name: name.into(),
            email: Some(email.into()),
            phone: Some(phone.into()),
            language: "en".into(),
            provider: Default::default(),
        };
        app.db
            .add_users(&[
                user("u-100", "Élodie Durand", "Elodie.Durand@Example.com", "+1 (555) 010-2030"),
                user("u-101", "Bo Li", "bo@example.net", "+44 20 7946 0000"),
                user("x-7", "Ana Bo", "ana@example.org", "555-777"),
            ])
            .await
            .unwrap();
        let token = app.token_for(&email_of(Role::Support)).await;
        let http = reqwest::Client::new();
        let search = |q: &'static str| {
            let request = http.get(app.url("/api/v1/users")).bearer_auth(&token).query(&[("q", q)]);
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{q}");
                let body: Value = response.json().await.unwrap();
                body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(search("u-10").await, ["u-100", "u-101"], "by id prefix");
        assert_eq!(search("élo").await, ["u-100"], "by name, ignoring case, beyond ASCII");
        assert_eq!(search("BO").await, ["u-101"], "by name prefix only (Ana Bo does not start with bo), and by email bo@");
        assert_eq!(search("ELODIE.durand@").await, ["u-100"], "by email, ignoring case");
        assert_eq!(search("+1 555 010").await, ["u-100"], "by phone digits, whatever the formatting");
        assert!(search("nobody").await.is_empty());

        for (query, field) in [(vec![("q", "")], "q"), (vec![("q", "u"), ("limit", "0")], "limit")] {
            let response = http.get(app.url("/api/v1/users")).bearer_auth(&token).query(&query).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(response.json::<Value>().await.unwrap()["field"], field);
        }
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        let searches: Vec<_> = audit.entries.iter().filter(|e| e.action == "user.search").collect();
        assert_eq!(searches.len(), 6, "every search is audited: who looked for whom");
        assert!(searches.iter().all(|e| e.actor == email_of(Role::Support)));
        let anonymous = http.get(app.url("/api/v1/users")).query(&[("q", "u")]).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
}

on_both_databases! {
    async fn a_customers_rides_are_paged_newest_first_each_once(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let out = support::billing()
            .args(["demo-data", "--passengers", "6", "--drivers", "2", "--weeks", "8", "--seed", "2"])
            .env("DATABASE_URL", &app.test_db.url)
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let client = app.signed_in(&email_of(Role::Support)).await;
        // The driver with the most rides: more than a page.
        let driver = "d1";
        let mut seen: Vec<String> = Vec::new();
        let mut before = String::new();
        let mut pages = 0;
        loop {
            let response = client
                .post(app.url("/api/fn/users/activity"))
                .form(&[("id", driver), ("section", "rides"), ("before", before.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            assert_eq!(page["rows"]["section"], "rides");
            assert_eq!(page["time_zone"], "UTC");
            for ride in page["rows"]["rows"].as_array().unwrap() {
                let ended = ride["ended_at"].as_str().unwrap_or_default();
                assert!(chrono::DateTime::parse_from_rfc3339(ended).is_ok(), "{ride}");
                seen.push(ride["ride_id"].as_str().unwrap().to_owned());
            }
            pages += 1;
            match page["next"].as_str() {
                Some(next) => before = next.to_owned(),
                None => break,
            }
        }
        let expected: Vec<String> = match &app.db {
            server::db::Db::Sqlite(p) => sqlx::query_scalar("SELECT ride_id FROM rides WHERE driver_id = $1 ORDER BY ended_at DESC, ride_id DESC").bind(driver).fetch_all(p).await.unwrap(),
            server::db::Db::Postgres(p) => sqlx::query_scalar("SELECT ride_id FROM rides WHERE driver_id = $1 ORDER BY ended_at DESC, ride_id DESC").bind(driver).fetch_all(p).await.unwrap(),
        };
        assert!(expected.len() > 20, "more than a page: {}", expected.len());
        assert!(pages >= 2);
        assert_eq!(seen, expected, "every ride once, newest first, across pages");
    }
}

on_both_databases! {
    // A customer's invoices come newest week first, a draft week's invoice is marked as such,
    // and the page cursor is the week.
    async fn a_customers_invoices_are_newest_week_first_with_drafts_marked(kind: Kind) {
        let app = support::StaffedServer::start(kind).await;
        support::add_users(&app.db, &["dana", "ana"]).await;
        let config = {
            let url = app.test_db.url.clone();
            server::config::Config::from_lookup(move |name| (name == "DATABASE_URL").then(|| url.clone())).unwrap()
        };
        let this = app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC);
        let weeks = [this.previous().previous(), this.previous()];
        for (n, week) in weeks.iter().enumerate() {
            let ended = week.start(chrono_tz::Tz::UTC) + chrono::Duration::hours(5);
            let ride = app::model::billing::Ride {
                ride_id: format!("r{n}"),
                driver_id: "dana".into(),
                distance_m: 5_000,
                started_at: ended - chrono::Duration::minutes(20),
                ended_at: ended,
                seats: vec![app::model::billing::Seat { passenger_id: "ana".into(), attendance: app::model::pricing::Attendance::Completed }],
            };
            app.db.store_ride(&ride).await.unwrap();
        }
        // The newer week previewed first, so the older week's invoice has the larger id: the list
        // follows the weeks, not the ids. The older week is approved.
        server::preview::refresh(&app.db, &config, weeks[1]).await.unwrap();
        let older = server::preview::refresh(&app.db, &config, weeks[0]).await.unwrap();
        server::preview::approve(&app.db, &config, &server::db::audit::Actor::cli(), weeks[0], &older.content_hash).await.unwrap();

        let token = app.token_for(&support::email_of(app::model::staff::Role::Support)).await;
        let page: serde_json::Value = reqwest::Client::new()
            .get(app.url("/api/v1/users/ana/charges?section=invoices"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = page["rows"]["rows"].as_array().cloned().unwrap_or_default();
        let listed: Vec<(String, bool)> =
            rows.iter().map(|r| (r["week"].as_str().unwrap().to_owned(), r["approved"].as_bool().unwrap())).collect();
        assert_eq!(listed, [(weeks[1].to_string(), false), (weeks[0].to_string(), true)], "{page}");
        app.server.terminate().await;
    }
}

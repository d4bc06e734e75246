//! Fee policy versions on each database: proposed by one member and approved by another, over
//! the JSON API, the CLI and the services; every refusal names its field and stores nothing; a
//! draft follows the version in force, a frozen week never changes, and the what-if of a
//! version with the current prices changes nobody's invoice.

mod support;

use app::model::billing::{Ride, Seat};
use app::model::pricing::{Attendance, NewPolicyVersion, VersionStatus};
use app::model::staff::{AuthMethod, Principal, Role};
use app::model::week::BillingWeek;
use chrono::{Duration, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use server::config::Config;
use server::db::audit::Actor;
use server::db::Db;
use server::{fee_policies, preview};
use support::{email_of, execute, StaffedServer, TestDb};

fn config(url: &str) -> Config {
    let url = url.to_owned();
    Config::from_lookup(move |name| (name == "DATABASE_URL").then(|| url.clone())).unwrap()
}

fn this_week() -> BillingWeek {
    BillingWeek::containing(Utc::now(), Tz::UTC)
}

fn last_week() -> BillingWeek {
    this_week().previous()
}

/// Users and rides: three in last week, one so far this week (an hour after it began, or at its
/// start when that is still to come).
async fn with_rides(db: &Db) {
    support::add_users(db, &["dana", "ana", "bo", "cy"]).await;
    let ride = |id: &str, ended_at: chrono::DateTime<Utc>, km: i64, seats: &[(&str, Attendance)]| Ride {
        ride_id: id.into(),
        driver_id: "dana".into(),
        distance_m: km * 1000,
        started_at: ended_at - Duration::minutes(30),
        ended_at,
        seats: seats.iter().map(|(p, a)| Seat { passenger_id: (*p).into(), attendance: *a }).collect(),
    };
    let last = last_week().start(Tz::UTC);
    db.store_ride(&ride(
        "r1",
        last + Duration::hours(10),
        10,
        &[("ana", Attendance::Completed), ("bo", Attendance::Completed)],
    ))
    .await
    .unwrap();
    db.store_ride(&ride(
        "r2",
        last + Duration::hours(30),
        4,
        &[("ana", Attendance::Completed), ("cy", Attendance::NoShow)],
    ))
    .await
    .unwrap();
    db.store_ride(&ride("r3", last + Duration::hours(50), 25, &[("cy", Attendance::Completed)]))
        .await
        .unwrap();
    let now = this_week().start(Tz::UTC).max(Utc::now() - Duration::minutes(5));
    db.store_ride(&ride("r4", now, 8, &[("bo", Attendance::Completed)])).await.unwrap();
}

/// The staff member with `email`, as the services see a caller.
async fn principal(db: &Db, email: &str) -> Principal {
    let staff = db.staff_credentials(email).await.unwrap().unwrap().staff;
    Principal { staff, method: AuthMethod::Token, source: "test".into() }
}

async fn with_staff(db: &Db) {
    for role in Role::ALL {
        server::staff::add(db, &Actor::cli(), &email_of(role), role, support::PASSWORD.into()).await.unwrap();
    }
}

/// The built-in prices, as a proposal from `week`.
fn built_in_prices(week: BillingWeek) -> NewPolicyVersion {
    NewPolicyVersion {
        effective_week: week.to_string(),
        base: "2.00".into(),
        per_km: "0.35".into(),
        platform_fee_bps: "1500".into(),
        no_show_fee: "3.00".into(),
        note: String::new(),
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_both_databases! {
    async fn a_version_is_proposed_by_one_member_and_approved_by_another_over_the_api(kind: Kind) {
        let s = StaffedServer::start(kind).await;
        with_rides(&s.db).await;
        let client = reqwest::Client::new();
        let finance = s.token_for(&email_of(Role::Finance)).await;
        let admin = s.token_for(&email_of(Role::Admin)).await;
        let support_token = s.token_for(&email_of(Role::Support)).await;
        let versions = s.url("/api/v1/pricing/versions");
        use reqwest::Method;

        let (status, list) = call(&client, Method::GET, versions.clone(), &finance, None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["in_force"], 0, "{list}");
        assert_eq!(list["versions"].as_array().unwrap().len(), 1, "only the built-in policy: {list}");
        let (status, _) = call(&client, Method::GET, versions.clone(), &support_token, None).await;
        assert_eq!(status, 403, "support does not see pricing");

        // Every refusal names its field, and stores nothing.
        let week = this_week().to_string();
        let valid = json!({"effective_week": week, "base": "2.50", "per_km": "0.35", "platform_fee_bps": 1500, "no_show_fee": "3.00", "note": "winter"});
        let with = |field: &str, value: Value| {
            let mut body = valid.clone();
            body[field] = value;
            body
        };
        let refused = [
            (with("base", json!("-1.00")), "base", 422),
            (with("per_km", json!("0.355")), "per_km", 422),
            (with("no_show_fee", json!("three")), "no_show_fee", 422),
            (with("platform_fee_bps", json!(10_001)), "platform_fee_bps", 422),
            (with("platform_fee_bps", json!(-5)), "platform_fee_bps", 422),
            (with("effective_week", json!(last_week().to_string())), "effective_week", 422),
            (with("effective_week", json!("2026-W99")), "effective_week", 422),
            (with("colour", json!("red")), "body", 422),
        ];
        for (body, field, expected) in refused {
            let (status, answer) = call(&client, Method::POST, versions.clone(), &finance, Some(body.clone())).await;
            assert_eq!(status, expected, "{body} → {answer}");
            assert_eq!(answer["field"], field, "{body} → {answer}");
        }
        let (status, _) = call(&client, Method::POST, versions.clone(), &support_token, Some(valid.clone())).await;
        assert_eq!(status, 403, "support does not propose");
        let (_, list) = call(&client, Method::GET, versions.clone(), &finance, None).await;
        assert_eq!(list["versions"].as_array().unwrap().len(), 1, "nothing stored by a refusal: {list}");

        // Finance proposes; finance cannot approve its own proposal; admin approves.
        let (status, proposed) = call(&client, Method::POST, versions.clone(), &finance, Some(valid.clone())).await;
        assert_eq!(status, 201, "{proposed}");
        assert_eq!(proposed["status"], "proposed");
        assert_eq!(proposed["policy"]["base"]["amount"], "2.50", "{proposed}");
        let id = proposed["id"].as_i64().unwrap();
        let approve = s.url(&format!("/api/v1/pricing/versions/{id}/approve"));
        let (status, answer) = call(&client, Method::POST, approve.clone(), &finance, None).await;
        assert_eq!(status, 403, "the proposer does not approve: {answer}");

        // The what-if of last week (a draft under the built-in policy): the higher base raises
        // every rider's invoice, and the no-show fee alone stays the same.
        let what_if = s.url(&format!("/api/v1/pricing/versions/{id}/what-if?week={}", last_week()));
        let (status, w) = call(&client, Method::GET, what_if, &admin, None).await;
        assert_eq!(status, 200, "{w}");
        assert_eq!((w["current_version"].as_i64(), w["proposed_version"].as_i64()), (Some(0), Some(id)));
        assert_eq!(w["passengers"], 3, "{w}");
        assert_eq!(w["up"], 3, "ana, bo and cy each rode: {w}");
        // 0.50 more per trip: r1 shared by ana and bo (+0.25 each), r2 ridden by ana alone (+0.50;
        // cy's no-show fee is unchanged), r3 by cy (+0.50).
        assert_eq!(w["before"]["charged"]["amount"], "22.65", "{w}");
        assert_eq!(w["after"]["charged"]["amount"], "24.15", "{w}");
        let increases: Vec<(String, String)> = w["largest_increases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["user_id"].as_str().unwrap().to_owned(), c["change"]["amount"].as_str().unwrap().to_owned()))
            .collect();
        let expected = [("ana", "0.75"), ("cy", "0.50"), ("bo", "0.25")].map(|(u, a)| (u.to_owned(), a.to_owned()));
        assert_eq!(increases, expected);
        let bucketed: u64 = w["distribution"].as_array().unwrap().iter().map(|b| b["passengers"].as_u64().unwrap()).sum();
        assert_eq!(bucketed, 3, "{w}");
        // The what-if's "before" is the week's preview.
        let (status, last) =
            call(&client, Method::GET, s.url(&format!("/api/v1/weeks/{}/preview", last_week())), &admin, None).await;
        assert_eq!(status, 200, "{last}");
        assert_eq!(last["totals"]["charged"], "22.65", "{last}");
        assert_eq!(last["fee_policy_version"], 0);
        let (status, answer) =
            call(&client, Method::GET, s.url(&format!("/api/v1/pricing/versions/{id}/what-if")), &admin, None).await;
        assert_eq!((status, answer["field"].as_str()), (422, Some("week")), "{answer}");

        let (status, approved) = call(&client, Method::POST, approve.clone(), &admin, None).await;
        assert_eq!(status, 200, "{approved}");
        assert_eq!(approved["status"], "approved");
        assert_eq!(approved["decided_by"], email_of(Role::Admin));
        let (status, answer) = call(&client, Method::POST, approve.clone(), &admin, None).await;
        assert_eq!((status, answer["field"].as_str()), (409, Some("status")), "approved once: {answer}");
        let (status, _) =
            call(&client, Method::POST, s.url("/api/v1/pricing/versions/9999/approve"), &admin, None).await;
        assert_eq!(status, 404);
        let (_, list) = call(&client, Method::GET, versions.clone(), &finance, None).await;
        assert_eq!(list["in_force"], id, "{list}");

        // This week's draft is priced by it; last week's keeps the built-in policy.
        let (status, this) =
            call(&client, Method::GET, s.url(&format!("/api/v1/weeks/{}/preview", this_week())), &admin, None).await;
        assert_eq!(status, 200, "{this}");
        assert_eq!(this["fee_policy_version"], id, "{this}");
        // r4: 8 km, 2.50 + 2.80 for bo alone.
        assert_eq!(this["totals"]["charged"], "5.30", "{this}");

        // A proposal withdrawn cannot be approved.
        let (_, second) = call(&client, Method::POST, versions.clone(), &admin,
            Some(with("effective_week", json!(this_week().next().to_string())))).await;
        let second = second["id"].as_i64().unwrap();
        let (status, withdrawn) =
            call(&client, Method::POST, s.url(&format!("/api/v1/pricing/versions/{second}/withdraw")), &finance, None).await;
        assert_eq!((status, withdrawn["status"].as_str()), (200, Some("withdrawn")), "{withdrawn}");
        let (status, _) =
            call(&client, Method::POST, s.url(&format!("/api/v1/pricing/versions/{second}/approve")), &finance, None).await;
        assert_eq!(status, 409);

        // Each step is audited, the approval with the before and after.
        let audit: Vec<(String, Option<String>, Option<String>)> = support::rows(
            &s.db,
            "SELECT action, CAST(before AS TEXT), CAST(after AS TEXT) FROM audit_log WHERE action LIKE 'pricing.%' ORDER BY id",
        )
        .await;
        let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
        assert_eq!(actions, ["pricing.propose", "pricing.approve", "pricing.propose", "pricing.withdraw"]);
        let (_, before, after) = &audit[1];
        assert!(before.as_deref().unwrap().contains("\"proposed\""), "{before:?}");
        assert!(after.as_deref().unwrap().contains("\"approved\""), "{after:?}");
        s.server.terminate().await;
    }

    async fn the_command_line_proposes_and_approves_as_two_people(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        with_staff(&db).await;
        let pricing = |args: &[&str]| {
            let mut command = support::billing();
            command.arg("pricing").args(args).env("DATABASE_URL", &test_db.url);
            command
        };
        let week = this_week().to_string();
        let finance = email_of(Role::Finance);
        let admin = email_of(Role::Admin);
        let output = pricing(&["propose", "--as", &finance, "--week", &week, "--base", "2.00", "--per-km", "0.355",
            "--platform-fee-bps", "1500", "--no-show-fee", "3.00"]).output().await.unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("--per-km"), "{}", String::from_utf8_lossy(&output.stderr));
        let output = pricing(&["propose", "--as", &finance, "--week", &week, "--base", "2.00", "--per-km", "0.40",
            "--platform-fee-bps", "1500", "--no-show-fee", "3.00"]).output().await.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let versions = db.fee_policy_versions().await.unwrap();
        assert_eq!(versions.len(), 1);
        let id = versions[0].id.to_string();
        let output = pricing(&["approve", &id, "--as", &finance]).output().await.unwrap();
        assert!(!output.status.success(), "the proposer cannot approve");
        assert!(String::from_utf8_lossy(&output.stderr).contains("another finance or admin member"));
        let output = pricing(&["approve", &id, "--as", &admin]).output().await.unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let output = pricing(&["list", "--as", &admin, "--format", "json"]).output().await.unwrap();
        let list: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(list["in_force"].to_string(), id, "{list}");
        let kinds: Vec<(String, String)> =
            support::rows(&db, "SELECT actor_kind, actor FROM audit_log WHERE action LIKE 'pricing.%' ORDER BY id").await;
        assert_eq!(kinds, [("cli".to_owned(), finance), ("cli".to_owned(), admin)]);
        let output = pricing(&["list", "--as", &email_of(Role::Support)]).output().await.unwrap();
        assert!(!output.status.success(), "support may not manage pricing");
    }

    async fn a_frozen_week_never_changes_and_a_draft_follows_its_version(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_staff(&db).await;
        with_rides(&db).await;
        let finance = principal(&db, &email_of(Role::Finance)).await;
        let admin = principal(&db, &email_of(Role::Admin)).await;

        // Last week frozen under the built-in policy.
        let draft = preview::refresh(&db, &config, last_week()).await.unwrap();
        preview::approve(&db, &config, &Actor::staff(&admin), last_week(), &draft.content_hash).await.unwrap();
        let frozen = preview::refresh(&db, &config, last_week()).await.unwrap();
        let (_, frozen_plan) = preview::preview(&db, &config, last_week()).await.unwrap();

        // A version from this week, approved: this week's draft is repriced.
        let before = preview::refresh(&db, &config, this_week()).await.unwrap();
        assert_eq!(before.fee_policy_version, None);
        let mut dearer = built_in_prices(this_week());
        dearer.per_km = "0.50".into();
        let version = fee_policies::propose(&db, &config, &finance, &dearer).await.unwrap();
        let version = fee_policies::decide(&db, &config, &admin, version.id, true).await.unwrap();
        assert_eq!(version.status, VersionStatus::Approved);
        let after = preview::refresh(&db, &config, this_week()).await.unwrap();
        assert_eq!(after.fee_policy_version, Some(version.id));
        assert_eq!(after.totals.charged.minor(), 200 + 400, "r4: 2.00 + 8 km × 0.50");
        assert_ne!(after.content_hash, before.content_hash);

        // Even a version that covers the frozen week (stored as if approved long ago) leaves it
        // as it was approved.
        execute(&db, &format!(
            "INSERT INTO fee_policy_versions (effective_week, currency, base_minor, per_km_minor, platform_fee_bps,              no_show_fee_minor, status, proposed_by, proposed_at, decided_by, decided_at)              VALUES ('{}', 'USD', 900, 900, 5000, 900, 'approved', {}, '2026-01-01T00:00:00Z', {}, '2026-01-01T00:00:00Z')",
            last_week().previous(), finance.staff.id, admin.staff.id)).await;
        let again = preview::refresh(&db, &config, last_week()).await.unwrap();
        assert_eq!(again, frozen, "a frozen week is never repriced");
        assert_eq!(again.fee_policy_version, None, "it keeps the built-in policy it was approved with");
        let (_, again_plan) = preview::preview(&db, &config, last_week()).await.unwrap();
        assert_eq!(again_plan, frozen_plan);
        // Its what-if compares with the version it was approved with.
        let w = fee_policies::what_if(&db, &config, &admin, version.id, last_week()).await.unwrap();
        assert_eq!(w.current_version, 0);
        assert_eq!(w.before, frozen.totals);
    }

    async fn the_what_if_of_the_prices_in_force_changes_nobody(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_staff(&db).await;
        with_rides(&db).await;
        let finance = principal(&db, &email_of(Role::Finance)).await;
        let same = fee_policies::propose(&db, &config, &finance, &built_in_prices(this_week())).await.unwrap();
        for week in [last_week(), this_week()] {
            let w = fee_policies::what_if(&db, &config, &finance, same.id, week).await.unwrap();
            assert!(w.passengers > 0, "{w:?}");
            assert_eq!((w.same, w.up, w.down), (w.passengers, 0, 0), "{w:?}");
            assert_eq!(w.before, w.after);
            assert!(w.largest_increases.is_empty());
        }
        // Nothing was stored by the what-ifs.
        assert!(db.stored_week(last_week()).await.unwrap().is_none());
        let refused = fee_policies::what_if(&db, &config, &finance, same.id, this_week().next()).await.unwrap_err();
        assert!(refused.to_string().contains("has not started"), "{refused}");
    }
}

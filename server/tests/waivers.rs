//! Waivers before approval over the JSON API, on each database: support waives a line within the
//! limit and the preview (an invoice's total, the week's totals, its content hash) follows at
//! once, still balanced; above the limit the waiver waits for another finance or admin member,
//! and the week is not approved while it waits; bad requests are refused by name and change
//! nothing; an approval freezes the waivers (a new one is refused pointing to refunds); and the
//! run charges the waived invoice its reduced total, as the simulator's own ledger shows.

mod support;

use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;
use app::model::staff::Role;
use app::model::week::BillingWeek;
use chrono::Duration;
use chrono_tz::Tz;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::db::Db;
use support::{email_of, rows, Kind, PspSim, ServerProcess, StaffedServer, TestDb, FINANCE_TWO, PASSWORD};

/// A ride of `week` by dana, `hour` hours after the week starts, `km` long, with its seats.
fn ride(id: &str, week: BillingWeek, hour: i64, km: i64, seats: &[(&str, Attendance)]) -> Ride {
    let ended_at = week.start(Tz::UTC) + Duration::hours(hour);
    Ride {
        ride_id: id.into(),
        driver_id: "dana".into(),
        distance_m: km * 1000,
        started_at: ended_at - Duration::minutes(30),
        ended_at,
        seats: seats.iter().map(|(p, a)| Seat { passenger_id: (*p).into(), attendance: *a }).collect(),
    }
}

/// Last week's rides (built-in policy: 2.00 a trip, 0.35 a km, 15 %, 3.00 a no-show):
/// r1 10 km, ana and bo rode (5.50: 2.75 each); r2, ana did not show up (3.00); r3 20 km, cy
/// rode (9.00). 17.50 in all.
async fn store_rides(db: &Db, week: BillingWeek) {
    use Attendance::*;
    support::add_users(db, &["dana", "ana", "bo", "cy"]).await;
    for ride in [
        ride("r1", week, 10, 10, &[("ana", Completed), ("bo", Completed)]),
        ride("r2", week, 20, 4, &[("ana", NoShow)]),
        ride("r3", week, 30, 20, &[("cy", Completed)]),
    ] {
        db.store_ride(&ride).await.unwrap();
    }
}

fn last_week() -> BillingWeek {
    BillingWeek::parse(&support::last_week()).unwrap()
}

/// The staff's tokens, and a client.
struct Staff {
    http: reqwest::Client,
    support: String,
    finance: String,
    finance_two: String,
    admin: String,
}

async fn staff(app: &StaffedServer) -> Staff {
    server::staff::add(
        &app.db,
        &server::db::audit::Actor::cli(),
        FINANCE_TWO,
        Role::Finance,
        PASSWORD.into(),
    )
    .await
    .unwrap();
    Staff {
        http: reqwest::Client::new(),
        support: app.token_for(&email_of(Role::Support)).await,
        finance: app.token_for(&email_of(Role::Finance)).await,
        finance_two: app.token_for(FINANCE_TWO).await,
        admin: app.token_for(&email_of(Role::Admin)).await,
    }
}

/// A staffed server on a database holding last week's rides.
async fn week_with_rides(kind: Kind) -> (StaffedServer, Staff, BillingWeek) {
    let app = StaffedServer::start(kind).await;
    let week = last_week();
    store_rides(&app.db, week).await;
    let staff = staff(&app).await;
    (app, staff, week)
}

/// `METHOD path` with `token` and an optional JSON body: the status and the JSON answer.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, format!("{base}{path}")).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(s: &Staff, base: &str, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    call(&s.http, base, reqwest::Method::POST, path, token, Some(body)).await
}

async fn preview(s: &Staff, base: &str, week: BillingWeek, token: &str) -> Value {
    let (status, body) =
        call(&s.http, base, reqwest::Method::GET, &format!("/api/v1/weeks/{week}/preview"), token, None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn waive(s: &Staff, base: &str, week: BillingWeek, token: &str, body: Value) -> (StatusCode, Value) {
    post(s, base, &format!("/api/v1/weeks/{week}/waivers"), token, body).await
}

/// "17.50" → 1750.
fn minor(amount: &Value) -> i64 {
    let text = amount.as_str().unwrap_or_else(|| panic!("an amount: {amount}"));
    let (whole, cents) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + cents.parse::<i64>().unwrap()
}

/// A passenger's invoice total in a preview, in minor units; `None` without an invoice.
fn invoice_total(preview: &Value, user: &str) -> Option<i64> {
    preview["invoices"].as_array().unwrap().iter().find(|i| i["user_id"] == user).map(|i| minor(&i["total"]))
}

fn payout_total(preview: &Value, driver: &str) -> i64 {
    minor(&preview["payouts"].as_array().unwrap().iter().find(|p| p["driver_id"] == driver).unwrap()["total"])
}

/// The week's totals hold together to the minor unit: charged is the invoices' sum, fees plus
/// payouts is charged, and the payouts' totals and fees are the totals'.
fn assert_balanced(preview: &Value) {
    let totals = &preview["totals"];
    let invoices: i64 = preview["invoices"].as_array().unwrap().iter().map(|i| minor(&i["total"])).sum();
    let lines: i64 = preview["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["lines"].as_array().unwrap())
        .map(|l| minor(&l["amount"]))
        .sum();
    let payouts: i64 = preview["payouts"].as_array().unwrap().iter().map(|p| minor(&p["total"])).sum();
    let fees: i64 = preview["payouts"].as_array().unwrap().iter().map(|p| minor(&p["fees"])).sum();
    assert_eq!(minor(&totals["charged"]), invoices, "{totals}");
    assert_eq!(invoices, lines);
    assert_eq!(minor(&totals["fees"]) + minor(&totals["payouts"]), minor(&totals["charged"]), "{totals}");
    assert_eq!((minor(&totals["payouts"]), minor(&totals["fees"])), (payouts, fees));
}

fn line(user: &str, ride: &str, part: &str, reason: &str, request_id: &str) -> Value {
    json!({ "user_id": user, "ride_id": ride, "part": part, "reason": reason, "note": "The driver never came", "request_id": request_id })
}

async fn waiver_count(db: &Db) -> i64 {
    let n: Vec<(i64,)> = rows(db, "SELECT COUNT(*) FROM waivers").await;
    n[0].0
}

on_both_databases! {
    async fn support_waives_within_the_limit_and_the_preview_follows(kind: Kind) {
        let (app, s, week) = week_with_rides(kind).await;
        let base = app.server.base.clone();
        // Support now opens the week's preview (to waive from its invoice panel).
        let before = preview(&s, &base, week, &s.support).await;
        assert_eq!(minor(&before["totals"]["charged"]), 1750);
        assert_eq!((invoice_total(&before, "ana"), invoice_total(&before, "bo")), (Some(575), Some(275)));
        assert_balanced(&before);
        let dana_before = payout_total(&before, "dana");

        // bo's share of r1: 2.75, within support's 50.00: applied at once.
        let (status, answer) = waive(&s, &base, week, &s.support, line("bo", "r1", "ride_share", "driver_no_show", "w-bo")).await;
        let bo = answer["waiver"]["id"].as_i64().unwrap_or_default();
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!((answer["outcome"].as_str(), answer["waiver"]["state"].as_str()), (Some("applied"), Some("applied")));
        assert_eq!(answer["waiver"]["amount"]["amount"], "2.75");
        assert_eq!(answer["waiver"]["requested_by"], email_of(Role::Support));
        assert_eq!(answer["waiver"]["line"]["driver_id"], "dana", "the line it waives, with its ride");

        let after = preview(&s, &base, week, &s.support).await;
        assert_eq!(minor(&after["totals"]["charged"]), 1750 - 275, "the week's charge drops by the line");
        assert_eq!(invoice_total(&after, "bo"), None, "bo has nothing left to pay: no invoice");
        assert_eq!(after["totals"]["invoices"], 2);
        assert_ne!(after["content_hash"], before["content_hash"], "the hash includes the waiver");
        assert_balanced(&after);
        // The seat contributes nothing: r1's gross drops by 2.75 and its fee from 0.82 to 0.41
        // (15 % of 5.50 and of 2.75, half to even), so dana gets 2.34 less.
        assert_eq!(dana_before - payout_total(&after, "dana"), 234);
        let listed = after["waivers"].as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0]["user_id"].as_str(), listed[0]["ride_id"].as_str()), (Some("bo"), Some("r1")));

        // ana's no-show fee (3.00): her invoice drops by it, from 5.75 to 2.75.
        let (status, answer) = waive(&s, &base, week, &s.support, line("ana", "r2", "no_show_fee", "goodwill", "w-ana")).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let twice = preview(&s, &base, week, &s.finance).await;
        assert_eq!(invoice_total(&twice, "ana"), Some(275));
        assert_eq!(minor(&twice["totals"]["charged"]), 1750 - 275 - 300);
        assert_balanced(&twice);
        let lines: Vec<&str> = twice["invoices"].as_array().unwrap().iter().find(|i| i["user_id"] == "ana").unwrap()["lines"]
            .as_array().unwrap().iter().map(|l| l["ride_id"].as_str().unwrap()).collect();
        assert_eq!(lines, ["r1"], "the waived no-show is no line of ana's invoice");

        // The same request again is the same waiver (200); with another reason it is refused.
        let (status, again) = waive(&s, &base, week, &s.support, line("ana", "r2", "no_show_fee", "goodwill", "w-ana")).await;
        assert_eq!((status, again["outcome"].as_str()), (StatusCode::OK, Some("existing")), "{again}");
        assert_eq!(again["waiver"]["id"], answer["waiver"]["id"]);
        let (status, other) = waive(&s, &base, week, &s.support, line("ana", "r2", "no_show_fee", "service_issue", "w-ana")).await;
        assert_eq!((status, other["field"].as_str()), (StatusCode::CONFLICT, Some("reason")), "{other}");
        assert_eq!(waiver_count(&app.db).await, 2);
        assert_eq!(preview(&s, &base, week, &s.finance).await["content_hash"], twice["content_hash"], "a repeat changes nothing");

        // An approver's hash pins the waivers: the hash reviewed before the second waiver no
        // longer approves, the current one does.
        let (status, stale) = post(&s, &base, &format!("/api/v1/weeks/{week}/approve"), &s.finance, json!({ "content_hash": after["content_hash"] })).await;
        assert_eq!((status, stale["field"].as_str()), (StatusCode::CONFLICT, Some("content_hash")), "{stale}");

        // Withdrawn, bo's line is charged again; withdrawing both gives back the very first week.
        for id in [bo, answer["waiver"]["id"].as_i64().unwrap()] {
            let (status, gone) = call(&s.http, &base, reqwest::Method::DELETE, &format!("/api/v1/waivers/{id}"), &s.support, None).await;
            assert_eq!((status, gone["state"].as_str()), (StatusCode::OK, Some("withdrawn")), "{gone}");
        }
        let back = preview(&s, &base, week, &s.finance).await;
        assert_eq!((&back["content_hash"], &back["totals"]), (&before["content_hash"], &before["totals"]));

        let audit: Vec<(String,)> = rows(&app.db, "SELECT action FROM audit_log WHERE action LIKE 'waiver.%' ORDER BY id").await;
        let actions: Vec<&str> = audit.iter().map(|(a,)| a.as_str()).collect();
        assert_eq!(actions, ["waiver.request", "waiver.request", "waiver.withdraw", "waiver.withdraw"]);
    }

    async fn above_the_limit_a_waiver_waits_for_another_member(kind: Kind) {
        let (app, s, week) = week_with_rides(kind).await;
        let base = app.server.base.clone();
        let limits = s.http.put(format!("{base}/api/v1/settings/refund-limits")).bearer_auth(&s.admin)
            .json(&json!({ "support_per_refund": "2.00", "support_per_day": "200.00" })).send().await.unwrap();
        assert_eq!(limits.status(), StatusCode::OK);
        let before = preview(&s, &base, week, &s.finance).await;

        // cy's 9.00 and bo's 2.75 are above support's 2.00: they wait, and change nothing yet.
        let (status, cy) = waive(&s, &base, week, &s.support, line("cy", "r3", "ride_share", "service_issue", "w-cy")).await;
        assert_eq!((status, cy["outcome"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{cy}");
        let (status, bo) = waive(&s, &base, week, &s.support, line("bo", "r1", "ride_share", "duplicate_ride", "w-bo")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{bo}");
        let waiting = preview(&s, &base, week, &s.finance).await;
        assert_eq!((&waiting["content_hash"], &waiting["totals"]), (&before["content_hash"], &before["totals"]));
        let (cy_id, bo_id) = (cy["waiver"]["id"].as_i64().unwrap(), bo["waiver"]["id"].as_i64().unwrap());

        // While a waiver waits, the week is not approved.
        let approve = format!("/api/v1/weeks/{week}/approve");
        let (status, refused) = post(&s, &base, &approve, &s.finance, json!({ "content_hash": waiting["content_hash"] })).await;
        assert_eq!((status, refused["field"].as_str()), (StatusCode::CONFLICT, Some("week")), "{refused}");
        assert!(refused["error"].as_str().unwrap().contains(&format!("waiver {cy_id}")), "{refused}");

        // Support cannot decide; the requester cannot decide their own, whatever their role now.
        let (status, _) = post(&s, &base, &format!("/api/v1/waivers/{cy_id}/approve"), &s.support, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let mut requester = app::model::staff::Principal {
            staff: app.db.list_staff().await.unwrap().into_iter().find(|m| m.email == email_of(Role::Support)).unwrap(),
            method: app::model::staff::AuthMethod::Token,
            source: "test".into(),
        };
        requester.staff.role = Role::Finance;
        let config = server::config::Config::from_lookup({
            let url = app.test_db.url.clone();
            move |name| (name == "DATABASE_URL").then(|| url.clone())
        }).unwrap();
        let own = server::waivers::decide(&app.db, (&std::sync::Arc::new(config), &Default::default()), &requester, cy_id, true, "").await.unwrap_err();
        assert!(matches!(own, server::error::Error::Forbidden(ref m) if m.contains("four eyes")), "{own:?}");

        // A rejection needs a note; rejected, bo's line stays charged.
        let (status, no_note) = post(&s, &base, &format!("/api/v1/waivers/{bo_id}/reject"), &s.finance, json!({})).await;
        assert_eq!((status, no_note["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("note")));
        let (status, rejected) = post(&s, &base, &format!("/api/v1/waivers/{bo_id}/reject"), &s.finance, json!({ "note": "bo rode" })).await;
        assert_eq!((status, rejected["state"].as_str()), (StatusCode::OK, Some("rejected")), "{rejected}");
        assert_eq!(rejected["decided_by"], email_of(Role::Finance));
        let after_reject = preview(&s, &base, week, &s.finance).await;
        assert_eq!((&after_reject["content_hash"], &after_reject["totals"]), (&before["content_hash"], &before["totals"]), "a rejected waiver changes nothing");

        // Another finance member approves cy's: applied now.
        let (status, approved) = post(&s, &base, &format!("/api/v1/waivers/{cy_id}/approve"), &s.finance_two, json!({})).await;
        assert_eq!((status, approved["state"].as_str()), (StatusCode::OK, Some("applied")), "{approved}");
        assert_eq!(approved["decided_by"], FINANCE_TWO);
        let (status, twice) = post(&s, &base, &format!("/api/v1/waivers/{cy_id}/reject"), &s.finance, json!({ "note": "late" })).await;
        assert_eq!((status, twice["field"].as_str()), (StatusCode::CONFLICT, Some("waiver")), "a decided waiver is not decided again");
        let applied = preview(&s, &base, week, &s.finance).await;
        assert_eq!(minor(&applied["totals"]["charged"]), 1750 - 900);
        assert_eq!(invoice_total(&applied, "cy"), None);
        assert_ne!(applied["content_hash"], before["content_hash"]);
        assert_balanced(&applied);

        // Approving freezes the week and its waivers.
        let (status, done) = post(&s, &base, &approve, &s.finance, json!({ "content_hash": applied["content_hash"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{done}");
        let (status, late) = waive(&s, &base, week, &s.support, line("ana", "r1", "ride_share", "goodwill", "w-late")).await;
        assert_eq!((status, late["field"].as_str()), (StatusCode::CONFLICT, Some("week")), "{late}");
        let message = late["error"].as_str().unwrap();
        assert!(message.contains("approved and charged as approved") && message.contains("refund the invoice instead"), "{message}");
        let (status, withdraw) = call(&s.http, &base, reqwest::Method::DELETE, &format!("/api/v1/waivers/{cy_id}"), &s.finance, None).await;
        assert_eq!((status, withdraw["field"].as_str()), (StatusCode::CONFLICT, Some("week")), "{withdraw}");
        // A waiver left waiting (as written before this rule, say) is not approved any more.
        let staff_id: Vec<(i64,)> = rows(&app.db, &format!("SELECT id FROM staff WHERE email = '{}'", email_of(Role::Support))).await;
        support::execute(&app.db, &format!(
            "INSERT INTO waivers (request_id, week, user_id, ride_id, part, amount_minor, currency, reason, note, state, requested_by, requested_by_id, requested_at) \
             VALUES ('w-old', '{week}', 'ana', 'r1', 'ride_share', 275, 'USD', 'goodwill', '', 'awaiting_approval', '{}', {}, '2026-01-01T00:00:00Z')",
            email_of(Role::Support), staff_id[0].0,
        )).await;
        let old: Vec<(i64,)> = rows(&app.db, "SELECT id FROM waivers WHERE request_id = 'w-old'").await;
        let (status, frozen) = post(&s, &base, &format!("/api/v1/waivers/{}/approve", old[0].0), &s.finance, json!({})).await;
        assert_eq!((status, frozen["field"].as_str()), (StatusCode::CONFLICT, Some("week")), "{frozen}");
        assert!(frozen["error"].as_str().unwrap().contains("refund the invoice instead"));
        let states: Vec<(String,)> = rows(&app.db, "SELECT state FROM waivers ORDER BY id").await;
        let states: Vec<&str> = states.iter().map(|(s,)| s.as_str()).collect();
        assert_eq!(states, ["applied", "rejected", "awaiting_approval"], "nothing changed after the approval");
        let frozen_preview = preview(&s, &base, week, &s.finance).await;
        assert_eq!(frozen_preview["status"], "approved");
        assert_eq!((&frozen_preview["content_hash"], &frozen_preview["totals"]), (&applied["content_hash"], &applied["totals"]));

        let audit: Vec<(String,)> = rows(&app.db, "SELECT action FROM audit_log WHERE action LIKE 'waiver.%' ORDER BY id").await;
        let actions: Vec<&str> = audit.iter().map(|(a,)| a.as_str()).collect();
        assert_eq!(actions, ["waiver.request", "waiver.request", "waiver.reject", "waiver.approve"]);
    }

    async fn bad_waivers_are_refused_by_name_and_change_nothing(kind: Kind) {
        let (app, s, week) = week_with_rides(kind).await;
        let base = app.server.base.clone();
        let before = preview(&s, &base, week, &s.finance).await;
        let with = |user: &str, ride: Option<&str>, part: &str, reason: &str, note: &str| {
            json!({ "user_id": user, "ride_id": ride, "part": part, "reason": reason, "note": note, "request_id": format!("bad-{}", uuid::Uuid::new_v4()) })
        };
        let long = "x".repeat(1001);
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (with("ana", Some("r1"), "ride_share", "because", ""), StatusCode::UNPROCESSABLE_ENTITY, "reason"),
            (with("nobody", Some("r1"), "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "user_id"),
            (with("", Some("r1"), "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "user_id"),
            (with("ana", Some("no-such-ride"), "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "ride_id"),
            (with("ana", Some("r1"), "ride_share", "other", ""), StatusCode::UNPROCESSABLE_ENTITY, "note"),
            (with("ana", Some("r1"), "ride_share", "goodwill", &long), StatusCode::UNPROCESSABLE_ENTITY, "note"),
            (with("cy", Some("r1"), "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "ride_id"),
            (with("ana", Some("r1"), "no_show_fee", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "part"),
            (with("ana", Some("r2"), "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "part"),
            (with("ana", Some("r1"), "seat", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "part"),
            (with("ana", Some("r1"), "invoice", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "ride_id"),
            (with("ana", None, "ride_share", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "ride_id"),
            (with("dana", None, "invoice", "goodwill", ""), StatusCode::UNPROCESSABLE_ENTITY, "user_id"),
            (json!({ "user_id": "ana", "ride_id": "r1", "part": "ride_share", "reason": "goodwill", "request_id": "" }), StatusCode::UNPROCESSABLE_ENTITY, "request_id"),
            (json!({ "user_id": "ana", "part": "invoice", "reason": "goodwill" }), StatusCode::UNPROCESSABLE_ENTITY, "body"),
            (json!({ "user_id": "ana", "part": "invoice", "reason": "goodwill", "request_id": "x", "amount": "1.00" }), StatusCode::UNPROCESSABLE_ENTITY, "body"),
        ];
        for (body, status, field) in cases {
            let (got, answer) = waive(&s, &base, week, &s.finance, body.clone()).await;
            assert_eq!((got, answer["field"].as_str()), (status, Some(field)), "{body} → {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "a readable message: {answer}");
        }
        for bad_week in ["2026-48", "2999-W01"] {
            let (got, answer) = post(&s, &base, &format!("/api/v1/weeks/{bad_week}/waivers"), &s.finance, with("ana", Some("r1"), "ride_share", "goodwill", "")).await;
            assert_eq!((got, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("week")), "{bad_week}: {answer}");
        }
        assert_eq!(waiver_count(&app.db).await, 0, "nothing was written");
        let after = preview(&s, &base, week, &s.finance).await;
        assert_eq!((&after["content_hash"], &after["totals"]), (&before["content_hash"], &before["totals"]), "nothing changed");

        // Waiving twice: the same line, or the same whole invoice, is refused while waived.
        let (status, _) = waive(&s, &base, week, &s.finance, with("ana", Some("r1"), "ride_share", "goodwill", "")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, twice) = waive(&s, &base, week, &s.support, with("ana", Some("r1"), "ride_share", "goodwill", "")).await;
        assert_eq!((status, twice["field"].as_str()), (StatusCode::CONFLICT, Some("ride_id")), "{twice}");
        assert!(twice["error"].as_str().unwrap().contains("already waived"), "{twice}");
        let (status, _) = waive(&s, &base, week, &s.finance, with("bo", None, "invoice", "goodwill", "")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, twice) = waive(&s, &base, week, &s.finance, with("bo", None, "invoice", "goodwill", "")).await;
        assert_eq!((status, twice["field"].as_str()), (StatusCode::CONFLICT, Some("user_id")), "{twice}");
        let (status, covered) = waive(&s, &base, week, &s.finance, with("bo", Some("r1"), "ride_share", "goodwill", "")).await;
        assert_eq!((status, covered["field"].as_str()), (StatusCode::CONFLICT, Some("ride_id")), "bo's whole invoice covers r1: {covered}");
        assert_eq!(waiver_count(&app.db).await, 2);
        // A request id of one waiver cannot make another.
        let (status, reused) = waive(&s, &base, week, &s.finance, json!({ "user_id": "cy", "ride_id": "r3", "part": "ride_share", "reason": "goodwill", "request_id": rows::<(String,)>(&app.db, "SELECT request_id FROM waivers ORDER BY id LIMIT 1").await[0].0 })).await;
        assert_eq!((status, reused["field"].as_str()), (StatusCode::CONFLICT, Some("user_id")), "{reused}");
        // Support withdraws only its own.
        let first: Vec<(i64,)> = rows(&app.db, "SELECT id FROM waivers ORDER BY id LIMIT 1").await;
        let (status, _) = call(&s.http, &base, reqwest::Method::DELETE, &format!("/api/v1/waivers/{}", first[0].0), &s.support, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(waiver_count(&app.db).await, 2);
    }

    async fn a_run_charges_the_waived_invoice_its_reduced_total(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let actor = server::db::audit::Actor::cli();
        for role in Role::ALL {
            server::staff::add(&db, &actor, &email_of(role), role, PASSWORD.into()).await.unwrap();
        }
        let week = last_week();
        store_rides(&db, week).await;
        let sim = PspSim::start(&[]).await;
        let server = ServerProcess::start_with(sim.billing(&test_db.url), &test_db.url).await;
        let app = StaffedServer { test_db, db, server };
        let s = Staff {
            http: reqwest::Client::new(),
            support: app.token_for(&email_of(Role::Support)).await,
            finance: app.token_for(&email_of(Role::Finance)).await,
            finance_two: String::new(),
            admin: String::new(),
        };
        let base = app.server.base.clone();
        // ana's no-show fee (support, 3.00) and cy's whole invoice (finance, 9.00) are waived.
        let (status, _) = waive(&s, &base, week, &s.support, line("ana", "r2", "no_show_fee", "driver_no_show", "run-ana")).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = waive(&s, &base, week, &s.finance, json!({ "user_id": "cy", "part": "invoice", "reason": "service_issue", "note": "", "request_id": "run-cy" })).await;
        assert_eq!(status, StatusCode::CREATED);
        let reviewed = preview(&s, &base, week, &s.finance).await;
        assert_eq!((invoice_total(&reviewed, "ana"), invoice_total(&reviewed, "bo"), invoice_total(&reviewed, "cy")), (Some(275), Some(275), None));
        let (status, approved) = post(&s, &base, &format!("/api/v1/weeks/{week}/approve"), &s.finance, json!({ "content_hash": reviewed["content_hash"] })).await;
        assert_eq!(status, StatusCode::CREATED, "{approved}");

        let out = sim.billing(&app.test_db.url).args(["run", "--week", &week.to_string(), "--workers", "2"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

        // The provider's own ledger: each invoice charged its reduced total once, cy not at all,
        // dana paid what the preview said.
        let charges = support::ledger_by(&sim, "charge", "invoice_id").await;
        let invoice_of = |user: &str| -> i64 {
            reviewed["invoices"].as_array().unwrap().iter().find(|i| i["user_id"] == user).unwrap()["invoice_id"].as_i64().unwrap()
        };
        let expected: std::collections::BTreeMap<i64, Vec<i64>> = [(invoice_of("ana"), vec![275]), (invoice_of("bo"), vec![275])].into();
        assert_eq!(charges, expected);
        let charged_users: Vec<String> = sim.ledger().await.iter().filter(|e| e["kind"] == "charge").map(|e| e["metadata"]["user_id"].as_str().unwrap().to_owned()).collect();
        assert!(!charged_users.contains(&"cy".to_owned()), "the waived invoice is never charged: {charged_users:?}");
        let paid: i64 = support::ledger_by(&sim, "transfer", "payout_id").await.values().flatten().sum();
        assert_eq!(paid, minor(&reviewed["totals"]["payouts"]));
        assert_eq!(charges.values().flatten().sum::<i64>(), minor(&reviewed["totals"]["charged"]));
        // And the product's books agree with what was approved.
        let frozen = preview(&s, &base, week, &s.finance).await;
        assert_eq!(frozen["content_hash"], reviewed["content_hash"]);
        let (_, unbalanced) = app.db.ledger_check().await.unwrap();
        assert!(unbalanced.is_empty());
    }
}

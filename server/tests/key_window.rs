//! Attempts past the key-reuse window. The provider forgets an idempotency key after 24 hours
//! (`billing psp-sim` too, on its own clock, which `POST /sim/clock` moves), so a run resumed a
//! day after its calls went out must not send them again under their keys: it looks up what
//! they made. These tests leave charges executed at the provider but never answered, move both
//! clocks 25 hours on, and resume; and they hold an item whose lookup cannot be made for two
//! finance members to settle.

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use server::db::Db;
use support::{email_of, Kind, PspSim, ServerProcess, StaffedServer, TestDb};

use app::model::staff::Role;

/// A week of demo data on a fresh database and a simulator that executes every payment but
/// holds its answer for four seconds, longer than the product waits; `billing run` starts the
/// run and is killed as soon as the provider has made three charges it has not answered.
async fn killed_with_open_attempts(kind: Kind) -> (TestDb, Db, PspSim, String) {
    let (test_db, db) = TestDb::migrated(kind).await;
    let sim = PspSim::start(&["--timeout-after-charge", "1.0", "--hang-ms", "4000"]).await;
    let out = sim
        .billing(&test_db.url)
        .args(["demo-data", "--passengers", "8", "--drivers", "2", "--weeks", "1", "--seed", "3"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    db.put_setting(
        "run_settings",
        &json!({
            "canary_size": 0, "workers": 2, "batch": 4, "lease_seconds": 2, "provider_timeout_seconds": 1,
            "unknown_retry_seconds": 0, "failure_rate_pct": 100
        }),
        "test",
    )
    .await
    .unwrap();
    let week = support::last_week();
    let mut run = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while support::ledger_by(&sim, "charge", "invoice_id").await.len() < 3 {
        assert!(Instant::now() < deadline, "the provider made no three charges in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.kill().await.unwrap();
    let _ = run.wait().await;
    (test_db, db, sim, week)
}

/// Invoices the provider charged whose attempt the product never heard the answer of.
async fn unanswered(db: &Db, sim: &PspSim) -> Vec<i64> {
    let open: Vec<(i64,)> =
        support::rows(db, "SELECT invoice_id FROM charge_attempts WHERE outcome IN ('started', 'unknown')")
            .await;
    let charged = support::ledger_by(sim, "charge", "invoice_id").await;
    open.into_iter().map(|r| r.0).filter(|id| charged.contains_key(id)).collect()
}

on_both_databases! {
    async fn a_run_resumed_a_day_later_looks_up_what_its_calls_made_and_charges_nobody_twice(kind: Kind) {
        let (test_db, db, sim, week) = killed_with_open_attempts(kind).await;
        let before = unanswered(&db, &sim).await;
        assert!(!before.is_empty(), "the provider charged invoices the product never heard of");

        // A day goes by on both sides: the provider forgets every key the run sent.
        let http = reqwest::Client::new();
        let faults = http.put(format!("{}/sim/faults", sim.base)).json(&json!({ "timeout_after_charge": 0.0 })).send().await.unwrap();
        assert!(faults.status().is_success());
        let moved = http.post(format!("{}/sim/clock", sim.base)).json(&json!({ "advance_seconds": 25 * 3600 })).send().await.unwrap();
        assert!(moved.status().is_success());
        support::age_attempts(&db, 25).await;
        support::execute(&db, "UPDATE charges SET lease_owner = NULL, lease_until = NULL").await;

        let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!((run.phase.as_str(), run.control.as_str()), ("completed", "running"), "{:?}", run.reason);

        // Against the provider's ledger: every invoice charged exactly once, its amount.
        let invoices: Vec<(i64, i64, String)> = support::rows(&db, "SELECT i.id, i.total_minor, c.state FROM invoices i JOIN charges c ON c.invoice_id = i.id").await;
        let charged = support::ledger_by(&sim, "charge", "invoice_id").await;
        for (id, total, state) in &invoices {
            assert_eq!(state, "charged", "invoice {id}");
            assert_eq!(charged.get(id), Some(&vec![*total]), "invoice {id} charged exactly once");
        }
        assert_eq!(charged.len(), invoices.len(), "no stray charge");
        // The charges the provider had made before the pause were found, not made again: each
        // is recorded on its first attempt, under the provider's own payment.
        for id in &before {
            let attempts: Vec<(i64, String, Option<String>)> = support::rows(&db, &format!("SELECT attempt, outcome, provider_id FROM charge_attempts WHERE invoice_id = {id} ORDER BY attempt")).await;
            assert_eq!(attempts.len(), 1, "invoice {id}: {attempts:?}");
            assert_eq!(attempts[0].1, "succeeded", "invoice {id}");
        }
        let (_, unbalanced) = db.ledger_check().await.unwrap();
        assert!(unbalanced.is_empty(), "{unbalanced:?}");
    }

    async fn a_lookup_that_cannot_be_made_holds_the_charge_for_two_finance_members(kind: Kind) {
        let (test_db, db, sim, week) = killed_with_open_attempts(kind).await;
        let open = unanswered(&db, &sim).await;
        assert!(!open.is_empty());
        support::age_attempts(&db, 25).await;
        support::execute(&db, "UPDATE charges SET lease_owner = NULL, lease_until = NULL").await;
        // The provider cannot be reached: no lookup can be made.
        let dead = sim.base.clone();
        drop(sim);
        let mut resume = support::billing();
        resume.env("DATABASE_URL", &test_db.url).env("PSP_URL", &dead).env("PSP_API_KEY", support::SIM_KEY);
        let out = resume.args(["run", "--week", &week]).output().await.unwrap();
        assert!(!out.status.success(), "the run stops: {}", String::from_utf8_lossy(&out.stdout));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.control.as_str(), "halted");
        assert!(run.reason.as_deref().unwrap_or_default().contains("waits for a person"), "{:?}", run.reason);
        let alerts = db.alerts(true, 10).await.unwrap();
        assert!(alerts.iter().any(|a| a.run_id == Some(run.id)), "the halt raised an alert: {alerts:?}");
        let held: Vec<(i64,)> = support::rows(&db, "SELECT invoice_id FROM charges WHERE held = 'lookup' ORDER BY invoice_id").await;
        assert!(!held.is_empty());
        // Nothing was sent again: every held invoice still has its one open attempt.
        for (id,) in &held {
            let attempts: Vec<(String,)> = support::rows(&db, &format!("SELECT outcome FROM charge_attempts WHERE invoice_id = {id}")).await;
            assert_eq!(attempts, vec![("unknown".to_owned(),)], "invoice {id}");
        }

        // Finance sees them on the run and settles them: one looked up again, one marked as not
        // made by two members.
        let other = PspSim::start(&[]).await;
        let server = ServerProcess::start_with(other.billing(&test_db.url), &test_db.url).await;
        let app = StaffedServer { test_db, db, server };
        let actor = server::db::audit::Actor::cli();
        for role in [Role::Finance, Role::Admin, Role::Support] {
            server::staff::add(&app.db, &actor, &email_of(role), role, support::PASSWORD.into()).await.unwrap();
        }
        let (finance, admin, support_token) = (
            app.token_for(&email_of(Role::Finance)).await,
            app.token_for(&email_of(Role::Admin)).await,
            app.token_for(&email_of(Role::Support)).await,
        );
        let http = reqwest::Client::new();
        let view: Value = http.get(app.url(&format!("/api/v1/runs/{}", run.id))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        let listed: Vec<i64> = view["held"].as_array().unwrap().iter().map(|h| h["id"].as_i64().unwrap()).collect();
        assert_eq!(listed, held.iter().map(|h| h.0).collect::<Vec<_>>(), "{view}");
        assert_eq!(view["held"][0]["kind"], "charge");
        assert!(view["held"][0]["key"].as_str().unwrap().starts_with("charge:"), "{view}");

        let first = held[0].0;
        let not_made = app.url(&format!("/api/v1/runs/{}/held/charge/{first}/not-made", run.id));
        let refused = http.post(&not_made).bearer_auth(&support_token).send().await.unwrap();
        assert_eq!(refused.status(), 403, "support may not");
        let asked = http.post(&not_made).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(asked.status(), 202, "asked; a second member confirms");
        let asked: Value = asked.json().await.unwrap();
        assert_eq!(asked["held"][0]["proposed_by"], email_of(Role::Finance).as_str());
        let same = http.post(&not_made).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(same.status(), 409, "the member who asked cannot confirm");
        let confirmed = http.post(&not_made).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(confirmed.status(), 200, "{}", confirmed.text().await.unwrap());
        let attempt: Vec<(String, Option<String>)> = support::rows(&app.db, &format!("SELECT outcome, detail FROM charge_attempts WHERE invoice_id = {first}")).await;
        assert_eq!(attempt.len(), 1);
        assert_eq!(attempt[0].0, "failed", "the open attempt is closed; the next goes out under a new key");
        assert!(attempt[0].1.as_deref().unwrap().contains(&email_of(Role::Admin)), "{attempt:?}");
        let again = http.post(&not_made).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(again.status(), 404, "no longer held");

        if let Some((second,)) = held.get(1) {
            let url = app.url(&format!("/api/v1/runs/{}/held/charge/{second}/look-again", run.id));
            let looked = http.post(&url).bearer_auth(&finance).send().await.unwrap();
            assert_eq!(looked.status(), 200);
            let still: Vec<(Option<String>,)> = support::rows(&app.db, &format!("SELECT held FROM charges WHERE invoice_id = {second}")).await;
            assert_eq!(still, vec![(None,)], "back to the workers, to be looked up again");
        }
        let bad = http.post(app.url(&format!("/api/v1/runs/{}/held/refund/{first}/look-again", run.id))).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(bad.status(), 422);
        assert!(bad.text().await.unwrap().contains("kind"), "the kind is named");
        let audited: Vec<(String, String)> = support::rows(&app.db, "SELECT action, actor FROM audit_log WHERE action LIKE 'charge.%' ORDER BY id").await;
        let mut expected = vec![
            ("charge.not_made.proposed".to_owned(), email_of(Role::Finance)),
            ("charge.not_made.confirmed".to_owned(), email_of(Role::Admin)),
        ];
        if held.len() > 1 {
            expected.push(("charge.look_again".to_owned(), email_of(Role::Finance)));
        }
        assert_eq!(audited, expected);
    }
}

/// The refunds the simulator made of `invoice`, by its ledger: their amounts.
async fn refunds_of(sim: &PspSim, invoice: i64) -> Vec<i64> {
    sim.ledger()
        .await
        .into_iter()
        .filter(|e| {
            e["kind"] == "refund"
                && e["metadata"]["invoice_id"].as_str() == Some(invoice.to_string().as_str())
        })
        .map(|e| e["amount"].as_i64().unwrap())
        .collect()
}

on_both_databases! {
    async fn a_refund_asked_again_a_day_later_is_looked_up_and_made_once(kind: Kind) {
        let support::Charged { mut app, sim } = support::charged_week(kind, &["--hang-ms", "3000"]).await;
        let charged: Vec<(i64, i64)> = support::rows(&app.db, "SELECT invoice_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY invoice_id").await;
        let ((a, _), (b, _)) = (charged[0], charged[1]);
        let token = app.token_for(&email_of(Role::Finance)).await;
        let http = reqwest::Client::new();
        let faults = |body: Value| {
            let http = http.clone();
            let url = format!("{}/sim/faults", sim.base);
            async move { assert!(http.put(url).json(&body).send().await.unwrap().status().is_success()) }
        };
        let refund = |invoice: i64, request: &'static str| {
            let (http, token, url) = (http.clone(), token.clone(), app.url(&format!("/api/v1/invoices/{invoice}/refunds")));
            async move {
                let body = json!({ "amount": "0.50", "reason": "duplicate", "request_id": request });
                let answer = http.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                assert_eq!(answer.status(), 201, "{}", answer.text().await.unwrap());
            }
        };
        // Refund A: the provider makes it, and its answer never reaches the product.
        faults(json!({ "timeout_after_charge": 1.0 })).await;
        refund(a, "late-a").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while refunds_of(&sim, a).await.is_empty() {
            assert!(Instant::now() < deadline, "the provider made refund A");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Refund B: the provider fails before making anything, without saying so clearly.
        faults(json!({ "timeout_after_charge": 0.0, "error_rate": 1.0 })).await;
        refund(b, "late-b").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tried: Vec<(String,)> = support::rows(&app.db, &format!("SELECT outcome FROM refund_attempts r JOIN refunds f ON f.id = r.refund_id WHERE f.invoice_id = {b}")).await;
            if tried.iter().any(|t| t.0 == "unknown") {
                break;
            }
            assert!(Instant::now() < deadline, "refund B was tried: {tried:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.server.child.kill().await.unwrap();
        let open: Vec<(i64, String)> = support::rows(&app.db, "SELECT invoice_id, state FROM refunds ORDER BY invoice_id").await;
        assert_eq!(open, vec![(a, "pending".to_owned()), (b, "pending".to_owned())], "neither answer is known");

        // A day later on both sides; the provider forgot both keys.
        faults(json!({ "error_rate": 0.0 })).await;
        let moved = http.post(format!("{}/sim/clock", sim.base)).json(&json!({ "advance_seconds": 25 * 3600 })).send().await.unwrap();
        assert!(moved.status().is_success());
        let sent: Vec<(i64, DateTime<Utc>)> = support::rows(&app.db, "SELECT id, key_sent_at FROM refunds").await;
        for (id, at) in sent {
            let aged = at - chrono::Duration::hours(25);
            let sql = "UPDATE refunds SET key_sent_at = $1, next_at = $1, lease_until = NULL WHERE id = $2";
            match &app.db {
                Db::Sqlite(p) => sqlx::query(sql).bind(aged).bind(id).execute(p).await.map(|_| ()),
                Db::Postgres(p) => sqlx::query(sql).bind(aged).bind(id).execute(p).await.map(|_| ()),
            }
            .unwrap();
        }
        app.server = ServerProcess::start_with(sim.billing(&app.test_db.url), &app.test_db.url).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let states: Vec<(String,)> = support::rows(&app.db, "SELECT state FROM refunds").await;
            if states.iter().all(|s| s.0 == "succeeded") {
                break;
            }
            assert!(Instant::now() < deadline, "the refunds settled: {states:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Against the provider's ledger: each made once. A was found; B went out under a new key.
        assert_eq!(refunds_of(&sim, a).await, vec![50]);
        assert_eq!(refunds_of(&sim, b).await, vec![50]);
        let keys: Vec<(i64, String)> = support::rows(&app.db, "SELECT invoice_id, idempotency_key FROM refunds ORDER BY invoice_id").await;
        assert!(!keys[0].1.starts_with("refund-"), "A kept its key: {keys:?}");
        assert!(keys[1].1.starts_with("refund-") && keys[1].1.contains("-key-"), "B got a new key: {keys:?}");
    }
}

on_both_databases! {
    async fn payouts_resumed_a_day_later_are_looked_up_and_paid_once(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let sim = PspSim::start(&["--hang-ms", "4000"]).await;
        let out = sim
            .billing(&test_db.url)
            .args(["demo-data", "--passengers", "12", "--drivers", "6", "--weeks", "1", "--seed", "3"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        db.put_setting(
            "run_settings",
            &json!({ "canary_size": 0, "workers": 2, "batch": 4, "lease_seconds": 2, "provider_timeout_seconds": 1,
                     "unknown_retry_seconds": 0, "failure_rate_pct": 100 }),
            "test",
        )
        .await
        .unwrap();
        let week = support::last_week();
        let http = reqwest::Client::new();
        let mut run = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve"]).spawn().unwrap();
        // Once the drivers are being paid, the provider makes each transfer and holds its answer.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if db.run_of_week(&week).await.unwrap().is_some_and(|r| r.phase.as_str() != "canary" && r.phase.as_str() != "charging") {
                break;
            }
            assert!(Instant::now() < deadline, "the run reached its payouts");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let held = http.put(format!("{}/sim/faults", sim.base)).json(&json!({ "timeout_after_charge": 1.0 })).send().await.unwrap();
        assert!(held.status().is_success());
        tokio::time::sleep(Duration::from_millis(600)).await;
        run.kill().await.unwrap();
        let _ = run.wait().await;
        let open: Vec<(i64,)> = support::rows(&db, "SELECT payout_id FROM transfer_attempts WHERE outcome IN ('started', 'unknown')").await;
        let made = support::ledger_by(&sim, "transfer", "payout_id").await;
        let unanswered: Vec<i64> = open.iter().map(|o| o.0).filter(|p| made.contains_key(p)).collect();
        assert!(!unanswered.is_empty(), "the provider made transfers the product never heard of: open {open:?}, made {made:?}");

        let faults = http.put(format!("{}/sim/faults", sim.base)).json(&json!({ "timeout_after_charge": 0.0 })).send().await.unwrap();
        assert!(faults.status().is_success());
        let moved = http.post(format!("{}/sim/clock", sim.base)).json(&json!({ "advance_seconds": 25 * 3600 })).send().await.unwrap();
        assert!(moved.status().is_success());
        tokio::time::sleep(Duration::from_millis(3500)).await; // the held answers are given up
        support::age_attempts(&db, 25).await;
        support::execute(&db, "UPDATE transfers SET lease_owner = NULL, lease_until = NULL").await;
        let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        // Against the provider's ledger: every driver paid exactly once, the payout's amount.
        let payouts: Vec<(i64, i64, String)> = support::rows(&db, "SELECT p.id, p.total_minor, t.state FROM payouts p JOIN transfers t ON t.payout_id = p.id WHERE p.total_minor > 0").await;
        let made = support::ledger_by(&sim, "transfer", "payout_id").await;
        for (id, total, state) in &payouts {
            assert_eq!(state, "paid", "payout {id}");
            assert_eq!(made.get(id), Some(&vec![*total]), "payout {id} paid exactly once");
        }
        for id in &unanswered {
            let attempts: Vec<(String,)> = support::rows(&db, &format!("SELECT outcome FROM transfer_attempts WHERE payout_id = {id}")).await;
            assert_eq!(attempts, vec![("succeeded".to_owned(),)], "payout {id}: found by the lookup, on its first attempt");
        }
    }
}

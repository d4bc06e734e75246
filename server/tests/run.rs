//! The weekly run as processes, on each database, against `billing psp-sim` over real HTTP: every
//! invoice charged once for exactly its amount, every driver paid once, the product's ledger
//! balanced and equal to the provider's; a killed run resumed without a second charge; the kill
//! switch stopping new provider calls within a second.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use server::db::Db;
use support::{execute, Kind, PspSim, TestDb};

fn last_week() -> String {
    app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string()
}

/// A migrated database with demo data, and a simulator.
async fn setup(kind: Kind, passengers: &str, sim_args: &[&str]) -> (TestDb, Db, PspSim) {
    setup_seeded(kind, passengers, "5", sim_args).await
}

/// As [`setup`], with the demo data's seed.
async fn setup_seeded(kind: Kind, passengers: &str, seed: &str, sim_args: &[&str]) -> (TestDb, Db, PspSim) {
    let (test_db, db) = TestDb::migrated(kind).await;
    let sim = PspSim::start(sim_args).await;
    let out = sim
        .billing(&test_db.url)
        .args(["demo-data", "--passengers", passengers, "--drivers", "4", "--weeks", "1", "--seed", seed])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (test_db, db, sim)
}

/// Stores run settings (short leases so a killed worker's items come back quickly).
async fn settings(db: &Db, json: Value) {
    db.put_setting("run_settings", &json, "test").await.unwrap();
}

/// The week's frozen invoices and payouts: id → (user, amount).
async fn frozen(db: &Db, week: &str) -> (BTreeMap<i64, (String, i64)>, BTreeMap<i64, (String, i64)>) {
    let q1 = "SELECT id, user_id, total_minor FROM invoices WHERE week = $1";
    let q2 = "SELECT id, driver_id, total_minor FROM payouts WHERE week = $1 AND total_minor > 0";
    type Rows = Vec<(i64, String, i64)>;
    let (invoices, payouts): (Rows, Rows) = match db {
        Db::Sqlite(p) => (
            sqlx::query_as(q1).bind(week).fetch_all(p).await.unwrap(),
            sqlx::query_as(q2).bind(week).fetch_all(p).await.unwrap(),
        ),
        Db::Postgres(p) => (
            sqlx::query_as(q1).bind(week).fetch_all(p).await.unwrap(),
            sqlx::query_as(q2).bind(week).fetch_all(p).await.unwrap(),
        ),
    };
    let map = |rows: Rows| rows.into_iter().map(|(id, u, a)| (id, (u, a))).collect();
    (map(invoices), map(payouts))
}

/// Checks the provider's ledger against the frozen week: each invoice charged exactly once for
/// its amount, each driver paid exactly once; and the product's ledger balanced and agreeing.
async fn assert_exactly_once(db: &Db, sim: &PspSim, week: &str) {
    let (invoices, payouts) = frozen(db, week).await;
    let entries = sim.ledger().await;
    let mut charges: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut transfers: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in &entries {
        let amount = e["amount"].as_i64().unwrap();
        match e["kind"].as_str().unwrap() {
            "charge" => {
                assert_eq!(e["metadata"]["week"], week);
                let id: i64 = e["metadata"]["invoice_id"].as_str().unwrap().parse().unwrap();
                charges.entry(id).or_default().push(amount);
            }
            "transfer" => {
                let id: i64 = e["metadata"]["payout_id"].as_str().unwrap().parse().unwrap();
                transfers.entry(id).or_default().push(amount);
            }
            _ => {}
        }
    }
    for (id, (user, amount)) in &invoices {
        assert_eq!(
            charges.get(id),
            Some(&vec![*amount]),
            "invoice {id} of {user}: charged exactly once, exactly its amount"
        );
    }
    assert_eq!(charges.len(), invoices.len(), "no charge for anything but the week's invoices");
    for (id, (driver, amount)) in &payouts {
        assert_eq!(transfers.get(id), Some(&vec![*amount]), "payout {id} of {driver}: paid exactly once");
    }
    assert_eq!(transfers.len(), payouts.len());
    let (count, unbalanced) = db.ledger_check().await.unwrap();
    assert!(count > 0);
    assert!(unbalanced.is_empty(), "every ledger transaction sums to zero: {unbalanced:?}");
    let charged: i64 = invoices.values().map(|(_, a)| a).sum();
    let paid: i64 = payouts.values().map(|(_, a)| a).sum();
    let clearing = db.ledger_balance(&server::billing::ledger::Account::ProviderClearing).await.unwrap();
    assert_eq!(clearing, charged - paid, "what the provider holds for us is the fees");
    let fees = db.ledger_balance(&server::billing::ledger::Account::PlatformFees).await.unwrap();
    assert_eq!(-fees, charged - paid);
    let run = db.run_of_week(week).await.unwrap().unwrap();
    let counts = db.run_counts(run.id, run.canary_size).await.unwrap();
    assert_eq!(
        (counts.charged, counts.charged_minor, counts.paid, counts.paid_minor),
        (invoices.len() as i64, charged, counts.transfers, paid),
        "the run's running totals are the provider's movements"
    );
    assert_eq!(
        db.check_run_tallies(run.id, run.canary_size).await.unwrap(),
        None,
        "the totals agree with a count"
    );
}

on_both_databases! {
    async fn a_run_charges_every_invoice_once_and_pays_every_driver(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "30", &[]).await;
        let week = last_week();
        let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve", "--workers", "4"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_exactly_once(&db, &sim, &week).await;
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!((run.phase.as_str(), run.control.as_str()), ("completed", "running"));
        // The run took seconds: its page's last two minutes hold every movement the provider made.
        let moved = sim.ledger().await.iter().filter(|e| e["kind"] == "charge" || e["kind"] == "transfer").count();
        let view = server::run::view::view(&db, run.clone(), chrono_tz::Tz::UTC).await.unwrap();
        assert_eq!(view.sparkline.iter().sum::<i64>(), moved as i64, "{:?}", view.sparkline);
        // Its moments go out in the business time zone, with its offset: the same instants.
        let paris = server::run::view::view(&db, run.clone(), chrono_tz::Europe::Paris).await.unwrap();
        assert_eq!(paris.time_zone, "Europe/Paris");
        assert_eq!(paris.started_at, run.started_at.fixed_offset(), "the same instant");
        assert!(matches!(paris.started_at.offset().local_minus_utc(), 3600 | 7200), "{}", paris.started_at);

        // Running it again joins the completed run: nothing more moves.
        let before = sim.ledger().await.len();
        let again = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(again.status.success());
        assert_eq!(sim.ledger().await.len(), before);
    }

    async fn a_killed_run_resumes_without_charging_twice(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "40", &["--latency-ms", "20"]).await;
        settings(&db, serde_json::json!({ "lease_seconds": 1, "canary_size": 5 })).await;
        let week = last_week();
        let mut first = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve", "--workers", "4"]).spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while sim.ledger().await.iter().filter(|e| e["kind"] == "charge").count() < 8 {
            assert!(Instant::now() < deadline, "the run made no progress");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        first.kill().await.unwrap();
        // Two processes pick it up at once.
        let a = sim.billing(&test_db.url).args(["run", "--week", &week, "--workers", "3"]).output();
        let b = sim.billing(&test_db.url).args(["run", "--week", &week, "--workers", "3"]).output();
        let (a, b) = tokio::join!(a, b);
        for out in [a.unwrap(), b.unwrap()] {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_exactly_once(&db, &sim, &week).await;
    }
}

// Outcomes are recorded a batch at a time (the successes together); a second success for an
// invoice in a batch is refused alone, and the rest of the batch is recorded all the same.
on_both_databases! {
    async fn a_second_success_in_a_batch_is_refused_alone(kind: Kind) {
        use server::db::runs::{Claimed, Outcome, Recorded, Work};
        let (test_db, db, sim) = setup(kind, "6", &[]).await;
        let week = last_week();
        let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let (invoices, _) = frozen(&db, &week).await;
        let ids: Vec<i64> = invoices.keys().copied().take(3).collect();
        let items: Vec<Claimed> =
            ids.iter().map(|&id| Claimed { id, user_id: invoices[&id].0.clone(), amount_minor: invoices[&id].1, attempts: 0 }).collect();
        // Each invoice was charged once; a new attempt for each, written in one transaction.
        let begun = db.begin_attempts(Work::Charge, &week, &items, "test", None).await.unwrap();
        let keys: Vec<String> = begun.into_iter().map(|a| a.expect("no lease asked for").key).collect();
        assert!(keys.iter().all(|k| k.ends_with("attempt-2")), "{keys:?}");
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let outcomes = vec![
            Outcome::Unknown { id: ids[0], key: keys[0].clone(), detail: "timed out".into(), retry_at: later },
            Outcome::Succeeded { id: ids[1], key: keys[1].clone(), provider_id: "pi_second".into(), ledger: None },
            Outcome::Succeeded { id: ids[2], key: keys[2].clone(), provider_id: "pi_third".into(), ledger: None },
        ];
        let recorded = db.record_outcomes(Work::Charge, &outcomes).await.unwrap();
        assert_eq!(recorded, vec![Recorded::Unknown, Recorded::Succeeded(false), Recorded::Succeeded(false)]);
        let q = "SELECT idempotency_key, outcome FROM charge_attempts WHERE attempt = 2 ORDER BY idempotency_key";
        let rows: Vec<(String, String)> = match &db {
            Db::Sqlite(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_as(q).fetch_all(p).await.unwrap(),
        };
        let outcome_of = |key: &str| rows.iter().find(|(k, _)| k == key).map(|(_, o)| o.clone()).unwrap();
        assert_eq!(outcome_of(&keys[0]), "unknown");
        assert_eq!(outcome_of(&keys[1]), "started", "a refused second success changes nothing");
        assert_eq!(outcome_of(&keys[2]), "started", "a refused second success changes nothing");
    }
}

/// The kill switch from the terminal: after `billing pause` returns, no new provider call
/// starts later than a second, the working process exits 3, and a resumed run completes with
/// every invoice charged once.
#[tokio::test]
async fn pausing_stops_new_provider_calls_within_a_second() {
    let (test_db, db, sim) = setup(Kind::Sqlite, "60", &["--latency-ms", "40"]).await;
    settings(&db, serde_json::json!({ "canary_size": 5 })).await;
    let week = last_week();
    let mut worker = sim
        .billing(&test_db.url)
        .args(["run", "--week", &week, "--approve", "--workers", "4"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.ledger().await.iter().filter(|e| e["kind"] == "charge").count() < 10 {
        assert!(Instant::now() < deadline, "the run made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let paused = sim
        .billing(&test_db.url)
        .args(["pause", "--week", &week, "--reason", "test"])
        .output()
        .await
        .unwrap();
    assert!(paused.status.success(), "{}", String::from_utf8_lossy(&paused.stderr));
    let alerts = db.alerts(true, 10).await.unwrap();
    assert_eq!(alerts.len(), 1, "a person's pause is an alert: {alerts:?}");
    assert_eq!(alerts[0].kind, app::model::alerts::AlertKind::RunPaused);
    assert!(alerts[0].detail.contains("test"), "{}", alerts[0].detail);
    let paused_at = chrono::Utc::now();
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("the worker stops")
        .unwrap();
    assert_eq!(status.code(), Some(3), "a paused run exits 3");
    let entries = sim.ledger().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sim.ledger().await.len(), entries.len(), "nothing moves while paused");
    let last = entries
        .iter()
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str()?).ok())
        .max()
        .unwrap();
    let after = (last.with_timezone(&chrono::Utc) - paused_at).num_milliseconds();
    println!("kill switch: the last provider movement was {after} ms after `billing pause` returned");
    assert!(after < 1000, "the last movement came {after} ms after the pause");

    let resumed = sim.billing(&test_db.url).args(["resume", "--week", &week]).output().await.unwrap();
    assert!(resumed.status.success());
    let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_exactly_once(&db, &sim, &week).await;
    let audit = db.audit_page(&Default::default()).await.unwrap();
    assert!(audit.entries.iter().any(|e| e.action == "run.pause"));
}

fn config_for(url: &str) -> server::config::Config {
    let url = url.to_owned();
    server::config::Config::from_lookup(move |name| (name == "DATABASE_URL").then(|| url.clone())).unwrap()
}

/// Approves last week's preview in process, as finance would.
async fn approve(test_db: &TestDb, db: &Db) -> String {
    let config = config_for(&test_db.url);
    let week = app::model::week::BillingWeek::parse(&last_week()).unwrap();
    let stored = server::preview::refresh(db, &config, week).await.unwrap();
    let actor = server::db::audit::Actor {
        kind: "staff",
        name: "fin@example.com".into(),
        staff_id: None,
        source: "test".into(),
    };
    server::preview::approve(db, &config, &actor, week, &stored.content_hash).await.unwrap();
    week.to_string()
}

on_both_databases! {
    async fn an_invoice_changed_after_approval_halts_the_run_before_it_is_charged(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "20", &[]).await;
        settings(&db, serde_json::json!({ "canary_size": 50 })).await;
        let week = approve(&test_db, &db).await;
        let (invoices, _) = frozen(&db, &week).await;
        let (&victim, _) = invoices.iter().nth(7).unwrap();
        execute(&db, &format!("UPDATE invoice_lines SET amount_minor = amount_minor + 100 WHERE invoice_id = {victim}")).await;
        let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--workers", "2"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.control.as_str(), "halted");
        assert!(run.reason.as_deref().unwrap().contains(&format!("invoice {victim} no longer matches")), "{:?}", run.reason);
        let victim_id = victim.to_string();
        let charged_victim = sim.ledger().await.iter().any(|e| e["metadata"]["invoice_id"] == victim_id.as_str());
        assert!(!charged_victim, "the changed invoice is never charged");
    }

    async fn a_charge_row_that_differs_from_its_frozen_invoice_halts_the_run_before_the_call(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "20", &[]).await;
        settings(&db, serde_json::json!({ "canary_size": 50 })).await;
        let week = approve(&test_db, &db).await;
        let (invoices, _) = frozen(&db, &week).await;
        let (&victim, (_, total)) = invoices.iter().nth(5).unwrap();
        // The run exists, its charge rows written; one is changed behind the product's back.
        let parsed = app::model::week::BillingWeek::parse(&week).unwrap();
        db.start_run(parsed, &server::db::audit::Actor::cli(), 50).await.unwrap();
        execute(&db, &format!("UPDATE charges SET amount_minor = amount_minor * 10 WHERE invoice_id = {victim}")).await;
        let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--workers", "2"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.control.as_str(), "halted");
        let reason = run.reason.unwrap();
        assert!(reason.contains(&format!("invoice {victim}: the charge would send {} minor units, the approved invoice is {total}", total * 10)), "{reason}");
        let victim_id = victim.to_string();
        assert!(!sim.ledger().await.iter().any(|e| e["metadata"]["invoice_id"] == victim_id.as_str()), "never charged");
    }

    async fn a_passenger_charged_above_the_cap_halts_the_run_before_the_charge(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "40", &["--latency-ms", "10"]).await;
        // Every demo invoice is above 5.00: the first charge breaks the cap.
        settings(&db, serde_json::json!({ "user_cap_minor": 500, "workers": 4 })).await;
        let week = approve(&test_db, &db).await;
        let started = Instant::now();
        let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.control.as_str(), "halted");
        assert!(run.reason.as_deref().unwrap().contains("above the cap 500"), "{:?}", run.reason);
        let charges = sim.ledger().await.iter().filter(|e| e["kind"] == "charge").count();
        println!("user-cap guard: halted after {charges} charges, {} ms after the run started", started.elapsed().as_millis());
        assert_eq!(charges, 0, "an invoice above the cap is refused before the provider is called");
        // The banner's source: the run is listed as halted.
        assert_eq!(db.halted_runs().await.unwrap().len(), 1);
    }
}

on_both_databases! {
    async fn the_running_totals_follow_every_writer_and_a_wrong_total_is_recounted(kind: Kind) {
        let (test_db, db, _sim) = setup(kind, "10", &[]).await;
        let week = approve(&test_db, &db).await;
        let week_id = app::model::week::BillingWeek::parse(&week).unwrap();
        let run = db.start_run(week_id, &server::db::audit::Actor::cli(), 3).await.unwrap();
        let counts = db.run_counts(run.id, 3).await.unwrap();
        assert_eq!((counts.invoices, counts.pending, counts.canary_open, counts.attempts), (10, 10, 3, 0));
        assert_eq!(counts.transfers, counts.transfers_pending);
        let (invoices, _) = frozen(&db, &week).await;
        let ids: Vec<i64> = invoices.keys().copied().collect();
        let (first, second) = (ids[0], ids[1]);
        // Statements the run never makes, as a bug or a person at the console might: the totals
        // follow them all the same, since the database keeps them.
        execute(&db, &format!(
            "INSERT INTO charge_attempts (invoice_id, attempt, idempotency_key, amount_minor, outcome, worker, started_at) \
             VALUES ({first}, 1, 'by-hand-1', 100, 'started', 'console', '2026-01-01T00:00:00Z'), \
                    ({second}, 1, 'by-hand-2', 100, 'unknown', 'console', '2026-01-01T00:00:00Z')"
        )).await;
        execute(&db, "UPDATE charge_attempts SET outcome = 'succeeded' WHERE idempotency_key = 'by-hand-1'").await;
        execute(&db, &format!("UPDATE charges SET state = 'charged' WHERE invoice_id = {first}")).await;
        execute(&db, &format!("UPDATE charges SET state = 'declined' WHERE invoice_id = {second}")).await;
        execute(&db, "UPDATE transfers SET state = 'paid' WHERE seq = 1").await;
        let counts = db.run_counts(run.id, 3).await.unwrap();
        let (_, first_amount) = &invoices[&first];
        assert_eq!(
            (counts.pending, counts.charged, counts.declined, counts.charged_minor),
            (8, 1, 1, *first_amount)
        );
        assert_eq!((counts.attempts, counts.unknown_attempts, counts.paid), (2, 1, 1));
        let top = db.top_charged_user(run.id).await.unwrap().unwrap();
        assert_eq!((top.0.as_str(), top.1), (invoices[&first].0.as_str(), 100));
        assert_eq!(db.check_run_tallies(run.id, 3).await.unwrap(), None);

        // A total that went wrong is found by the count, recounted, and agrees afterwards.
        execute(&db, &format!("UPDATE run_tallies SET charged_minor = charged_minor + 7 WHERE run_id = {}", run.id)).await;
        let problem = db.check_run_tallies(run.id, 3).await.unwrap().expect("the count finds the wrong total");
        assert!(problem.contains("disagree"), "{problem}");
        assert_eq!(db.run_counts(run.id, 3).await.unwrap().charged_minor, *first_amount);
        assert_eq!(db.check_run_tallies(run.id, 3).await.unwrap(), None);
    }
}

// The incident as it happened: a stale, duplicated job charges customers through the same
// provider account behind the product's back, straight at the provider with keys of its own.
// Nothing of it reaches the product's database; the guard that reads the provider's payments
// halts the run within 5 s of the first such charge, the people on call are paged once, the run
// adds no wrongful charge of its own, and the reconciliation lists each duplicate for repair.
on_both_databases! {
    async fn the_incident_from_outside_is_halted_within_five_seconds(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "200", &["--latency-ms", "20"]).await;
        settings(&db, serde_json::json!({ "workers": 4, "canary_size": 10, "rate_per_second": 100 })).await;
        let hook = support::receivers::WebhookReceiver::start(0, Duration::ZERO).await;
        let alerts = serde_json::json!({ "webhook_url": hook.url, "email": "oncall@test.example" });
        db.put_setting("alerts", &alerts, "test").await.unwrap();
        let week = approve(&test_db, &db).await;
        let mut run = sim.billing(&test_db.url).args(["run", "--week", &week]).spawn().unwrap();

        // Once the run has charged some passengers, the stale job charges them again, one every
        // 200 ms, until the run halts.
        let deadline = Instant::now() + Duration::from_secs(60);
        let charged = loop {
            let charged: Vec<(i64, String, i64)> = support::rows(&db, "SELECT i.id, i.user_id, i.total_minor FROM invoices i JOIN charges c ON c.invoice_id = i.id WHERE c.state = 'charged' ORDER BY i.id").await;
            if charged.len() >= 15 {
                break charged;
            }
            assert!(Instant::now() < deadline, "the run charged 15 invoices within a minute");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let mut outside = Vec::new();
        let mut first_at = None;
        let mut halted_at = None;
        for i in 0..50 {
            let (invoice, user, amount) = &charged[i % charged.len()];
            let key = format!("stale-job-{i}");
            outside.push(support::charge_outside(&db, &sim, (*invoice, user, *amount), &week, &key).await);
            first_at.get_or_insert_with(Instant::now);
            let wait = Instant::now() + Duration::from_millis(200);
            while Instant::now() < wait {
                if db.run_of_week(&week).await.unwrap().unwrap().control.as_str() == "halted" {
                    halted_at = Some(Instant::now());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if halted_at.is_some() {
                break;
            }
        }
        let first_at = first_at.unwrap();
        let run_now = db.run_of_week(&week).await.unwrap().unwrap();
        let halted_at = halted_at.unwrap_or_else(|| panic!("the run halted while the stale job charged: {run_now:?}"));
        let after = halted_at - first_at;
        println!("incident from outside: {} outside charges; halted {} ms after the first", outside.len(), after.as_millis());
        assert!(after <= Duration::from_secs(5), "halted {} ms after the first outside charge", after.as_millis());
        let status = tokio::time::timeout(Duration::from_secs(10), run.wait()).await.expect("billing run stopped").unwrap();
        assert_eq!(status.code(), Some(3));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        // The guard that lists the week's payments, or the sampling of the latest charges: both
        // read the provider.
        let reason = run.reason.clone().unwrap();
        assert!(reason.contains("second payment of invoice") || reason.contains("successful charges for it"), "{reason}");

        // The provider's ledger: apart from the stale job's, at most one charge per invoice, each of
        // its amount, and each one the product recorded.
        let (invoices, _) = frozen(&db, &week).await;
        let mut ours: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for e in sim.ledger().await.iter().filter(|e| e["kind"] == "charge") {
            if outside.iter().any(|pi| e["payment_intent"] == pi.as_str()) {
                continue;
            }
            let invoice: i64 = e["metadata"]["invoice_id"].as_str().unwrap().parse().unwrap();
            ours.entry(invoice).or_default().push(e["amount"].as_i64().unwrap());
        }
        for (invoice, amounts) in &ours {
            assert_eq!(amounts, &vec![invoices[invoice].1], "invoice {invoice}: the run charged it once");
        }
        assert!(ours.len() < invoices.len(), "the run stopped before charging everyone");
        let alerts = db.alerts(true, 10).await.unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!((alerts[0].kind, alerts[0].run_id), (app::model::alerts::AlertKind::RunHalted, Some(run.id)));
        let paged = hook.received();
        assert_eq!(paged.len(), 1, "the halting `billing run` sent the alert itself: {paged:?}");
        assert!(paged[0].body.contains("invoice"), "{}", paged[0].body);

        // The reconciliation finds every duplicate, for repair.
        let out = sim.billing(&test_db.url).args(["reconcile", "--week", &week]).output().await.unwrap();
        assert!(out.status.code().is_some_and(|c| c == 0 || c == 3), "{}", String::from_utf8_lossy(&out.stderr));
        let stray: Vec<(String,)> = support::rows(&db, "SELECT payment_intent FROM stray_charges ORDER BY payment_intent").await;
        let mut expected: Vec<(String,)> = outside.iter().map(|pi| (pi.clone(),)).collect();
        expected.sort();
        assert_eq!(stray, expected, "each duplicate is listed for repair");
    }
}

on_both_databases! {
    async fn a_scheduled_run_waits_at_the_approval_gate_unless_auto_approval_is_on(kind: Kind) {
        // A week without flagged anomalies: auto-approval approves it; a flagged week is left to
        // a person (the test below). Demo riders sometimes ride twice at once, depending on the
        // seed and the week: the first seed whose last week has nothing flagged is taken.
        let week = last_week();
        let mut clean = None;
        for seed in 1..=30 {
            let (test_db, db, sim) = setup_seeded(kind, "10", &seed.to_string(), &[]).await;
            let config = config_for(&test_db.url);
            let parsed = app::model::week::BillingWeek::parse(&week).unwrap();
            if server::preview::refresh(&db, &config, parsed).await.unwrap().flagged == 0 {
                clean = Some((test_db, db, sim, config));
                break;
            }
        }
        let (_test_db, db, _sim, config) = clean.expect("a demo seed with nothing flagged");
        // Due since midnight today (UTC), whatever day this runs on.
        let today = chrono::Utc::now().format("%a").to_string().to_lowercase();
        let mut schedule = serde_json::json!({ "enabled": true, "weekday": today, "time": "00:00", "auto_approve": false });
        db.put_setting("run_schedule", &schedule, "test").await.unwrap();
        db.put_setting("alerts", &serde_json::json!({ "not_started_after_minutes": 1 }), "test").await.unwrap();
        assert_eq!(server::run::schedule::tick(&db, &config).await.unwrap(), None, "no approval: the run waits");
        // Due since midnight: from a minute past it, the waiting run is an alert (once, however
        // many ticks see it).
        assert_eq!(server::run::schedule::tick(&db, &config).await.unwrap(), None);
        let since_midnight = chrono::Utc::now().time().signed_duration_since(chrono::NaiveTime::MIN);
        let alerts = db.alerts(true, 10).await.unwrap();
        if since_midnight > chrono::Duration::minutes(1) {
            assert_eq!(alerts.len(), 1, "{alerts:?}");
            assert_eq!(alerts[0].kind, app::model::alerts::AlertKind::RunNotStarted);
            assert_eq!(alerts[0].occurrences, 2);
            assert!(alerts[0].detail.contains("waiting for approval"), "{}", alerts[0].detail);
        } else {
            assert!(alerts.is_empty(), "not late yet: {alerts:?}");
        }
        let stored = db.stored_week(app::model::week::BillingWeek::parse(&week).unwrap()).await.unwrap().unwrap();
        assert_eq!(stored.status.as_str(), "previewed", "the preview is ready for the people at the gate");
        assert!(db.run_of_week(&week).await.unwrap().is_none());

        assert_eq!(stored.flagged, 0, "the premise: nothing flagged");
        schedule["auto_approve"] = serde_json::json!(true);
        db.put_setting("run_schedule", &schedule, "test").await.unwrap();
        let started = server::run::schedule::tick(&db, &config).await.unwrap();
        assert!(started.is_some());
        let stored = db.stored_week(app::model::week::BillingWeek::parse(&week).unwrap()).await.unwrap().unwrap();
        assert_eq!((stored.status.as_str(), stored.approved_by.as_deref()), ("approved", Some("scheduler")));
        assert_eq!(server::run::schedule::tick(&db, &config).await.unwrap(), None, "one run per week");
        assert_eq!(db.run_of_week(&week).await.unwrap().unwrap().id, started.unwrap());
    }
}

on_both_databases! {
    // Auto-approval never approves a week with flagged anomalies: the week waits for a person
    // and an alert says why at once.
    async fn auto_approval_leaves_a_flagged_week_to_a_person(kind: Kind) {
        let (test_db, db, _sim) = setup(kind, "10", &[]).await;
        let config = config_for(&test_db.url);
        let week = last_week();
        // Two rides of one passenger at the same time: an anomaly.
        let monday = app::model::week::BillingWeek::parse(&week).unwrap().monday();
        let at = monday.and_hms_opt(10, 0, 0).unwrap().and_utc() + chrono::Duration::days(2);
        for (id, driver) in [("twice-1", "d1"), ("twice-2", "d2")] {
            let ride = app::model::billing::Ride {
                ride_id: id.into(),
                driver_id: driver.into(),
                distance_m: 10_000,
                started_at: at,
                ended_at: at + chrono::Duration::minutes(30),
                seats: vec![app::model::billing::Seat { passenger_id: "p1".into(), attendance: app::model::pricing::Attendance::Completed }],
            };
            db.store_ride(&ride).await.unwrap();
        }
        let today = chrono::Utc::now().format("%a").to_string().to_lowercase();
        let schedule = serde_json::json!({ "enabled": true, "weekday": today, "time": "00:00", "auto_approve": true });
        db.put_setting("run_schedule", &schedule, "test").await.unwrap();
        assert_eq!(server::run::schedule::tick(&db, &config).await.unwrap(), None, "not approved, not started");
        let stored = db.stored_week(app::model::week::BillingWeek::parse(&week).unwrap()).await.unwrap().unwrap();
        assert!(stored.flagged > 0, "the week has flagged invoices");
        assert_eq!(stored.status.as_str(), "previewed");
        assert!(db.run_of_week(&week).await.unwrap().is_none());
        let alerts = db.alerts(true, 10).await.unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, app::model::alerts::AlertKind::RunNotStarted);
        assert!(alerts[0].detail.contains("flagged as anomalies"), "{}", alerts[0].detail);
    }

    async fn declined_invoices_are_retried_after_the_run_and_charged_once(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "10", &["--decline-rate", "1"]).await;
        settings(&db, serde_json::json!({ "decline_retry_seconds": 2, "max_attempts": 5 })).await;
        let week = approve(&test_db, &db).await;
        let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        let counts = db.run_counts(run.id, run.canary_size).await.unwrap();
        assert_eq!((run.phase.as_str(), counts.charged, counts.declined), ("completed", 0, counts.invoices), "every card declined");
        assert_eq!(counts.paid, counts.transfers, "drivers are paid all the same");

        // The cards work again; once the retry is due, running again charges every invoice once.
        let faults = reqwest::Client::new().put(format!("{}/sim/faults", sim.base)).json(&serde_json::json!({ "decline_rate": 0.0 })).send().await.unwrap();
        assert!(faults.status().is_success());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let counts = db.run_counts(run.id, run.canary_size).await.unwrap();
        assert_eq!((counts.charged, counts.declined), (counts.invoices, 0));
        assert_exactly_once(&db, &sim, &week).await;
    }
}

/// A provider that takes more than asked (the simulator's `overcharge_minor` fault) halts the
/// run at the first such charge, and the ledger records what it really took.
#[tokio::test]
async fn a_provider_taking_another_amount_halts_the_run() {
    let (test_db, db, sim) = setup(Kind::Sqlite, "20", &[]).await;
    let faults = reqwest::Client::new()
        .put(format!("{}/sim/faults", sim.base))
        .json(&serde_json::json!({ "overcharge_minor": 1 }))
        .send()
        .await
        .unwrap();
    assert!(faults.status().is_success(), "{}", faults.text().await.unwrap());
    settings(&db, serde_json::json!({ "workers": 1, "batch": 1 })).await;
    let week = approve(&test_db, &db).await;
    let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let run = db.run_of_week(&week).await.unwrap().unwrap();
    assert_eq!(run.control.as_str(), "halted");
    assert!(run.reason.as_deref().unwrap().contains("the provider took"), "{:?}", run.reason);
    let charges: Vec<i64> = sim
        .ledger()
        .await
        .iter()
        .filter(|e| e["kind"] == "charge")
        .map(|e| e["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(charges.len(), 1, "one worker, halted at the first wrong charge");
    let clearing = db.ledger_balance(&server::billing::ledger::Account::ProviderClearing).await.unwrap();
    assert_eq!(clearing, charges[0], "the ledger holds what the provider took");
}

/// The canary is checked against the provider's own records: a charge the ledger does not
/// explain (made outside the product, on the first passenger's customer, for their invoice)
/// halts the run before the rest of the week is charged.
#[tokio::test]
async fn a_charge_the_ledger_does_not_explain_halts_the_run_at_the_canary() {
    let (test_db, db, sim) = setup(Kind::Sqlite, "30", &[]).await;
    settings(&db, serde_json::json!({ "canary_size": 3, "workers": 1, "batch": 1 })).await;
    let week = approve(&test_db, &db).await;
    let (invoices, _) = frozen(&db, &week).await;
    let (&first_id, (first_user, first_amount)) =
        invoices.iter().min_by_key(|(_, (user, _))| user.clone()).unwrap();
    // The passenger's customer and card exist before the run, and someone charged them already.
    let http = reqwest::Client::new();
    let post = |path: &str, form: Vec<(&str, String)>| {
        http.post(format!("{}{path}", sim.base)).bearer_auth(support::SIM_KEY).form(&form).send()
    };
    let customer: Value =
        post("/v1/customers", vec![("name", first_user.clone())]).await.unwrap().json().await.unwrap();
    let customer = customer["id"].as_str().unwrap().to_owned();
    let pm: Value =
        post("/v1/payment_methods", vec![("type", "card".into()), ("card[token]", "tok_visa".into())])
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let pm = pm["id"].as_str().unwrap().to_owned();
    post(&format!("/v1/payment_methods/{pm}/attach"), vec![("customer", customer.clone())]).await.unwrap();
    let stray = post(
        "/v1/payment_intents",
        vec![
            ("amount", first_amount.to_string()),
            ("currency", "usd".into()),
            ("customer", customer.clone()),
            ("payment_method", pm.clone()),
            ("confirm", "true".into()),
            ("off_session", "true".into()),
            ("metadata[invoice_id]", first_id.to_string()),
            ("metadata[week]", week.clone()),
        ],
    )
    .await
    .unwrap();
    assert!(stray.status().is_success());
    db.save_provider_customer(first_user, &customer, &pm).await.unwrap();

    let out = sim.billing(&test_db.url).args(["run", "--week", &week]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let run = db.run_of_week(&week).await.unwrap().unwrap();
    assert_eq!((run.control.as_str(), run.phase.as_str()), ("halted", "canary"));
    let reason = run.reason.unwrap();
    // The canary's verification or the guard listing the week's payments, whichever looks
    // first: both read the provider.
    let canary = format!("invoice {first_id}: the provider holds 2 successful charges");
    let listed = format!("payment of invoice {first_id} that no attempt of the run made");
    let second = format!("second payment of invoice {first_id}");
    assert!(reason.contains(&canary) || reason.contains(&listed) || reason.contains(&second), "{reason}");
    let charges = sim.ledger().await.iter().filter(|e| e["kind"] == "charge").count();
    assert!(charges <= 4, "only the canary (and the stray charge) reached the provider: {charges}");
}

// The provider account is busy with more than the run: payments of other weeks (a retry of an
// older week, another product on the same account) go on beside it. A duplicate of this week's
// invoice followed at once by a burst of other payments is still found: the guard lists every
// second of the run whole, not only the newest pages (which the burst would fill), and the run
// halts on the duplicate.
on_both_databases! {
    async fn a_duplicate_buried_under_other_payments_still_halts_the_run(kind: Kind) {
        let (test_db, db, sim) = setup(kind, "300", &[]).await;
        settings(&db, serde_json::json!({ "workers": 2, "batch": 4, "canary_size": 5, "rate_per_second": 20 })).await;
        let week = approve(&test_db, &db).await;
        let mut run = sim.billing(&test_db.url).args(["run", "--week", &week]).spawn().unwrap();
        let charged: Vec<(i64, String, i64)> = support::eventually(Duration::from_secs(60), || async {
            let charged: Vec<(i64, String, i64)> = support::rows(&db, "SELECT i.id, i.user_id, i.total_minor FROM invoices i JOIN charges c ON c.invoice_id = i.id WHERE c.state = 'charged' ORDER BY c.seq").await;
            if charged.len() >= 20 { Ok(charged) } else { Err(format!("{} charged", charged.len())) }
        })
        .await;
        // The duplicate: of the first invoice charged (not among the latest few the run samples).
        let (invoice, user, amount) = &charged[0];
        let duplicate = support::charge_outside(&db, &sim, (*invoice, user, *amount), &week, "stale-job-1").await;
        // At once, 300 payments of another week on the same customers: three pages newer than it.
        let other = futures::future::join_all(charged.iter().cycle().take(300).enumerate().map(|(i, (invoice, user, amount))| {
            let (db, sim) = (&db, &sim);
            async move { support::charge_outside(db, sim, (*invoice, user, *amount), "2020-W01", &format!("other-week-{i}")).await }
        }))
        .await;
        assert_eq!(other.len(), 300);
        let status = tokio::time::timeout(Duration::from_secs(60), run.wait()).await.expect("billing run stopped").unwrap();
        assert_eq!(status.code(), Some(3), "the run halted");
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        let reason = run.reason.clone().unwrap_or_default();
        assert_eq!(run.control.as_str(), "halted", "{run:?}");
        assert!(reason.contains(&format!("second payment of invoice {invoice}")) && reason.contains(&duplicate), "{reason}");
    }
}

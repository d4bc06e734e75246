//! The chaos suite: real `billing run` processes (three at once, one killed with SIGKILL at a
//! seeded moment and restarted) against `billing psp-sim` injecting timeouts after the charge,
//! 5xx and 429 errors, ambiguous answers (408, 424, an HTML page, a reset) and declines, on
//! SQLite and PostgreSQL, over several seeds. In half the seeds every process is killed and the
//! run resumed a day later: the simulator's clock moves 25 hours (it forgets every key) and so
//! do the attempts' (the product's clock). Afterwards the
//! simulator's own ledger is compared with the frozen week and the product's ledger: every
//! invoice charged at most once and exactly its amount (exactly once unless every attempt was
//! declined), every driver paid exactly once, the books balanced.
//!
//! `CHAOS_SEEDS=N` runs N seeds per database (default 3); a failure names its seed, and
//! `CHAOS_SEED=S` replays one.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use server::db::Db;
use support::{Kind, PspSim, TestDb};

fn last_week() -> String {
    app::model::week::BillingWeek::containing(chrono::Utc::now(), chrono_tz::Tz::UTC).previous().to_string()
}

fn seeds() -> Vec<u64> {
    if let Ok(seed) = std::env::var("CHAOS_SEED") {
        return vec![seed.parse().expect("CHAOS_SEED is a number")];
    }
    let n: u64 = std::env::var("CHAOS_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    (1..=n).collect()
}

/// What one seeded run went through, for the report.
#[derive(Debug, Default)]
struct Survived {
    timeouts_after_charge: usize,
    declines: usize,
    charges: usize,
    kills: usize,
    clock_jumps: usize,
}

async fn rows(db: &Db, sql: &str, week: &str) -> Vec<(i64, String, i64, String)> {
    match db {
        Db::Sqlite(p) => sqlx::query_as(sql).bind(week).fetch_all(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(sql).bind(week).fetch_all(p).await.unwrap(),
    }
}

async fn one_seed(kind: Kind, seed: u64) -> Survived {
    let (test_db, db) = TestDb::migrated(kind).await;
    let sim = PspSim::start(&[
        "--seed",
        &seed.to_string(),
        "--latency-ms",
        "5",
        "--timeout-after-charge",
        "0.05",
        "--hang-ms",
        "1500",
        "--error-rate",
        "0.08",
        "--decline-rate",
        "0.05",
        "--ambiguous-rate",
        "0.05",
    ])
    .await;
    let out = sim
        .billing(&test_db.url)
        .args([
            "demo-data",
            "--passengers",
            "40",
            "--drivers",
            "5",
            "--weeks",
            "1",
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "seed {seed}: {}", String::from_utf8_lossy(&out.stderr));
    db.put_setting(
        "run_settings",
        &json!({
            "canary_size": 5, "workers": 3, "batch": 4, "lease_seconds": 2, "provider_timeout_seconds": 1,
            "unknown_retry_seconds": 0, "decline_retry_seconds": 0, "max_attempts": 3,
            // Injected faults are expected here: the failure-rate guard would (rightly) halt.
            "failure_rate_pct": 100
        }),
        "chaos",
    )
    .await
    .unwrap();
    // Receipts are written with the charges: under kills and retries, one per charged invoice.
    db.put_setting("alerts", &json!({ "customer_notices": true }), "chaos").await.unwrap();
    let week = last_week();
    let approve =
        sim.billing(&test_db.url).args(["run", "--week", &week, "--approve", "--workers", "1"]).spawn();
    // Let the approving process start the run, then add two more and kill one at a seeded moment.
    let mut first = approve.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.run_of_week(&week).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "seed {seed}: no run started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut others: Vec<_> =
        (0..2).map(|_| sim.billing(&test_db.url).args(["run", "--week", &week]).spawn().unwrap()).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    tokio::time::sleep(Duration::from_millis(rng.random_range(100..1500))).await;
    let mut survived = Survived::default();
    if first.try_wait().unwrap().is_none() {
        first.kill().await.unwrap();
        survived.kills += 1;
    }
    if rng.random_bool(0.5) {
        // Every process dies; the run is resumed a day later.
        for other in &mut others {
            if other.try_wait().unwrap().is_none() {
                other.kill().await.unwrap();
                survived.kills += 1;
            }
        }
        // Answers the simulator still holds are given (or dropped) first.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        let moved = reqwest::Client::new()
            .post(format!("{}/sim/clock", sim.base))
            .json(&json!({ "advance_seconds": 25 * 3600 }))
            .send()
            .await
            .unwrap();
        assert!(moved.status().is_success(), "seed {seed}: the simulator's clock moved");
        support::age_attempts(&db, 25).await;
        survived.clock_jumps += 1;
    }
    let restarted = sim.billing(&test_db.url).args(["run", "--week", &week]).output();
    let (restarted, _) = tokio::join!(restarted, async {
        for other in &mut others {
            let _ = tokio::time::timeout(Duration::from_secs(120), other.wait()).await;
        }
    });
    let restarted = restarted.unwrap();
    let run = db.run_of_week(&week).await.unwrap().unwrap();
    assert_eq!(
        (run.phase.as_str(), run.control.as_str()),
        ("completed", "running"),
        "seed {seed}: the run did not complete ({} / {}): {:?}; the restarted process ended with {}; stderr: {}; stdout (end): {}",
        run.phase,
        run.control,
        run.reason,
        restarted.status,
        String::from_utf8_lossy(&restarted.stderr),
        String::from_utf8_lossy(&restarted.stdout).lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    );

    // The provider's ledger against the frozen week and the product's states.
    let invoices = rows(
        &db,
        "SELECT i.id, i.user_id, i.total_minor, c.state FROM invoices i JOIN charges c ON c.invoice_id = i.id WHERE i.week = $1",
        &week,
    )
    .await;
    let payouts = rows(
        &db,
        "SELECT p.id, p.driver_id, p.total_minor, t.state FROM payouts p JOIN transfers t ON t.payout_id = p.id WHERE p.week = $1 AND p.total_minor > 0",
        &week,
    )
    .await;
    let entries: Vec<Value> = sim.ledger().await;
    let mut charges: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut transfers: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for e in &entries {
        let id = |key: &str| e["metadata"][key].as_str().and_then(|v| v.parse::<i64>().ok());
        match e["kind"].as_str() {
            Some("charge") => {
                charges.entry(id("invoice_id").unwrap()).or_default().push(e["amount"].as_i64().unwrap())
            }
            Some("transfer") => {
                transfers.entry(id("payout_id").unwrap()).or_default().push(e["amount"].as_i64().unwrap())
            }
            Some("decline") => survived.declines += 1,
            _ => {}
        }
    }
    for (id, user, amount, state) in &invoices {
        let made = charges.get(id).cloned().unwrap_or_default();
        match state.as_str() {
            "charged" => {
                assert_eq!(made, vec![*amount], "seed {seed}: invoice {id} of {user} charged exactly once")
            }
            _ => assert!(
                made.is_empty(),
                "seed {seed}: invoice {id} is {state} but the provider charged it {made:?}"
            ),
        }
    }
    for (id, driver, amount, state) in &payouts {
        assert_eq!(state, "paid", "seed {seed}: payout {id} of {driver}");
        assert_eq!(
            transfers.get(id),
            Some(&vec![*amount]),
            "seed {seed}: payout {id} of {driver} paid exactly once"
        );
    }
    assert_eq!(
        charges.len(),
        invoices.iter().filter(|i| i.3 == "charged").count(),
        "seed {seed}: no stray charge"
    );
    let (_, unbalanced) = db.ledger_check().await.unwrap();
    assert!(unbalanced.is_empty(), "seed {seed}: unbalanced ledger transactions {unbalanced:?}");
    assert_eq!(
        db.check_run_tallies(run.id, run.canary_size).await.unwrap(),
        None,
        "seed {seed}: the run's running totals agree with a count of its rows"
    );
    let receipts = rows(
        &db,
        "SELECT o.subject_id, o.user_id, CAST(0 AS BIGINT), o.kind FROM outbox o JOIN invoices i ON i.id = o.subject_id \
         WHERE o.kind = 'receipt' AND i.week = $1",
        &week,
    )
    .await;
    let mut receipted: Vec<i64> = receipts.iter().map(|r| r.0).collect();
    receipted.sort();
    let mut charged_ids: Vec<i64> = invoices.iter().filter(|i| i.3 == "charged").map(|i| i.0).collect();
    charged_ids.sort();
    assert_eq!(receipted, charged_ids, "seed {seed}: one receipt per charged invoice, none for the others");
    assert!(
        db.alerts(true, 10).await.unwrap().is_empty(),
        "seed {seed}: a run that completed raised no alert"
    );
    let charged: i64 = invoices.iter().filter(|i| i.3 == "charged").map(|i| i.2).sum();
    let paid: i64 = payouts.iter().map(|p| p.2).sum();
    let clearing = db.ledger_balance(&server::billing::ledger::Account::ProviderClearing).await.unwrap();
    assert_eq!(clearing, charged - paid, "seed {seed}: the product's books equal the provider's movements");
    // Charges whose first answer was a timeout, an error or nothing readable, settled later by
    // asking again with the same key.
    let resolved = "SELECT COUNT(*) FROM charge_attempts WHERE outcome = 'succeeded' AND detail IS NOT NULL";
    let unknown: i64 = match &db {
        Db::Sqlite(p) => sqlx::query_scalar(resolved).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(resolved).fetch_one(p).await.unwrap(),
    };
    survived.timeouts_after_charge = unknown as usize;
    survived.charges = charges.len();
    survived
}

on_both_databases! {
    async fn every_invoice_is_charged_at_most_once_whatever_goes_wrong(kind: Kind) {
        let mut total = Survived::default();
        let seeds = seeds();
        for &seed in &seeds {
            let s = one_seed(kind, seed).await;
            total.timeouts_after_charge += s.timeouts_after_charge;
            total.declines += s.declines;
            total.charges += s.charges;
            total.kills += s.kills;
            total.clock_jumps += s.clock_jumps;
        }
        println!(
            "chaos {kind:?}: {} seeded runs, {} charges checked, {} SIGKILLs, {} runs resumed a day later, {} declines, {} charges first answered by a timeout, an error or an ambiguous answer and settled with the same key or a lookup",
            seeds.len(), total.charges, total.kills, total.clock_jumps, total.declines, total.timeouts_after_charge
        );
    }
}

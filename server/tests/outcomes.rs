//! An attempt's outcome only moves forward, on each database: every pair of (outcome recorded,
//! outcome arriving later) is tried through the statements the run records outcomes with. A
//! success is final (a timeout written after the webhook recorded the success leaves it
//! succeeded, and the item charged); a refusal closes only an attempt still open; the provider's
//! word that money moved always wins. And a run whose provider answers one call in ten that moved
//! money with something that does not say so (408, 424, an HTML page, a reset) moves no money
//! twice.

mod support;

use std::collections::BTreeMap;

use server::db::runs::{Claimed, Work};
use server::db::Db;

/// An outcome as the run records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum To {
    Succeeded,
    Declined,
    Failed,
    Unknown,
}

impl To {
    fn word(self) -> &'static str {
        match self {
            To::Succeeded => "succeeded",
            To::Declined => "declined",
            To::Failed => "failed",
            To::Unknown => "unknown",
        }
    }
}

async fn record(db: &Db, work: Work, item: &Claimed, key: &str, to: To) {
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    match to {
        To::Succeeded => {
            db.record_success(work, item.id, key, &format!("obj_{}", item.id), None).await.unwrap();
        }
        To::Declined | To::Failed => {
            db.record_refusal(work, item.id, key, to.word(), "refused", later, 3).await.unwrap();
        }
        To::Unknown => db.record_unknown(work, item.id, key, "no answer", later).await.unwrap(),
    }
}

/// What an attempt recorded as `from` becomes when `to` arrives: succeeded is final, the other
/// closed outcomes move only to succeeded, an open attempt takes anything.
fn expected(from: Option<To>, to: To) -> &'static str {
    match (from, to) {
        (Some(To::Succeeded), _) => "succeeded",
        (Some(closed @ (To::Declined | To::Failed)), to) if to != To::Succeeded => closed.word(),
        (_, to) => to.word(),
    }
}

on_both_databases! {
    async fn an_attempts_outcome_only_moves_forward(kind: Kind) {
        let (test_db, db) = support::TestDb::migrated(kind).await;
        let out = support::billing()
            .env("DATABASE_URL", &test_db.url)
            .args(["demo-data", "--passengers", "40", "--drivers", "30", "--weeks", "1", "--seed", "8"])
            .output()
            .await
            .unwrap();
        assert!(out.status.success());
        let config = server::config::Config::from_lookup(|_| None).unwrap();
        let week = app::model::week::BillingWeek::parse(&support::last_week()).unwrap();
        let stored = server::preview::refresh(&db, &config, week).await.unwrap();
        let actor = server::db::audit::Actor::cli();
        server::preview::approve(&db, &config, &actor, week, &stored.content_hash).await.unwrap();
        let run = db.start_run(week, &server::db::audit::Actor::cli(), 0).await.unwrap();

        // Charges: every outcome; transfers: no decline (a transfer is refused or made).
        let lease = chrono::Duration::seconds(60);
        for (work, table, attempts, id, done, closed) in [
            (Work::Charge, "charges", "charge_attempts", "invoice_id", "charged", vec![To::Declined, To::Failed]),
            (Work::Transfer, "transfers", "transfer_attempts", "payout_id", "paid", vec![To::Failed]),
        ] {
            let mut froms = vec![None, Some(To::Unknown), Some(To::Succeeded)];
            froms.extend(closed.iter().map(|c| Some(*c)));
            let mut tos = vec![To::Succeeded, To::Unknown];
            tos.extend(closed.iter().copied());
            for from in &froms {
                for to in &tos {
                    let (from, to) = (*from, *to);
                    let items = db.claim(work, run.id, "outcomes", i64::MAX, 1, lease).await.unwrap();
                    let item = items.into_iter().next().expect("an item left to try");
                    let attempt = db.begin_attempt(work, &week.to_string(), item.id, item.amount_minor, "outcomes").await.unwrap();
                    if let Some(from) = from {
                        record(&db, work, &item, &attempt.key, from).await;
                    }
                    record(&db, work, &item, &attempt.key, to).await;
                    let sql = format!("SELECT outcome FROM {attempts} WHERE idempotency_key = '{}'", attempt.key);
                    let outcome: Vec<(String,)> = support::rows(&db, &sql).await;
                    assert_eq!(outcome[0].0, expected(from, to), "{work:?}: {from:?} then {to:?}");
                    // A succeeded attempt's item stays settled whatever arrives after.
                    if from == Some(To::Succeeded) || to == To::Succeeded {
                        let state: Vec<(String,)> = support::rows(&db, &format!("SELECT state FROM {table} WHERE {id} = {}", item.id)).await;
                        assert_eq!(state[0].0, done, "{work:?}: {from:?} then {to:?}");
                    }
                    // Leave nothing to claim again for the next pair.
                    db.release(work, item.id, "outcomes").await.unwrap();
                    let give_up = if work == Work::Charge { "uncollectible" } else { "failed" };
                    support::execute(&db, &format!("UPDATE {table} SET state = '{give_up}' WHERE {id} = {} AND state <> '{done}'", item.id)).await;
                }
            }
        }
    }
}

/// Successful payments of each invoice and transfers of each payout, from the simulator's ledger.
async fn movements(sim: &support::PspSim) -> (BTreeMap<i64, usize>, BTreeMap<i64, usize>) {
    let (mut charges, mut transfers) = (BTreeMap::new(), BTreeMap::new());
    for e in sim.ledger().await {
        let id = |key: &str| e["metadata"][key].as_str().and_then(|v| v.parse::<i64>().ok()).unwrap();
        match e["kind"].as_str() {
            Some("charge") => *charges.entry(id("invoice_id")).or_default() += 1,
            Some("transfer") => *transfers.entry(id("payout_id")).or_default() += 1,
            _ => {}
        }
    }
    (charges, transfers)
}

on_both_databases! {
    // One answer in ten to a call that moved money does not say so: a 408, a 424, a proxy's
    // HTML page, a connection reset mid-answer. Each leaves the attempt open, asked again with
    // the same key: every invoice charged once and every driver paid once, by the provider's
    // own ledger.
    async fn ambiguous_answers_never_move_money_twice(kind: Kind) {
        let (test_db, db) = support::TestDb::migrated(kind).await;
        let sim = support::PspSim::start(&["--ambiguous-rate", "0.1", "--seed", "7"]).await;
        db.put_setting(
            "run_settings",
            &serde_json::json!({ "canary_size": 5, "unknown_retry_seconds": 0, "failure_rate_pct": 100, "provider_timeout_seconds": 2 }),
            "test",
        )
        .await
        .unwrap();
        let week = support::last_week();
        for args in [
            vec!["demo-data", "--passengers", "60", "--drivers", "6", "--weeks", "1", "--seed", "2"],
            vec!["run", "--week", &week, "--approve"],
        ] {
            let out = sim.billing(&test_db.url).args(&args).output().await.unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let (charges, transfers) = movements(&sim).await;
        let invoices: Vec<(i64, String)> = support::rows(&db, "SELECT invoice_id, state FROM charges").await;
        let payouts: Vec<(i64,)> = support::rows(&db, "SELECT t.payout_id FROM transfers t JOIN payouts p ON p.id = t.payout_id WHERE p.total_minor > 0").await;
        for (id, state) in &invoices {
            assert_eq!(state, "charged", "invoice {id}");
            assert_eq!(charges.get(id), Some(&1), "invoice {id} charged once");
        }
        for (id,) in &payouts {
            assert_eq!(transfers.get(id), Some(&1), "payout {id} paid once");
        }
        assert_eq!((charges.len(), transfers.len()), (invoices.len(), payouts.len()), "nothing else moved");
        // The faults did happen: attempts that first heard one of those answers, settled later
        // under the same key.
        let (ambiguous,): (i64,) = support::rows(&db, "SELECT COUNT(*) FROM charge_attempts WHERE outcome = 'succeeded' AND detail IS NOT NULL").await[0];
        assert!(ambiguous > 0, "some answers were ambiguous");
    }
}

on_both_databases! {
    // A refund's attempts follow the same rule, through the statements the refund worker records
    // with: a success is final (and the refund stays succeeded), a refusal or an unknown closes
    // or keeps open only an attempt still open, and the provider's word that money moved wins.
    async fn a_refund_attempts_outcome_only_moves_forward(kind: Kind) {
        let support::Charged { app, sim: _sim } = support::charged_week(kind, &[]).await;
        let support::StaffedServer { test_db: _test_db, db, server } = app;
        // Nobody else records anything meanwhile.
        server.terminate().await;
        let charged: Vec<(i64, String, i64)> = support::rows(&db, "SELECT invoice_id, user_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY amount_minor DESC").await;
        let (invoice, user, amount) = charged[0].clone();
        assert!(amount >= 12, "one minor unit per pair");
        let actor = server::db::audit::Actor::cli();
        let lease = chrono::Duration::seconds(60);
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let froms = [None, Some(To::Unknown), Some(To::Succeeded), Some(To::Failed)];
        let tos = [To::Succeeded, To::Unknown, To::Failed];
        for (n, (from, to)) in froms.iter().flat_map(|f| tos.iter().map(move |t| (*f, *t))).enumerate() {
            let new = server::db::refunds::RefundInsert {
                request_id: format!("pair-{n}"),
                invoice_id: invoice,
                user_id: user.clone(),
                amount_minor: 1,
                currency: "USD".into(),
                reason: "other",
                note: "outcome pairs".into(),
                lines: String::new(),
                requested_by: actor.name.clone(),
                requested_by_id: None,
                limits: None,
                audit: server::db::audit::NewAuditEntry::new(&actor, "refund.request", "invoice", invoice),
            };
            let server::db::refunds::Inserted::Created(refund) = db.insert_refund(&new).await.unwrap() else {
                panic!("pair {n}: the refund was written");
            };
            let claim = db.claim_refund(refund.id, "outcomes", lease, true).await.unwrap().expect("claimed");
            let ledger = server::refunds::ledger_of(&claim.refund).unwrap();
            for step in from.into_iter().chain([to]) {
                match step {
                    To::Succeeded => db.refund_succeeded(&claim, &format!("re_{n}"), &ledger).await.unwrap(),
                    To::Failed => db.refund_not_done(&claim, true, "refused", later).await.unwrap(),
                    To::Unknown => db.refund_not_done(&claim, false, "no answer", later).await.unwrap(),
                    To::Declined => unreachable!("a refund is not declined"),
                }
            }
            let outcome: Vec<(String,)> = support::rows(&db, &format!("SELECT outcome FROM refund_attempts WHERE refund_id = {}", refund.id)).await;
            assert_eq!(outcome, vec![(expected(from, to).to_owned(),)], "refund: {from:?} then {to:?}");
            if from == Some(To::Succeeded) || to == To::Succeeded {
                let state: Vec<(String,)> = support::rows(&db, &format!("SELECT state FROM refunds WHERE id = {}", refund.id)).await;
                assert_eq!(state, vec![("succeeded".to_owned(),)], "refund: {from:?} then {to:?}");
            }
        }
    }
}

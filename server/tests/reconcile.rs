//! Reconciliation with the provider, on each database, against `billing psp-sim` as a process:
//! after a run everything matches; charges an old system made a second time (its own keys, as in
//! the incident) are found exactly, each naming the user and invoice; the approved repair refunds
//! exactly those, once, through the refund path and into the ledger; approving again changes
//! nothing; a second reconciliation finds nothing.

mod support;

use std::time::{Duration, Instant};

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::billing::ledger::Account;
use support::{charged_week, email_of, last_week, rows, Charged};

on_both_databases! {
    async fn reconciliation_finds_the_duplicates_and_the_repair_refunds_them_once(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &[]).await;
        let week = last_week();
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let get = |path: String| http.get(app.url(&path)).bearer_auth(&finance).send();

        // The run reconciled itself when it completed: everything matched.
        let after_run: Value = get(format!("/api/v1/reconciliations/{week}")).await.unwrap().json().await.unwrap();
        assert_eq!(after_run["unmatched"], 0, "{after_run}");
        assert_eq!(after_run["ran_by"], "system");
        let charged: Vec<(i64, String, i64)> = rows(&app.db, "SELECT invoice_id, user_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY invoice_id").await;
        let transfers: Vec<(i64,)> = rows(&app.db, "SELECT payout_id FROM transfers WHERE state = 'paid'").await;
        assert_eq!(after_run["matched"].as_i64().unwrap() as usize, charged.len() + transfers.len());

        // An old system charges three passengers again, with keys of its own.
        let mut duplicates = Vec::new();
        for (i, (invoice, user, amount)) in charged.iter().take(3).enumerate() {
            let intent = support::charge_outside(&app.db, &sim, (*invoice, user, *amount), &week, &format!("old-system-{i}")).await;
            duplicates.push((intent, *invoice, user.clone(), *amount));
        }

        let found: Value = http.post(app.url(&format!("/api/v1/reconciliations/{week}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["unmatched"], 3, "{found}");
        // Finance is alerted in the same transaction that stored the reconciliation.
        let alerts = app.db.alerts(true, 10).await.unwrap();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!((alerts[0].kind, alerts[0].week.as_deref()), (app::model::alerts::AlertKind::Reconciliation, Some(week.as_str())));
        // From here on customers are told of their refunds.
        app.db.put_setting("alerts", &serde_json::json!({ "customer_notices": true }), "test").await.unwrap();
        let mut items: Vec<(String, String, i64, String)> = found["items"].as_array().unwrap().iter().map(|i| {
            assert_eq!(i["kind"], "charge");
            (i["class"].as_str().unwrap().to_owned(), i["provider_id"].as_str().unwrap().to_owned(), i["invoice_id"].as_i64().unwrap(), i["user_id"].as_str().unwrap().to_owned())
        }).collect();
        items.sort();
        let mut expected: Vec<(String, String, i64, String)> = duplicates.iter().map(|(pi, invoice, user, _)| ("provider_only".to_owned(), pi.clone(), *invoice, user.clone())).collect();
        expected.sort();
        assert_eq!(items, expected, "exactly the duplicates, each naming its user and invoice");
        assert_eq!(found["stray"].as_array().unwrap().len(), 3);

        // The CLI says the same and exits 3.
        let out = sim.billing(&app.test_db.url).args(["reconcile", "--week", &week]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        for (pi, ..) in &duplicates {
            assert!(printed.contains(pi.as_str()), "{printed}");
        }
        // And as the contract's JSON, with the same exit code.
        let out = sim.billing(&app.test_db.url).args(["reconcile", "--week", &week, "--format", "json"]).output().await.unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!((printed["week"].as_str(), printed["matched"].as_i64()), (Some(week.as_str()), found["matched"].as_i64()), "{printed}");
        let mut unexplained: Vec<String> = printed["unexplained"].as_array().unwrap().iter().map(|i| i["provider_id"].as_str().unwrap().to_owned()).collect();
        unexplained.sort();
        let mut intents: Vec<String> = duplicates.iter().map(|d| d.0.clone()).collect();
        intents.sort();
        assert_eq!(unexplained, intents, "{printed}");
        assert_eq!((printed["missing"].as_array().map(Vec::len), printed["mismatched"].as_array().map(Vec::len)), (Some(0), Some(0)), "{printed}");

        // The repair is approved as reviewed: all three, or nothing.
        let repair = |list: Vec<String>| http.post(app.url(&format!("/api/v1/reconciliations/{week}/repair"))).bearer_auth(&finance).json(&json!({ "payment_intents": list })).send();
        let partial = repair(vec![duplicates[0].0.clone()]).await.unwrap();
        assert_eq!(partial.status(), StatusCode::CONFLICT);
        let unknown = repair(vec!["pi_nobody".into()]).await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let all: Vec<String> = duplicates.iter().map(|d| d.0.clone()).collect();
        let support_token = app.token_for(&email_of(Role::Support)).await;
        let refused = http.post(app.url(&format!("/api/v1/reconciliations/{week}/repair"))).bearer_auth(&support_token).json(&json!({ "payment_intents": all })).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(sim.ledger().await.iter().all(|e| e["kind"] != "refund"), "nothing refunded by refused requests");
        let repaired = repair(all.clone()).await.unwrap();
        assert_eq!(repaired.status(), StatusCode::OK);

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let open: Vec<(i64,)> = rows(&app.db, "SELECT id FROM refunds WHERE state <> 'succeeded'").await;
            if open.is_empty() { break; }
            assert!(Instant::now() < deadline, "repair refunds {open:?} never finished");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let refunds_at_provider = || async {
            sim.ledger().await.into_iter().filter(|e| e["kind"] == "refund").map(|e| (e["payment_intent"].as_str().map(str::to_owned), e["amount"].as_i64().unwrap())).collect::<Vec<_>>()
        };
        let mut made = refunds_at_provider().await;
        made.sort();
        let mut wanted: Vec<(Option<String>, i64)> = duplicates.iter().map(|(pi, _, _, amount)| (Some(pi.clone()), *amount)).collect();
        wanted.sort();
        assert_eq!(made, wanted, "exactly the duplicates refunded, each once, in full");

        // The invoice lists the repair, but its own charge was not refunded.
        let (_, first_invoice, _, _) = &duplicates[0];
        let record: Value = get(format!("/api/v1/invoices/{first_invoice}")).await.unwrap().json().await.unwrap();
        assert_eq!(record["refunds"][0]["kind"], "repair");
        assert_eq!(record["refunded"]["amount"], "0.00", "a repair is not a refund of the invoice's charge");

        // Approving again changes nothing.
        let again = repair(all.clone()).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(refunds_at_provider().await.len(), 3);
        let notices: Vec<(String, String)> = support::rows(&app.db, "SELECT kind, recipient FROM outbox WHERE kind = 'refund'").await;
        assert_eq!(notices.len(), 3, "one refund notice per repaired customer: {notices:?}");

        // A second reconciliation finds nothing; the books balance and match the provider.
        let clean: Value = http.post(app.url(&format!("/api/v1/reconciliations/{week}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(clean["unmatched"], 0, "{clean}");
        let (_, unbalanced) = app.db.ledger_check().await.unwrap();
        assert!(unbalanced.is_empty());
        assert_eq!(app.db.ledger_balance(&Account::UnexplainedCharges).await.unwrap(), 0, "recorded and given back");
        let provider_net: i64 = sim.ledger().await.iter().map(|e| match e["kind"].as_str().unwrap() {
            "charge" => e["amount"].as_i64().unwrap(),
            "refund" | "transfer" => -e["amount"].as_i64().unwrap(),
            _ => 0,
        }).sum();
        assert_eq!(app.db.ledger_balance(&Account::ProviderClearing).await.unwrap(), provider_net, "the ledger holds what the provider holds");
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        assert_eq!(audit.entries.iter().filter(|e| e.action == "reconcile.repair").count(), 3);

        // The earlier mismatch stays until acknowledged? The latest is clean, so nothing is open.
        assert!(app.db.open_mismatches().await.unwrap().is_empty());
    }

    async fn repair_leaves_a_charge_alone_while_its_invoice_waits_for_an_outcome(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &[]).await;
        let week = last_week();
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let charged: Vec<(i64, String, i64)> = rows(&app.db, "SELECT invoice_id, user_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY invoice_id").await;
        let (invoice, user, amount) = charged[0].clone();
        // A charge of the invoice made outside the product, while an attempt of the invoice
        // has no known outcome (a retry of it is still to ask the provider).
        let pi = support::charge_outside(&app.db, &sim, (invoice, &user, amount), &week, "outside-1").await;
        support::execute(&app.db, &format!(
            "INSERT INTO charge_attempts (invoice_id, attempt, idempotency_key, amount_minor, outcome, worker, started_at) \
             VALUES ({invoice}, 99, 'charge:{week}:invoice-{invoice}:attempt-99', {amount}, 'unknown', 'test', '2026-01-01T00:00:00Z')"
        )).await;

        let found: Value = http.post(app.url(&format!("/api/v1/reconciliations/{week}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["stray"][0]["payment_intent"], pi.as_str(), "{found}");
        assert_eq!(found["stray"][0]["undecided"], true, "listed as waiting for an outcome: {found}");
        let repair = |list: Vec<String>| http.post(app.url(&format!("/api/v1/reconciliations/{week}/repair"))).bearer_auth(&finance).json(&json!({ "payment_intents": list })).send();
        let refused = repair(vec![pi.clone()]).await.unwrap();
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert!(refused.text().await.unwrap().contains("waits for an outcome"));
        assert!(sim.ledger().await.iter().all(|e| e["kind"] != "refund"), "nothing refunded while the outcome is unknown");

        // Once the attempt's outcome is known (nothing was made), the stray charge is repaired.
        support::execute(&app.db, &format!("UPDATE charge_attempts SET outcome = 'failed' WHERE invoice_id = {invoice} AND attempt = 99")).await;
        let found: Value = http.post(app.url(&format!("/api/v1/reconciliations/{week}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["stray"][0]["undecided"], false, "{found}");
        assert_eq!(repair(vec![pi.clone()]).await.unwrap().status(), StatusCode::OK);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !sim.ledger().await.iter().any(|e| e["kind"] == "refund") {
            assert!(Instant::now() < deadline, "the repair refund never went");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn an_amount_booked_otherwise_and_a_movement_the_provider_never_made_are_reported_by_class(kind: Kind) {
        let Charged { app, sim: _sim } = charged_week(kind, &[]).await;
        let week = last_week();
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let charged: Vec<(i64, String, i64)> = rows(&app.db, "SELECT invoice_id, user_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY invoice_id").await;
        let transfers: Vec<(i64,)> = rows(&app.db, "SELECT payout_id FROM transfers WHERE state = 'paid' ORDER BY payout_id").await;
        let (invoice, user, amount) = charged[0].clone();
        let payout = transfers[0].0;
        let intent: Vec<(String,)> = rows(&app.db, &format!("SELECT provider_id FROM charge_attempts WHERE invoice_id = {invoice} AND outcome = 'succeeded'")).await;
        let transfer: Vec<(String, String)> = rows(&app.db, &format!("SELECT provider_id, idempotency_key FROM transfer_attempts WHERE payout_id = {payout} AND outcome = 'succeeded'")).await;
        let (intent, (transfer, transfer_key)) = (intent[0].0.clone(), transfer[0].clone());

        // Someone books one charge a cent higher in the ledger, and renames one transfer to an
        // id the provider never made.
        support::execute(&app.db, &format!(
            "UPDATE ledger_postings SET amount_minor = amount_minor + 1 WHERE account = 'provider_clearing' \
             AND transaction_id = (SELECT id FROM ledger_transactions WHERE kind = 'charge' AND reference = 'invoice-{invoice}')"
        )).await;
        support::execute(&app.db, &format!("UPDATE transfer_attempts SET provider_id = 'tr_never_made' WHERE payout_id = {payout} AND outcome = 'succeeded'")).await;

        let found: Value = http.post(app.url(&format!("/api/v1/reconciliations/{week}"))).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(found["unmatched"], 3, "{found}");
        assert_eq!(found["matched"].as_i64().unwrap() as usize, charged.len() + transfers.len() - 2, "{found}");
        let mut items: Vec<(String, String, String, Value, Value, Value, Value)> = found["items"].as_array().unwrap().iter().map(|i| (
            i["class"].as_str().unwrap().to_owned(),
            i["kind"].as_str().unwrap().to_owned(),
            i["provider_id"].as_str().unwrap().to_owned(),
            i["provider_amount"]["amount"].clone(),
            i["ledger_amount"]["amount"].clone(),
            i["user_id"].clone(),
            i["attempt_key"].clone(),
        )).collect();
        items.sort_by(|a, b| (&a.0, &a.2).cmp(&(&b.0, &b.2)));
        let money = |minor: i64| json!(format!("{}.{:02}", minor / 100, minor % 100));
        let charge_key: Vec<(String,)> = rows(&app.db, &format!("SELECT idempotency_key FROM charge_attempts WHERE invoice_id = {invoice} AND outcome = 'succeeded'")).await;
        let moved: Vec<(i64,)> = rows(&app.db, &format!("SELECT amount_minor FROM transfers WHERE payout_id = {payout}")).await;
        let driver: Vec<(String,)> = rows(&app.db, &format!("SELECT driver_id FROM payouts WHERE id = {payout}")).await;
        assert_eq!(items, vec![
            ("amount_mismatch".into(), "charge".into(), intent, money(amount), money(amount + 1), json!(user), json!(charge_key[0].0)),
            ("ledger_only".into(), "transfer".into(), "tr_never_made".into(), Value::Null, money(moved[0].0), json!(driver[0].0), json!(transfer_key)),
            ("provider_only".into(), "transfer".into(), transfer, money(moved[0].0), Value::Null, json!(driver[0].0), Value::Null),
        ], "{found}");
        assert!(found["stray"].as_array().unwrap().is_empty(), "only charges the ledger does not explain are stray: {found}");
    }
}

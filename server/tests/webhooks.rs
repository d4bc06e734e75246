//! `POST /webhooks/stripe` over HTTP, on each database: a refund whose answer never came back
//! (the simulator holds it past the client's timeout) is recorded as succeeded when the
//! provider's signed event says so, once; a repeated event is a duplicate, a late event carrying
//! an older state moves nothing back; bad signatures, replays outside the window and unknown
//! types are answered as Stripe expects.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::psp::signature::sign;
use support::{charged_week_with, email_of, execute, rows, Charged};

const SECRET: &str = "whsec_product_test_secret";

async fn deliver(app: &support::StaffedServer, event: &Value, at: i64, secret: &str) -> (StatusCode, Value) {
    let body = event.to_string();
    let header = format!("t={at},v1={}", sign(secret, at, body.as_bytes()));
    let response = reqwest::Client::new()
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn refund_event(id: &str, refund: &str, status: &str, refund_id: i64) -> Value {
    json!({
        "id": id, "object": "event", "type": "refund.updated", "created": chrono::Utc::now().timestamp(),
        "data": { "object": { "id": refund, "object": "refund", "status": status, "metadata": { "refund_id": refund_id.to_string() } } }
    })
}

on_both_databases! {
    async fn a_refund_that_finished_later_is_recorded_from_its_signed_event_once(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &["--hang-ms", "3000"], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        // Every answer that moves money now arrives after the client gave up.
        let faults = reqwest::Client::new().put(format!("{}/sim/faults", sim.base)).json(&json!({ "timeout_after_charge": 1.0 })).send().await.unwrap();
        assert!(faults.status().is_success());
        let token = app.token_for(&email_of(Role::Finance)).await;
        let charged: Vec<(i64,)> = rows(&app.db, "SELECT invoice_id FROM charges WHERE state = 'charged' ORDER BY invoice_id LIMIT 1").await;
        let invoice = charged[0].0;
        let made: Value = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/invoices/{invoice}/refunds")))
            .bearer_auth(&token)
            .json(&json!({ "amount": "1.00", "reason": "duplicate", "request_id": "webhook-refund" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(made["refund"]["state"], "pending", "the answer did not come back: {made}");
        let refund_id = made["refund"]["id"].as_i64().unwrap();
        let at_provider = sim.ledger().await.into_iter().find(|e| e["kind"] == "refund").expect("the provider made it");
        let provider_refund = at_provider["id"].as_str().unwrap().to_owned();

        let now = chrono::Utc::now().timestamp();
        let succeeded = refund_event("evt_1", &provider_refund, "succeeded", refund_id);
        let (status, body) = deliver(&app, &succeeded, now, SECRET).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(["refund succeeded", "no change"].contains(&body["outcome"].as_str().unwrap()), "{body}");
        let state: Vec<(String, Option<String>)> = rows(&app.db, &format!("SELECT state, provider_id FROM refunds WHERE id = {refund_id}")).await;
        assert_eq!(state, vec![("succeeded".to_owned(), Some(provider_refund.clone()))]);

        // The same event again, and a late event with an older state: nothing changes.
        let (status, body) = deliver(&app, &succeeded, now, SECRET).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("duplicate")));
        let (status, body) = deliver(&app, &refund_event("evt_0", &provider_refund, "failed", refund_id), now, SECRET).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("no change")), "an older state never moves it back");
        // The worker asking again with the same key (the answer is replayed) changes nothing either.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let refunds: Vec<(i64,)> = rows(&app.db, &format!("SELECT id FROM ledger_transactions WHERE kind = 'refund' AND reference = 'refund-{refund_id}'")).await;
        assert_eq!(refunds.len(), 1, "one ledger transaction");
        assert_eq!(sim.ledger().await.iter().filter(|e| e["kind"] == "refund").count(), 1, "one refund at the provider");

        // Refusals.
        let (status, body) = deliver(&app, &refund_event("evt_2", "re_x", "succeeded", refund_id), now, "whsec_not_the_secret").await;
        assert_eq!((status, body["field"].as_str()), (StatusCode::BAD_REQUEST, Some("Stripe-Signature")), "{body}");
        let (status, body) = deliver(&app, &refund_event("evt_3", "re_x", "succeeded", refund_id), now - 600, SECRET).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"].as_str().unwrap().contains("window"), "{body}");
        let unsigned = reqwest::Client::new().post(app.url("/webhooks/stripe")).body("{}").send().await.unwrap();
        assert_eq!(unsigned.status(), StatusCode::BAD_REQUEST);
        let other = json!({ "id": "evt_4", "type": "customer.created", "created": now, "data": { "object": {} } });
        let (status, body) = deliver(&app, &other, now, SECRET).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("ignored")));
        let recorded: Vec<(String, String)> = rows(&app.db, "SELECT id, outcome FROM webhook_events ORDER BY id").await;
        let ids: Vec<&str> = recorded.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["evt_0", "evt_1", "evt_4"], "each accepted event once; refused ones not at all");
    }
}

on_both_databases! {
    async fn the_simulator_signs_its_events_as_stripe_does_and_the_product_takes_them_once(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        sim.send_webhooks_to(&app.url("/webhooks/stripe"), SECRET).await;
        let token = app.token_for(&email_of(Role::Finance)).await;
        let charged: Vec<(i64,)> = rows(&app.db, "SELECT invoice_id FROM charges WHERE state = 'charged' ORDER BY invoice_id LIMIT 1").await;
        let made: Value = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/invoices/{}/refunds", charged[0].0)))
            .bearer_auth(&token)
            .json(&json!({ "amount": "0.50", "reason": "requested_by_customer", "request_id": "hooked" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(made["refund"]["state"], "succeeded");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let events = loop {
            let events: Vec<(String, String)> = rows(&app.db, "SELECT type, outcome FROM webhook_events").await;
            if !events.is_empty() {
                break events;
            }
            assert!(std::time::Instant::now() < deadline, "the simulator's event never arrived");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "refund.created");
        assert!(["no change", "refund succeeded"].contains(&events[0].1.as_str()), "{events:?}");
        let refund_id = made["refund"]["id"].as_i64().unwrap();
        let ledger: Vec<(i64,)> = rows(&app.db, &format!("SELECT id FROM ledger_transactions WHERE kind = 'refund' AND reference = 'refund-{refund_id}'")).await;
        assert_eq!(ledger.len(), 1, "the call and the event record the refund once");
    }
}

on_both_databases! {
    async fn a_transfer_whose_answer_never_came_back_is_recorded_from_its_event(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        // As if the transfer's answer had been lost: the provider made it, the product does not
        // know (its attempt open, no ledger transaction).
        let transfer = sim.ledger().await.into_iter().find(|e| e["kind"] == "transfer").expect("a transfer");
        let payout: i64 = transfer["metadata"]["payout_id"].as_str().unwrap().parse().unwrap();
        execute(&app.db, &format!("UPDATE transfers SET state = 'pending' WHERE payout_id = {payout}")).await;
        execute(&app.db, &format!("UPDATE transfer_attempts SET outcome = 'unknown', provider_id = NULL, finished_at = NULL WHERE payout_id = {payout}")).await;
        execute(&app.db, &format!("DELETE FROM ledger_postings WHERE transaction_id IN (SELECT id FROM ledger_transactions WHERE kind = 'transfer' AND reference = 'payout-{payout}')")).await;
        execute(&app.db, &format!("DELETE FROM ledger_transactions WHERE kind = 'transfer' AND reference = 'payout-{payout}'")).await;

        let event = |id: &str| json!({
            "id": id, "type": "transfer.created", "created": chrono::Utc::now().timestamp(),
            "data": { "object": { "id": transfer["id"], "object": "transfer", "amount": transfer["amount"], "metadata": transfer["metadata"] } }
        });
        let now = chrono::Utc::now().timestamp();
        let (status, body) = deliver(&app, &event("evt_t1"), now, SECRET).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("transfer made")), "{body}");
        let state: Vec<(String,)> = rows(&app.db, &format!("SELECT state FROM transfers WHERE payout_id = {payout}")).await;
        assert_eq!(state[0].0, "paid");
        let (status, body) = deliver(&app, &event("evt_t2"), now, SECRET).await;
        assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("no change")), "a second event for it changes nothing");
        let ledger: Vec<(i64,)> = rows(&app.db, &format!("SELECT id FROM ledger_transactions WHERE kind = 'transfer' AND reference = 'payout-{payout}'")).await;
        assert_eq!(ledger.len(), 1);
        let (_, unbalanced) = app.db.ledger_check().await.unwrap();
        assert!(unbalanced.is_empty());
    }
}

//! The Stripe client against two Stripe-shaped servers: localstripe, an emulator no one here
//! wrote (PyPI, installed by `make test-tools`), and `billing psp-sim`, the product's own. The
//! same scenarios run against both: create a customer and a card, charge off-session, a decline,
//! a partial and a full refund, list the customer's charges. What localstripe cannot express is
//! checked against the simulator only, and says why:
//! - idempotency (localstripe ignores `Idempotency-Key`): a repeated key replays the first answer;
//! - refund caps (localstripe refunds beyond the charge): a refund past the charge is refused;
//! - transfers to connected accounts (localstripe has none);
//! - a refund's `reason` (localstripe refuses the parameter with 400 "Unexpected reason").
//!
//! Cards differ on purpose: localstripe takes test card numbers only, Stripe and the simulator
//! take test tokens (Stripe refuses raw numbers unless the account may send them).

mod support;

use std::time::Duration;

use secrecy::SecretString;
use server::psp::stripe::{StripeClient, TestCard};
use server::psp::{ChargeOutcome, ChargeRequest, Metadata, ProviderError, RefundRequest, TransferRequest};
use support::{Localstripe, PspSim, SIM_KEY};

/// A server under test and the cards it takes.
struct Target {
    name: &'static str,
    client: StripeClient,
    good: TestCard<'static>,
    declined: TestCard<'static>,
}

fn client(base: &str) -> StripeClient {
    StripeClient::new(base, SecretString::from(SIM_KEY.to_owned()), Duration::from_secs(10)).unwrap()
}

fn metadata(pairs: &[(&'static str, &str)]) -> Metadata {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

fn key(name: &str) -> String {
    format!("conformance-{name}-{}", uuid::Uuid::new_v4().simple())
}

fn charge(customer: &str, method: &str, amount_minor: i64, idempotency_key: String) -> ChargeRequest {
    ChargeRequest {
        amount_minor,
        currency: "usd".into(),
        customer: customer.into(),
        payment_method: method.into(),
        metadata: metadata(&[("invoice_id", "42"), ("user_id", "p1"), ("week", "2026-W10")]),
        idempotency_key,
    }
}

fn refund(intent: &str, amount_minor: i64, idempotency_key: String) -> RefundRequest {
    RefundRequest {
        payment_intent: intent.into(),
        amount_minor,
        reason: None,
        metadata: metadata(&[("refund_id", "1"), ("invoice_id", "42")]),
        idempotency_key,
    }
}

/// The scenarios both servers must pass; returns the customer, card and payment intent for the
/// checks of one server only.
async fn common_scenarios(t: &Target) -> (String, String, String) {
    let name = t.name;
    let customer = t
        .client
        .create_customer(Some("ana@example.com"), "Ana", &metadata(&[("user_id", "p1")]), &key("customer"))
        .await
        .unwrap_or_else(|e| panic!("{name}: create a customer: {e}"));
    assert!(customer.starts_with("cus_"), "{name}: {customer}");
    let method = t
        .client
        .attach_card(&customer, t.good, &key("card"))
        .await
        .unwrap_or_else(|e| panic!("{name}: a card: {e}"));
    assert!(method.starts_with("pm_"), "{name}: {method}");

    // Charge off-session.
    let outcome = t
        .client
        .charge(&charge(&customer, &method, 1234, key("charge")))
        .await
        .unwrap_or_else(|e| panic!("{name}: charge: {e}"));
    let ChargeOutcome::Succeeded { intent, charge: charge_id, amount_minor } = outcome else {
        panic!("{name}: the charge succeeds: {outcome:?}")
    };
    assert!(intent.starts_with("pi_") && charge_id.starts_with("ch_"), "{name}: {intent} {charge_id}");
    assert_eq!(amount_minor, 1234, "{name}");
    let read = t.client.payment_intent(&intent).await.unwrap();
    assert_eq!(read["status"], "succeeded", "{name}: {read}");
    assert_eq!(read["metadata"]["invoice_id"], "42", "{name}: the metadata the contract names");

    // A card that attaches and is declined when charged.
    let declining = t
        .client
        .attach_card(&customer, t.declined, &key("declining"))
        .await
        .unwrap_or_else(|e| panic!("{name}: the declining card: {e}"));
    let declined = t
        .client
        .charge(&charge(&customer, &declining, 500, key("declined")))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    match declined {
        ChargeOutcome::Declined { code, .. } => assert_eq!(code, "card_declined", "{name}"),
        other => panic!("{name}: the card is declined: {other:?}"),
    }

    // A partial refund, then the rest.
    let part = t
        .client
        .refund(&refund(&intent, 234, key("refund-part")))
        .await
        .unwrap_or_else(|e| panic!("{name}: partial refund: {e}"));
    assert!(part.starts_with("re_"), "{name}: {part}");
    let rest = t
        .client
        .refund(&refund(&intent, 1000, key("refund-rest")))
        .await
        .unwrap_or_else(|e| panic!("{name}: full refund: {e}"));
    assert_ne!(part, rest);

    // The customer's charges: the successful one, fully refunded.
    let charges =
        t.client.charges_of(&customer, None).await.unwrap_or_else(|e| panic!("{name}: list charges: {e}"));
    let found = charges
        .iter()
        .find(|c| c["id"] == charge_id.as_str())
        .unwrap_or_else(|| panic!("{name}: {charges:?}"));
    assert_eq!(found["amount"], 1234, "{name}");
    assert_eq!(found["amount_refunded"], 1234, "{name}");
    assert_eq!(found["payment_intent"], intent.as_str(), "{name}");
    (customer, method, intent)
}

#[tokio::test]
async fn the_stripe_client_against_localstripe() {
    let localstripe = Localstripe::start().await;
    let target = Target {
        name: "localstripe",
        client: client(&localstripe.base),
        good: TestCard::Number("4242424242424242"),
        declined: TestCard::Number("4000000000000341"),
    };
    common_scenarios(&target).await;
}

#[tokio::test]
async fn the_stripe_client_against_the_simulator() {
    let sim = PspSim::start(&[]).await;
    let target = Target {
        name: "psp-sim",
        client: client(&sim.base),
        good: TestCard::Token("tok_visa"),
        declined: TestCard::Token("tok_chargeDeclined"),
    };
    let (customer, method, intent) = common_scenarios(&target).await;

    // Simulator only (localstripe ignores Idempotency-Key): the same key replays the first
    // answer and moves money once.
    let once = key("idempotent");
    let first = target.client.charge(&charge(&customer, &method, 700, once.clone())).await.unwrap();
    let again = target.client.charge(&charge(&customer, &method, 700, once)).await.unwrap();
    assert_eq!(first, again, "a replay, not a second charge");
    let charges =
        sim.ledger().await.into_iter().filter(|e| e["kind"] == "charge" && e["amount"] == 700).count();
    assert_eq!(charges, 1);

    // Simulator only (localstripe refuses `reason`): a refund with Stripe's reason.
    let second = target.client.charge(&charge(&customer, &method, 300, key("second"))).await.unwrap();
    let ChargeOutcome::Succeeded { intent: second, .. } = second else { panic!("{second:?}") };
    let with_reason =
        RefundRequest { reason: Some("requested_by_customer"), ..refund(&second, 300, key("reason")) };
    target.client.refund(&with_reason).await.unwrap();
    let reasons: Vec<serde_json::Value> =
        target.client.list_all(&format!("/v1/refunds?payment_intent={second}"), None).await.unwrap();
    assert_eq!(reasons[0]["reason"], "requested_by_customer");

    // Simulator only (localstripe refunds beyond the charge): nothing is left to refund.
    let beyond = target.client.refund(&refund(&intent, 1, key("beyond"))).await;
    assert!(matches!(beyond, Err(ProviderError::Refused(_))), "{beyond:?}");

    // Simulator only (localstripe has no connected accounts or transfers).
    let account = target
        .client
        .create_account(Some("dana@example.com"), &metadata(&[("driver_id", "d1")]), &key("account"))
        .await
        .unwrap();
    let transfer = target
        .client
        .transfer(&TransferRequest {
            amount_minor: 900,
            currency: "usd".into(),
            destination: account,
            transfer_group: Some("2026-W10".into()),
            metadata: metadata(&[("payout_id", "9"), ("driver_id", "d1"), ("week", "2026-W10")]),
            idempotency_key: key("transfer"),
        })
        .await
        .unwrap();
    assert!(transfer.starts_with("tr_"), "{transfer}");
}

on_both_databases! {
    async fn a_run_against_localstripe_completes_and_reconciles_with_its_charges(kind: Kind) {
        let localstripe = Localstripe::start().await;
        let (test_db, db) = support::TestDb::migrated(kind).await;
        // One attempt each: localstripe has no connected accounts, so every payout fails at once
        // (and is reported) instead of waiting a day for its retry.
        db.put_setting("run_settings", &serde_json::json!({ "max_attempts": 1, "canary_size": 3 }), "test").await.unwrap();
        let env = [
            ("DATABASE_URL", test_db.url.as_str()),
            ("PSP_URL", localstripe.base.as_str()),
            ("PSP_API_KEY", SIM_KEY),
            ("PSP_TEST_CARDS", "numbers"),
        ];
        let billing = |args: &[&str]| {
            let mut command = support::billing();
            command.args(args).envs(env);
            command
        };
        let week = support::last_week();
        let out = billing(&["demo-data", "--passengers", "8", "--drivers", "2", "--weeks", "1", "--seed", "4"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = billing(&["run", "--week", &week, "--approve", "--workers", "2"]).output().await.unwrap();
        assert!(out.status.success(), "the run completes: {}", String::from_utf8_lossy(&out.stderr));
        let charged: Vec<(i64, i64)> = support::rows(&db, "SELECT invoice_id, amount_minor FROM charges WHERE state = 'charged'").await;
        let invoices: Vec<(i64,)> = support::rows(&db, &format!("SELECT id FROM invoices WHERE week = '{week}'")).await;
        assert_eq!(charged.len(), invoices.len(), "every invoice charged at localstripe");
        let failed: Vec<(i64,)> = support::rows(&db, "SELECT payout_id FROM transfers WHERE state = 'failed'").await;
        assert!(!failed.is_empty(), "payouts fail at localstripe, which has no transfers");

        // localstripe's own records: one succeeded payment intent per invoice, the same amounts.
        let listed = client(&localstripe.base).list_all("/v1/payment_intents", None).await.unwrap();
        let mut at_provider: Vec<i64> = listed.iter().filter(|p| p["status"] == "succeeded").map(|p| p["amount"].as_i64().unwrap()).collect();
        let mut in_ledger: Vec<i64> = charged.iter().map(|c| c.1).collect();
        at_provider.sort();
        in_ledger.sort();
        assert_eq!(at_provider, in_ledger);

        let out = billing(&["reconcile", "--week", &week]).output().await.unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{printed}{}", String::from_utf8_lossy(&out.stderr));
        assert!(printed.contains(&format!("{week}: {} matched, 0 not matched", charged.len())), "{printed}");
    }
}

//! Disputes over HTTP, on each database, against `billing psp-sim` as a separate process that
//! opens and closes them and sends the signed events: each dispute is recorded once, a disputed
//! charge is not refunded, finance sends the evidence in one action, and the money of a won and
//! a lost dispute is the same in the simulator's ledger and in ours; enough disputes on one week
//! raise one alert.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::db::Db;
use support::{charged_week_with, email_of, execute, rows, until_count, Charged, PspSim, SIM_KEY};

const SECRET: &str = "whsec_disputes_test";

/// Points the simulator's webhooks at the product.
async fn hook(sim: &PspSim, app: &support::StaffedServer) {
    sim.send_webhooks_to(&app.url("/webhooks/stripe"), SECRET).await;
}

/// The charged invoices, with the provider's charge id of each: (invoice id, charge id, amount).
async fn charges(sim: &PspSim) -> Vec<(i64, String, i64)> {
    let mut found: Vec<(i64, String, i64)> = sim
        .ledger()
        .await
        .iter()
        .filter(|e| e["kind"] == "charge")
        .map(|e| {
            let invoice = e["metadata"]["invoice_id"].as_str().unwrap().parse().unwrap();
            (invoice, e["id"].as_str().unwrap().to_owned(), e["amount"].as_i64().unwrap())
        })
        .collect();
    found.sort();
    found
}

/// Opens a dispute at the simulator: its id.
async fn open(sim: &PspSim, charge: &str, reason: &str) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/sim/disputes", sim.base))
        .json(&json!({ "charge": charge, "reason": reason }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let dispute: Value = answer.json().await.unwrap();
    dispute["id"].as_str().unwrap().to_owned()
}

async fn close(sim: &PspSim, dispute: &str, outcome: &str) {
    let answer = reqwest::Client::new()
        .post(format!("{}/sim/disputes/{dispute}/close", sim.base))
        .json(&json!({ "outcome": outcome }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{}", answer.text().await.unwrap());
}

/// What the provider's ledger and ours hold for a dispute: the provider's (withdrawn, fee,
/// reinstated), and ours from the `disputes`/`dispute_fees` postings.
async fn money_of(sim: &PspSim, db: &Db, dispute: &str) -> ((i64, i64, i64), (i64, i64, i64)) {
    let entries = sim.ledger().await;
    let sum = |kind: &str| -> i64 {
        entries
            .iter()
            .filter(|e| e["kind"] == kind && e["id"] == dispute)
            .map(|e| e["amount"].as_i64().unwrap())
            .sum()
    };
    let provider = (sum("dispute"), sum("dispute_fee"), sum("dispute_reversal"));
    let posted = |kind: &str, account: &str| {
        format!(
            "SELECT CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE t.kind = '{kind}' AND t.reference = '{dispute}' AND p.account = '{account}'"
        )
    };
    let withdrawn: Vec<(i64,)> = rows(db, &posted("dispute.withdrawal", "disputes")).await;
    let fee: Vec<(i64,)> = rows(db, &posted("dispute.withdrawal", "dispute_fees")).await;
    let back: Vec<(i64,)> = rows(db, &posted("dispute.won", "provider_clearing")).await;
    (provider, (withdrawn[0].0, fee[0].0, back[0].0))
}

on_both_databases! {
    async fn a_dispute_is_answered_and_its_money_matches_the_providers_when_won_and_when_lost(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        hook(&sim, &app).await;
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let support = app.token_for(&email_of(Role::Support)).await;
        let charged = charges(&sim).await;
        assert!(charged.len() >= 2, "{charged:?}");
        let (won_invoice, won_charge, won_amount) = charged[0].clone();
        let (lost_invoice, lost_charge, lost_amount) = charged[1].clone();
        let won = open(&sim, &won_charge, "duplicate").await;
        let lost = open(&sim, &lost_charge, "fraudulent").await;
        // Each dispute's two events (created, funds withdrawn) are recorded; the money once.
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'dispute.withdrawal'", 2).await;
        let stored: Vec<(String, i64, String)> =
            rows(&app.db, "SELECT provider_id, invoice_id, status FROM disputes ORDER BY invoice_id").await;
        assert_eq!(
            stored,
            vec![(won.clone(), won_invoice, "needs_response".into()), (lost.clone(), lost_invoice, "needs_response".into())]
        );

        // The queue: finance sees both, by due date, with the counts; support may not.
        let queue: Value = http.get(app.url("/api/v1/disputes")).bearer_auth(&finance).send().await.unwrap().json().await.unwrap();
        assert_eq!(queue["disputes"].as_array().unwrap().len(), 2, "{queue}");
        assert_eq!(queue["counts"], json!([["needs_response", 2]]));
        let refused = http.get(app.url("/api/v1/disputes")).bearer_auth(&support).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let unknown = http.get(app.url("/api/v1/disputes?status=maybe")).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let our_id = |provider: &str| {
            queue["disputes"].as_array().unwrap().iter().find(|d| d["provider_id"] == provider).unwrap()["id"].as_i64().unwrap()
        };

        // A disputed charge is not refunded: refused by name, nothing reaches the provider.
        let refund = http
            .post(app.url(&format!("/api/v1/invoices/{won_invoice}/refunds")))
            .bearer_auth(&finance)
            .json(&json!({ "amount": "1.00", "reason": "duplicate", "request_id": "refund-of-a-dispute" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refund.status(), StatusCode::CONFLICT);
        let body: Value = refund.json().await.unwrap();
        assert_eq!(body["field"], "invoice");
        assert!(body["error"].as_str().unwrap().contains(&format!("dispute {won}")), "{body}");
        assert!(!sim.ledger().await.iter().any(|e| e["kind"] == "refund"), "no refund was made");
        let requests: Vec<(i64,)> = rows(&app.db, "SELECT COUNT(*) FROM refunds").await;
        assert_eq!(requests[0].0, 0, "nothing stored");

        // The evidence, in one action: the provider has it, the dispute is under review, audited.
        let sent = http
            .post(app.url(&format!("/api/v1/disputes/{}/evidence", our_id(&won))))
            .bearer_auth(&finance)
            .json(&json!({ "note": "The customer rode all week." }))
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), StatusCode::OK);
        let sent: Value = sent.json().await.unwrap();
        assert_eq!(sent["status"], "under_review", "{sent}");
        assert_eq!(sent["evidence_by"], email_of(Role::Finance));
        let at_provider: Value = http
            .get(format!("{}/v1/disputes/{won}", sim.base))
            .bearer_auth(SIM_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(at_provider["status"], "under_review", "{at_provider}");
        let text = at_provider["evidence"]["uncategorized_text"].as_str().unwrap();
        assert!(text.contains(&format!("invoice {won_invoice}")) && text.contains("The customer rode all week."), "{text}");
        assert!(text.contains("ride ") && text.contains("driver "), "the ride lines: {text}");
        assert!(at_provider["evidence"]["duplicate_charge_explanation"].is_string(), "{at_provider}");
        let again = http
            .post(app.url(&format!("/api/v1/disputes/{}/evidence", our_id(&won))))
            .bearer_auth(&finance)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT, "sent once");
        let audited: Vec<(i64,)> = rows(&app.db, &format!(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dispute.evidence' AND object_id = '{won_invoice}'"
        )).await;
        assert_eq!(audited[0].0, 1);

        // One won, one lost: the simulator's ledger and ours agree on every amount.
        close(&sim, &won, "won").await;
        close(&sim, &lost, "lost").await;
        until_count(&app.db, "SELECT COUNT(*) FROM disputes WHERE status IN ('won', 'lost')", 2).await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind IN ('dispute.won', 'dispute.lost')", 2).await;
        let (provider, ours) = money_of(&sim, &app.db, &won).await;
        assert_eq!(provider.0, won_amount);
        assert!(provider.1 > 0, "the provider charged a fee");
        assert_eq!(provider, ours, "won: (withdrawn, fee, reinstated)");
        let (provider, ours) = money_of(&sim, &app.db, &lost).await;
        assert_eq!(provider.0, lost_amount);
        assert_eq!(provider.2, 0, "a lost dispute gives nothing back");
        assert_eq!(provider, ours, "lost: (withdrawn, fee, reinstated)");
        let losses: Vec<(i64,)> = rows(&app.db, &format!(
            "SELECT CAST(COALESCE(SUM(p.amount_minor), 0) AS BIGINT) FROM ledger_postings p JOIN ledger_transactions t ON t.id = p.transaction_id \
             WHERE t.reference = '{lost}' AND p.account = 'dispute_losses'"
        )).await;
        assert_eq!(losses[0].0, lost_amount);
        // Every dispute transaction balances, and each step is recorded once.
        let unbalanced: Vec<(i64,)> = rows(&app.db,
            "SELECT t.id FROM ledger_transactions t JOIN ledger_postings p ON p.transaction_id = t.id \
             WHERE t.kind LIKE 'dispute.%' GROUP BY t.id HAVING SUM(p.amount_minor) <> 0").await;
        assert!(unbalanced.is_empty(), "{unbalanced:?}");
        let steps: Vec<(i64,)> = rows(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind LIKE 'dispute.%'").await;
        assert_eq!(steps[0].0, 4, "two withdrawals, one win, one loss");
        // A refund of the lost one is refused too: the issuer took the money back already.
        let refund = http
            .post(app.url(&format!("/api/v1/invoices/{lost_invoice}/refunds")))
            .bearer_auth(&finance)
            .json(&json!({ "amount": "1.00", "reason": "duplicate", "request_id": "refund-of-a-lost-dispute" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refund.status(), StatusCode::CONFLICT);
    }
}

on_both_databases! {
    async fn disputes_passing_the_weeks_threshold_raise_one_alert(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        hook(&sim, &app).await;
        execute(&app.db, "DELETE FROM settings WHERE key = 'alerts'").await;
        app.db.put_setting("alerts", &json!({ "dispute_threshold": 2 }), "test").await.unwrap();
        let charged = charges(&sim).await;
        assert!(charged.len() >= 3, "{charged:?}");
        let alerts = "SELECT COUNT(*) FROM alerts WHERE kind = 'disputes'";
        open(&sim, &charged[0].1, "duplicate").await;
        until_count(&app.db, "SELECT COUNT(*) FROM disputes", 1).await;
        let none: Vec<(i64,)> = rows(&app.db, alerts).await;
        assert_eq!(none[0].0, 0, "one dispute is under the threshold");
        open(&sim, &charged[1].1, "duplicate").await;
        until_count(&app.db, alerts, 1).await;
        open(&sim, &charged[2].1, "duplicate").await;
        until_count(&app.db, "SELECT COUNT(*) FROM disputes", 3).await;
        let raised: Vec<(String, String, i64, String)> =
            rows(&app.db, "SELECT week, title, occurrences, state FROM alerts WHERE kind = 'disputes'").await;
        assert_eq!(raised.len(), 1, "one alert per week: {raised:?}");
        assert_eq!(raised[0].2, 2, "the third dispute is one more occurrence");
        assert_eq!(raised[0].3, "open");
        assert!(raised[0].1.contains("disputes"), "{raised:?}");
    }
}

/// A `Money` of the API (`{"amount": "42.50", "currency": "USD"}`) in minor units (USD).
fn minor(money: &Value) -> i64 {
    assert_eq!(money["currency"], "USD", "{money}");
    let text = money["amount"].as_str().unwrap();
    let (units, cents) = text.split_once('.').unwrap();
    let sign = if units.starts_with('-') { -1 } else { 1 };
    units.parse::<i64>().unwrap() * 100 + sign * cents.parse::<i64>().unwrap()
}

/// The simulator's ledger entries of `kind` about week `week`'s payments (of dispute `id` when
/// given), summed.
fn provider_sum(entries: &[Value], week: &str, kind: &str, id: Option<&str>) -> i64 {
    entries
        .iter()
        .filter(|e| e["kind"] == kind && e["metadata"]["week"] == week && id.is_none_or(|id| e["id"] == id))
        .map(|e| e["amount"].as_i64().unwrap())
        .sum()
}

/// `billing reconcile --week W --format json` against the simulator: its exit code and JSON.
async fn reconcile_json(sim: &PspSim, app: &support::StaffedServer, week: &str) -> (Option<i32>, Value) {
    let out = sim
        .billing(&app.test_db.url)
        .args(["reconcile", "--week", week, "--format", "json"])
        .output()
        .await
        .unwrap();
    let printed = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), printed)
}

on_both_databases! {
    async fn the_report_shows_what_was_disputed_won_and_lost_as_the_provider_moved_it(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        hook(&sim, &app).await;
        let week = support::last_week();
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let report = || async {
            let answer = http.get(app.url(&format!("/api/v1/reports/{week}"))).bearer_auth(&finance).send().await.unwrap();
            assert_eq!(answer.status(), StatusCode::OK);
            answer.json::<Value>().await.unwrap()
        };
        // No dispute yet: none in the report.
        let none = report().await;
        assert_eq!((none["figures"]["disputes"].as_i64(), minor(&none["figures"]["disputed"])), (Some(0), 0), "{none}");
        assert_eq!(none["figures"]["disputes_by_status"], json!([]));

        let charged = charges(&sim).await;
        let (_, won_charge, won_amount) = charged[0].clone();
        let (_, lost_charge, lost_amount) = charged[1].clone();
        let won = open(&sim, &won_charge, "duplicate").await;
        let lost = open(&sim, &lost_charge, "fraudulent").await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'dispute.withdrawal'", 2).await;
        close(&sim, &won, "won").await;
        close(&sim, &lost, "lost").await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind IN ('dispute.won', 'dispute.lost')", 2).await;
        until_count(&app.db, "SELECT COUNT(*) FROM disputes WHERE status IN ('won', 'lost')", 2).await;

        // Each figure is what the provider's ledger says of the week.
        let report = report().await;
        let f = &report["figures"];
        let entries = sim.ledger().await;
        let sum = |kind: &str, id: Option<&str>| provider_sum(&entries, &week, kind, id);
        assert_eq!(f["disputes"], 2, "{f}");
        assert_eq!(minor(&f["disputed"]), sum("dispute", None), "disputed = the provider's withdrawals");
        assert_eq!(minor(&f["disputed"]), won_amount + lost_amount);
        assert_eq!(minor(&f["dispute_fees"]), sum("dispute_fee", None), "the provider's fees");
        assert!(minor(&f["dispute_fees"]) > 0, "{f}");
        assert_eq!((f["disputes_won_count"].as_i64(), minor(&f["disputes_won"])), (Some(1), sum("dispute_reversal", None)), "won = reinstated");
        assert_eq!(minor(&f["disputes_won"]), won_amount);
        let lost_at_provider = sum("dispute", Some(&lost)) - sum("dispute_reversal", Some(&lost));
        assert_eq!((f["disputes_lost_count"].as_i64(), minor(&f["disputes_lost"])), (Some(1), lost_at_provider), "lost = withdrawn, never given back");
        assert_eq!(minor(&f["disputes_lost"]), lost_amount);
        assert_eq!(f["disputes_by_status"], json!([["lost", 1], ["won", 1]]));
        // What the provider holds of the week, disputes included, is what the ledger says.
        let held = sum("charge", None) - sum("refund", None) - sum("transfer", None) - sum("dispute", None)
            - sum("dispute_fee", None) + sum("dispute_reversal", None);
        assert_eq!(minor(&f["provider_clearing"]), held, "{f}");
        // The figures that were there keep their meaning: net is still charged − refunded.
        assert_eq!(minor(&f["net"]), minor(&f["charged"]) - minor(&f["refunded"]));
        assert_eq!((report["previous"]["disputes"].as_i64(), minor(&report["previous"]["disputed"])), (Some(0), 0));

        // The XLSX summary says the same.
        let bytes = http.get(app.url(&format!("/api/v1/reports/{week}?format=xlsx"))).bearer_auth(&finance).send().await.unwrap().bytes().await.unwrap();
        let mut book: calamine::Xlsx<_> = calamine::Reader::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let summary = calamine::Reader::worksheet_range(&mut book, "Summary").unwrap();
        let cell = |label: &str| -> f64 {
            let row = summary.rows().find(|r| r[0] == label).unwrap_or_else(|| panic!("{label} in the summary"));
            match &row[1] {
                calamine::Data::Float(v) => *v,
                other => panic!("{label} is a number, not {other:?}"),
            }
        };
        let cents = |label: &str| (cell(label) * 100.0).round() as i64;
        assert_eq!(cents("Disputed"), minor(&f["disputed"]));
        assert_eq!(cents("Dispute fees"), minor(&f["dispute_fees"]));
        assert_eq!(cents("Reinstated (disputes won)"), won_amount);
        assert_eq!(cents("Lost in disputes"), lost_amount);
        assert_eq!((cell("Disputes"), cell("Disputes won"), cell("Disputes lost"), cell("Disputes still open")), (2.0, 1.0, 1.0, 0.0));
        assert_eq!(cents("Refunded"), minor(&f["refunded"]), "the rows before are where they were");
    }
}

on_both_databases! {
    async fn reconciliation_matches_the_disputes_it_was_told_of_and_names_the_others(kind: Kind) {
        let Charged { app, sim } = charged_week_with(kind, &[], &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        let week = support::last_week();
        let charged = charges(&sim).await;
        assert!(charged.len() >= 4, "{charged:?}");
        let paid: Vec<(i64,)> = rows(&app.db, "SELECT payout_id FROM transfers WHERE state = 'paid'").await;
        let movements = (charged.len() + paid.len()) as i64;

        // The simulator's webhooks are not pointed at the product: a dispute the product never
        // hears of is named, with its invoice, and is not repaired.
        let (unheard_invoice, unheard_charge, unheard_amount) = charged[0].clone();
        let unheard = open(&sim, &unheard_charge, "fraudulent").await;
        let (code, printed) = reconcile_json(&sim, &app, &week).await;
        assert_eq!(code, Some(3), "{printed}");
        assert_eq!((printed["week"].as_str(), printed["matched"].as_i64()), (Some(week.as_str()), Some(movements)), "{printed}");
        let unexplained = printed["unexplained"].as_array().unwrap();
        assert_eq!(unexplained.len(), 1, "{printed}");
        let item = &unexplained[0];
        assert_eq!((item["kind"].as_str(), item["provider_id"].as_str()), (Some("dispute"), Some(unheard.as_str())), "{item}");
        assert_eq!((item["class"].as_str(), item["invoice_id"].as_i64()), (Some("provider_only"), Some(unheard_invoice)), "{item}");
        assert_eq!(minor(&item["provider_amount"]), unheard_amount);
        assert!(item["ledger_amount"].is_null(), "{item}");
        let note = item["note"].as_str().unwrap();
        assert!(note.contains(&unheard) && note.contains(&format!("invoice {unheard_invoice}")) && note.ends_with("answer it on /disputes"), "{note}");
        assert_eq!((&printed["missing"], &printed["mismatched"]), (&json!([]), &json!([])), "{printed}");
        let repairs: Vec<(i64,)> = rows(&app.db, "SELECT COUNT(*) FROM stray_charges").await;
        assert_eq!(repairs[0].0, 0, "a dispute is not a stray charge");

        // Pointed at the product: a dispute it was told of, won, matches.
        hook(&sim, &app).await;
        let heard = open(&sim, &charged[1].1, "duplicate").await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'dispute.withdrawal'", 1).await;
        close(&sim, &heard, "won").await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'dispute.won'", 1).await;
        // One the product was told of, whose loss it never heard of: the status differs.
        let behind = open(&sim, &charged[2].1, "product_not_received").await;
        until_count(&app.db, "SELECT COUNT(*) FROM ledger_transactions WHERE kind = 'dispute.withdrawal'", 2).await;
        sim.send_webhooks_to("http://127.0.0.1:9/webhooks/stripe", SECRET).await;
        close(&sim, &behind, "lost").await;
        // And one the product recorded that the provider does not have (a forged event).
        let (forged_invoice, _, _) = charged[3];
        let intent: Vec<(String,)> = rows(&app.db, &format!(
            "SELECT provider_id FROM charge_attempts WHERE invoice_id = {forged_invoice} AND outcome = 'succeeded'"
        )).await;
        let forged = server::db::disputes::DisputeEvent {
            provider_id: "dp_not_at_the_provider".into(),
            charge_id: "ch_unknown".into(),
            payment_intent: Some(intent[0].0.clone()),
            invoice_hint: None,
            amount_minor: 321,
            currency: "usd".into(),
            reason: "general".into(),
            status: "needs_response".into(),
            due_by: None,
            fee_minor: Some(0),
            withdrawn: true,
        };
        app.db.record_dispute(&forged).await.unwrap();

        let (code, printed) = reconcile_json(&sim, &app, &week).await;
        assert_eq!(code, Some(3), "{printed}");
        assert_eq!(printed["matched"].as_i64(), Some(movements + 1), "the heard dispute matched: {printed}");
        let named = |key: &str| -> Vec<String> {
            printed[key].as_array().unwrap().iter().map(|i| i["provider_id"].as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(named("unexplained"), [unheard.as_str()], "{printed}");
        assert_eq!(named("mismatched"), [behind.as_str()], "{printed}");
        assert_eq!(named("missing"), ["dp_not_at_the_provider"], "{printed}");
        let mismatched = &printed["mismatched"][0];
        assert_eq!(mismatched["kind"], "dispute");
        let note = mismatched["note"].as_str().unwrap();
        assert!(note.contains("the provider says lost, the product needs_response") && note.ends_with("answer it on /disputes"), "{note}");
        let missing = &printed["missing"][0];
        assert_eq!((missing["invoice_id"].as_i64(), minor(&missing["ledger_amount"])), (Some(forged_invoice), 321), "{missing}");
        assert!(missing["provider_amount"].is_null());

        // The API keeps the same reconciliation, notes included.
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let stored: Value = reqwest::Client::new()
            .get(app.url(&format!("/api/v1/reconciliations/{week}")))
            .bearer_auth(&finance)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stored["unmatched"], 3, "{stored}");
        let disputes: Vec<&Value> = stored["items"].as_array().unwrap().iter().filter(|i| i["kind"] == "dispute").collect();
        assert_eq!(disputes.len(), 3);
        assert!(disputes.iter().all(|i| i["note"].as_str().unwrap().ends_with("answer it on /disputes")), "{stored}");
        assert!(stored["stray"].as_array().unwrap().is_empty(), "nothing proposed for repair");
    }
}

//! Refunds over HTTP, on each database, against `billing psp-sim` as a separate process: storms of
//! concurrent refunds (distinct and equal request ids) with the simulator holding answers past
//! the client's timeout never refund more than was charged and make exactly the expected refunds;
//! bad requests are refused by name and change nothing; support above the limits waits for a
//! second person.

mod support;

use std::time::Duration;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::db::Db;
use support::{charged_week, email_of, rows, Charged, PspSim, StaffedServer, FINANCE_TWO};

/// Charged invoices, largest first: (invoice id, user, amount in minor units).
async fn charged_invoices(db: &Db) -> Vec<(i64, String, i64)> {
    rows(db, "SELECT invoice_id, user_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY amount_minor DESC, invoice_id").await
}

fn major(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// POSTs a refund with `token`; the status and the JSON answer.
async fn refund(
    http: &reqwest::Client,
    app: &StaffedServer,
    token: &str,
    invoice: i64,
    body: Value,
) -> (StatusCode, Value) {
    let response = http
        .post(app.url(&format!("/api/v1/invoices/{invoice}/refunds")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Waits until no refund is pending or failed (the worker asks again with the same key).
async fn settled(db: &Db) {
    support::eventually(Duration::from_secs(60), || async move {
        let open: Vec<(i64,)> = rows(db, "SELECT id FROM refunds WHERE state IN ('pending', 'failed')").await;
        if open.is_empty() {
            Ok(())
        } else {
            Err(format!("refunds {open:?} never settled"))
        }
    })
    .await
}

/// The simulator's refunds of an invoice: (count, sum).
async fn provider_refunds(sim: &PspSim, invoice: i64) -> (usize, i64) {
    let entries = sim.ledger().await;
    let of: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["kind"] == "refund"
                && e["metadata"]["invoice_id"].as_str() == Some(invoice.to_string().as_str())
        })
        .collect();
    (of.len(), of.iter().map(|e| e["amount"].as_i64().unwrap()).sum())
}

on_both_databases! {
    async fn refund_storms_never_refund_more_than_was_charged(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &["--hang-ms", "2500"]).await;
        let invoices = charged_invoices(&app.db).await;
        assert!(invoices.len() >= 3, "the run charged invoices: {invoices:?}");
        let (a, _, charged_a) = invoices[0].clone();
        let (b, _, _) = invoices[1].clone();
        // From now on, half of the provider's answers arrive after the client gave up.
        let faults = reqwest::Client::new()
            .put(format!("{}/sim/faults", sim.base))
            .json(&json!({ "timeout_after_charge": 0.5, "seed": 3 }))
            .send()
            .await
            .unwrap();
        assert!(faults.status().is_success());
        let token = app.token_for(&email_of(Role::Finance)).await;
        let http = reqwest::Client::new();
        let part = (charged_a / 4).max(1) + 1;
        let fits = (charged_a / part) as usize;
        let distinct = (0..12).map(|i| {
            refund(&http, &app, &token, a, json!({ "amount": major(part), "reason": "duplicate", "request_id": format!("storm-{i}") }))
        });
        let equal = (0..8).map(|_| {
            refund(&http, &app, &token, b, json!({ "amount": "0.10", "reason": "requested_by_customer", "request_id": "same-request", "note": "double click" }))
        });
        // Two staff members refunding the whole of a third invoice at once.
        let (c, _, charged_c) = invoices[2].clone();
        let admin = app.token_for(&email_of(Role::Admin)).await;
        let whole = |id: &str| json!({ "amount": major(charged_c), "reason": "duplicate", "request_id": id });
        let (distinct, equal, (first, second)) = tokio::join!(
            futures::future::join_all(distinct),
            futures::future::join_all(equal),
            async {
                tokio::join!(
                    refund(&http, &app, &token, c, whole("finance-whole")),
                    refund(&http, &app, &admin, c, whole("admin-whole"))
                )
            }
        );
        let mut whole_statuses = [first.0, second.0];
        whole_statuses.sort();
        assert_eq!(whole_statuses, [StatusCode::CREATED, StatusCode::UNPROCESSABLE_ENTITY], "{first:?} {second:?}");

        let made: Vec<&Value> = distinct.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, v)| v).collect();
        assert_eq!(made.len(), fits.min(12), "{part} of {charged_a} fits {fits} times: {distinct:?}");
        for (status, body) in distinct.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
            assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(body["field"], "amount");
            assert!(body["error"].as_str().unwrap().contains("more than can still be refunded"), "{body}");
        }
        let created = equal.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        let repeated = equal.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!((created, repeated), (1, 7), "one request id is one refund: {equal:?}");
        let ids: std::collections::BTreeSet<i64> = equal.iter().map(|(_, v)| v["refund"]["id"].as_i64().unwrap()).collect();
        assert_eq!(ids.len(), 1);

        settled(&app.db).await;
        assert_eq!(provider_refunds(&sim, a).await, (made.len(), part * made.len() as i64), "the provider refunded each once");
        assert_eq!(provider_refunds(&sim, b).await, (1, 10));
        assert_eq!(provider_refunds(&sim, c).await, (1, charged_c));
        let states: Vec<(String, i64)> = rows(&app.db, "SELECT state, COUNT(*) FROM refunds GROUP BY state").await;
        assert_eq!(states, vec![("succeeded".to_owned(), made.len() as i64 + 2)]);
        let (_, unbalanced) = app.db.ledger_check().await.unwrap();
        assert!(unbalanced.is_empty());
        let refunded = app.db.ledger_balance(&server::billing::ledger::Account::Refunds).await.unwrap();
        assert_eq!(refunded, part * made.len() as i64 + 10 + charged_c, "one balanced ledger transaction per refund");
        // Answers held past the timeout were asked again with the same key.
        let retried: Vec<(i64,)> = rows(&app.db, "SELECT refund_id FROM refund_attempts WHERE outcome = 'unknown'").await;
        assert!(!retried.is_empty(), "the simulator held some answers past the client's timeout");

        // The invoice page shows it all, and what is left.
        let record: Value = http.get(app.url(&format!("/api/v1/invoices/{a}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        assert_eq!(record["refunds"].as_array().unwrap().len(), made.len());
        assert_eq!(record["refundable"]["amount"], major(charged_a - part * made.len() as i64));
        assert!(record["ledger"].as_array().unwrap().iter().any(|t| t["kind"] == "refund"));
    }

    async fn bad_refunds_are_refused_by_name_and_change_nothing(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &["--decline-rate", "0.3", "--seed", "4"]).await;
        let invoices = charged_invoices(&app.db).await;
        let (a, user, charged_a) = invoices[0].clone();
        let (b, _, _) = invoices[1].clone();
        let uncharged: Vec<(i64,)> = rows(&app.db, "SELECT invoice_id FROM charges WHERE state <> 'charged' LIMIT 1").await;
        assert!(!uncharged.is_empty(), "the simulator declined some invoices");
        let token = app.token_for(&email_of(Role::Finance)).await;
        let http = reqwest::Client::new();
        let ok = |amount: &str| json!({ "amount": amount, "reason": "duplicate", "request_id": format!("bad-{}", uuid::Uuid::new_v4()) });
        let mut other_user = ok("1.00");
        other_user["user_id"] = json!(format!("not-{user}"));
        let mut other_reason = ok("1.00");
        other_reason["reason"] = json!("other");
        let mut unknown_line = ok("");
        unknown_line["lines"] = json!(["no-such-ride"]);
        let cases: Vec<(i64, Value, StatusCode, &str)> = vec![
            (a, ok("-1.00"), StatusCode::UNPROCESSABLE_ENTITY, "amount"),
            (a, ok("0"), StatusCode::UNPROCESSABLE_ENTITY, "amount"),
            (a, ok("0.005"), StatusCode::UNPROCESSABLE_ENTITY, "amount"),
            (a, ok("1e2"), StatusCode::UNPROCESSABLE_ENTITY, "amount"),
            (a, ok(&major(charged_a + 1)), StatusCode::UNPROCESSABLE_ENTITY, "amount"),
            (a, json!({ "amount": "1.00", "reason": "because", "request_id": "r-reason" }), StatusCode::UNPROCESSABLE_ENTITY, "reason"),
            (a, json!({ "amount": "1.00", "reason": "duplicate", "request_id": "" }), StatusCode::UNPROCESSABLE_ENTITY, "request_id"),
            (a, json!({ "amount": "1.00", "reason": "duplicate" }), StatusCode::UNPROCESSABLE_ENTITY, "body"),
            (a, json!({ "amount": 1, "reason": "duplicate", "request_id": "r-number" }), StatusCode::UNPROCESSABLE_ENTITY, "body"),
            (a, other_reason, StatusCode::UNPROCESSABLE_ENTITY, "note"),
            (a, other_user, StatusCode::UNPROCESSABLE_ENTITY, "user_id"),
            (a, unknown_line, StatusCode::UNPROCESSABLE_ENTITY, "lines"),
            (999_999, ok("1.00"), StatusCode::NOT_FOUND, ""),
            (uncharged[0].0, ok("1.00"), StatusCode::UNPROCESSABLE_ENTITY, "invoice"),
        ];
        for (invoice, body, status, field) in cases {
            let (got, answer) = refund(&http, &app, &token, invoice, body.clone()).await;
            assert_eq!(got, status, "{body} → {answer}");
            if !field.is_empty() {
                assert_eq!(answer["field"], field, "{body} → {answer}");
            }
            assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "a readable message: {answer}");
        }
        let stored: Vec<(i64,)> = rows(&app.db, "SELECT id FROM refunds").await;
        assert!(stored.is_empty(), "nothing was written: {stored:?}");
        let reserved: Vec<(i64,)> = rows(&app.db, "SELECT reserved_minor FROM refund_balances WHERE reserved_minor <> 0").await;
        assert!(reserved.is_empty());
        assert!(sim.ledger().await.iter().all(|e| e["kind"] != "refund"), "nothing reached the provider");

        // A request id used for one invoice cannot make a refund of another.
        let (status, _) = refund(&http, &app, &token, a, json!({ "amount": "0.50", "reason": "duplicate", "request_id": "once" })).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, answer) = refund(&http, &app, &token, b, json!({ "amount": "0.50", "reason": "duplicate", "request_id": "once" })).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::CONFLICT, Some("request_id")), "{answer}");
        // Nor, reused with other parameters, pass for a refund it did not make: refused naming the
        // field that differs, nothing refunded; the same request again is the same refund.
        let before = sim.ledger().await.iter().filter(|e| e["kind"] == "refund").count();
        for (body, field) in [
            (json!({ "amount": "0.60", "reason": "duplicate", "request_id": "once" }), "amount"),
            (json!({ "amount": "0.50", "reason": "fraudulent", "request_id": "once" }), "reason"),
            (json!({ "amount": "0.50", "reason": "duplicate", "request_id": "once", "note": "again" }), "note"),
        ] {
            let (status, answer) = refund(&http, &app, &token, a, body).await;
            assert_eq!((status, answer["field"].as_str()), (StatusCode::CONFLICT, Some(field)), "{answer}");
            assert!(answer["error"].as_str().unwrap().contains("new request id"), "{answer}");
        }
        let (status, answer) = refund(&http, &app, &token, a, json!({ "amount": "0.50", "reason": "duplicate", "request_id": "once" })).await;
        assert_eq!((status, answer["outcome"].as_str()), (StatusCode::OK, Some("existing")), "{answer}");
        let after = sim.ledger().await.iter().filter(|e| e["kind"] == "refund").count();
        assert_eq!(after, before, "nothing more refunded");
        // Refunding by line: the chosen lines' amounts.
        let record: Value = http.get(app.url(&format!("/api/v1/invoices/{b}"))).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        let line = &record["lines"][0];
        let (status, answer) = refund(&http, &app, &token, b, json!({ "reason": "service_issue", "request_id": "by-line", "lines": [line["ride_id"]] })).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        assert_eq!(answer["refund"]["amount"], line["amount"]);
        assert_eq!(answer["refund"]["state"], "succeeded");
        // The same line is not refunded a second time, alone or with others: refused naming the
        // lines, nothing refunded; an amount not tied to lines stays capped by the invoice.
        let before = sim.ledger().await.iter().filter(|e| e["kind"] == "refund").count();
        let mut both = vec![line["ride_id"].clone()];
        if let Some(other) = record["lines"].get(1) {
            both.push(other["ride_id"].clone());
        }
        for (n, lines) in [vec![line["ride_id"].clone()], both].into_iter().enumerate() {
            let (status, answer) = refund(&http, &app, &token, b, json!({ "reason": "service_issue", "request_id": format!("line-again-{n}"), "lines": lines })).await;
            assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("lines")), "{answer}");
            assert!(answer["error"].as_str().unwrap().contains("refunded already"), "{answer}");
        }
        assert_eq!(sim.ledger().await.iter().filter(|e| e["kind"] == "refund").count(), before, "nothing more refunded");
    }

    async fn support_refunds_above_the_limits_wait_for_another_person(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &[]).await;
        let invoices = charged_invoices(&app.db).await;
        let (a, _, charged_a) = invoices[0].clone();
        assert!(charged_a >= 400, "a large enough invoice: {charged_a}");
        let http = reqwest::Client::new();
        let admin = app.token_for(&email_of(Role::Admin)).await;
        let limits = http
            .put(app.url("/api/v1/settings/refund-limits"))
            .bearer_auth(&admin)
            .json(&json!({ "support_per_refund": "1.00", "support_per_day": "1.20" }))
            .send()
            .await
            .unwrap();
        assert_eq!(limits.status(), StatusCode::OK);
        let bad = http
            .put(app.url("/api/v1/settings/refund-limits"))
            .bearer_auth(&admin)
            .json(&json!({ "support_per_refund": "1.001", "support_per_day": "1.50" }))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.json::<Value>().await.unwrap()["field"], "support_per_refund");

        let support = app.token_for(&email_of(Role::Support)).await;
        let ask = |amount: &str, id: &str| json!({ "amount": amount, "reason": "requested_by_customer", "request_id": id });
        let (status, small) = refund(&http, &app, &support, a, ask("0.50", "s-small")).await;
        assert_eq!((status, small["refund"]["state"].as_str()), (StatusCode::CREATED, Some("succeeded")), "{small}");
        let (status, over_day) = refund(&http, &app, &support, a, ask("0.90", "s-day")).await;
        assert_eq!((status, over_day["refund"]["state"].as_str()), (StatusCode::ACCEPTED, Some("awaiting_approval")), "{over_day}");
        let (status, large) = refund(&http, &app, &support, a, ask("2.00", "s-large")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{large}");
        assert_eq!(provider_refunds(&sim, a).await, (1, 50), "only the small one went out");
        // What waits is reserved: the refundable amount already counts it.
        let record: Value = http.get(app.url(&format!("/api/v1/invoices/{a}"))).bearer_auth(&support).send().await.unwrap().json().await.unwrap();
        assert_eq!(record["refundable"]["amount"], major(charged_a - 50 - 90 - 200));

        let decide = |token: &str, id: i64, decision: &str, note: &str| {
            http.post(app.url(&format!("/api/v1/refunds/{id}/{decision}"))).bearer_auth(token.to_owned()).json(&json!({ "note": note })).send()
        };
        let large_id = large["refund"]["id"].as_i64().unwrap();
        let day_id = over_day["refund"]["id"].as_i64().unwrap();
        let refused = decide(&support, large_id, "approve", "").await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "support cannot approve");
        let waiting: Value = http.get(app.url("/api/v1/refunds?state=awaiting_approval")).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        assert_eq!(waiting["refunds"].as_array().unwrap().len(), 2);

        let finance = app.token_for(FINANCE_TWO).await;
        let approved = decide(&finance, large_id, "approve", "checked with the customer").await.unwrap();
        assert_eq!(approved.status(), StatusCode::OK);
        let approved: Value = approved.json().await.unwrap();
        assert_eq!((approved["state"].as_str(), approved["decided_by"].as_str()), (Some("succeeded"), Some(FINANCE_TWO)));
        let again = decide(&finance, large_id, "approve", "").await.unwrap();
        assert_eq!(again.status(), StatusCode::CONFLICT, "decided once");
        let no_reason = decide(&finance, day_id, "reject", "").await.unwrap();
        assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let rejected = decide(&finance, day_id, "reject", "already refunded by the driver").await.unwrap();
        assert_eq!(rejected.json::<Value>().await.unwrap()["state"], "rejected");
        assert_eq!(provider_refunds(&sim, a).await, (2, 250));
        let record: Value = http.get(app.url(&format!("/api/v1/invoices/{a}"))).bearer_auth(&support).send().await.unwrap().json().await.unwrap();
        assert_eq!(record["refundable"]["amount"], major(charged_a - 250), "a rejection frees its amount");
        let trail: Vec<&str> = record["audit"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        for action in ["refund.request", "refund.approve", "refund.reject"] {
            assert!(trail.contains(&action), "{action} in {trail:?}");
        }

        // Lookups are audited: who looked at whom.
        let user = record["user_id"].as_str().unwrap();
        let charges = http.get(app.url(&format!("/api/v1/users/{user}/charges?section=attempts"))).bearer_auth(&support).send().await.unwrap();
        assert_eq!(charges.status(), StatusCode::OK);
        let charges: Value = charges.json().await.unwrap();
        let attempt = &charges["rows"]["rows"][0];
        assert!(attempt["idempotency_key"].as_str().unwrap().starts_with("charge:"), "{attempt}");
        assert_eq!(attempt["outcome"], "succeeded");
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        let looked: Vec<_> = audit.entries.iter().filter(|e| e.action == "user.view" || e.action == "invoice.view").collect();
        assert!(looked.iter().any(|e| e.action == "user.view" && e.object_id.as_deref() == Some(user) && e.actor == email_of(Role::Support)));
        assert!(looked.iter().any(|e| e.action == "invoice.view" && e.object_id.as_deref() == Some(a.to_string().as_str())));

        // The dashboard's pages render the same, on the server, for support.
        let browser = app.signed_in(&email_of(Role::Support)).await;
        for (page, marker) in [
            (format!("/users?q={user}"), "data-testid=\"user-row\""),
            (format!("/users/{user}"), "data-testid=\"week-strip\""),
            (format!("/users/{user}?tab=refunds"), "data-testid=\"refund-row\""),
            (format!("/invoices/{a}"), "data-testid=\"refund-panel\""),
            (format!("/invoices/{a}/receipt"), "data-testid=\"receipt-paid\""),
        ] {
            let response = browser.get(app.url(&page)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            let html = response.text().await.unwrap();
            assert!(html.contains(marker), "{page} shows {marker}");
        }
    }
}

on_both_databases! {
    // A week's refunds stop with its run: while finance has the (completed) run paused, a refund
    // asked for is written but not sent; once resumed, it goes out, once.
    async fn refunds_stop_with_their_weeks_run(kind: Kind) {
        let Charged { app, sim } = charged_week(kind, &[]).await;
        let (invoice, _, _) = charged_invoices(&app.db).await[0].clone();
        let (run,): (i64,) = rows(&app.db, "SELECT id FROM runs").await[0];
        let token = app.token_for(&email_of(Role::Finance)).await;
        let http = reqwest::Client::new();
        let control = |action: &'static str| {
            let (http, token, url) = (http.clone(), token.clone(), app.url(&format!("/api/v1/runs/{run}/{action}")));
            async move {
                let answer = http.post(url).bearer_auth(token).json(&json!({ "reason": "refunds look wrong" })).send().await.unwrap();
                assert_eq!(answer.status(), 200, "{action}: {}", answer.text().await.unwrap());
            }
        };
        control("pause").await;
        let (status, body) = refund(&http, &app, &token, invoice, json!({ "amount": "0.25", "reason": "duplicate", "request_id": "while-paused" })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(provider_refunds(&sim, invoice).await, (0, 0), "nothing sent while the run is paused");
        let state: Vec<(String,)> = rows(&app.db, "SELECT state FROM refunds").await;
        assert_eq!(state, vec![("pending".to_owned(),)]);
        control("resume").await;
        settled(&app.db).await;
        assert_eq!(provider_refunds(&sim, invoice).await, (1, 25), "sent once, after the resume");
    }
}

on_both_databases! {
    // Every amount in its own currency: the week was billed in USD and the product now runs with
    // JPY configured. Support's limits (in JPY) are never compared with a USD refund: refused,
    // naming the field; finance's refund goes out, and its notice says 0.50, not 50.
    async fn amounts_are_never_mixed_across_currencies(kind: Kind) {
        let smtp = support::receivers::SmtpReceiver::start(0).await;
        let env = [("BILLING_CURRENCY", "JPY"), ("SMTP_URL", smtp.url.as_str()), ("MAIL_FROM", "Billing <billing@test.example>")];
        let Charged { app, sim: _sim } = support::charged_week_with(kind, &[], &env).await;
        app.db.put_setting("alerts", &json!({ "customer_notices": true }), "test").await.unwrap();
        let (invoice, user, _) = charged_invoices(&app.db).await[0].clone();
        let http = reqwest::Client::new();
        let support_token = app.token_for(&email_of(Role::Support)).await;
        let (status, answer) = refund(&http, &app, &support_token, invoice, json!({ "amount": "0.10", "reason": "duplicate", "request_id": "support-usd" })).await;
        assert_eq!((status, answer["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("amount")), "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("JPY"), "{answer}");
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let (status, answer) = refund(&http, &app, &finance, invoice, json!({ "amount": "0.50", "reason": "duplicate", "request_id": "finance-usd" })).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (email,) = rows::<(String,)>(&app.db, &format!("SELECT email FROM users WHERE id = '{user}'")).await[0].clone();
        let notice = support::eventually(Duration::from_secs(30), || {
            let mail = smtp.received().into_iter().find(|m| m.body.contains(&email));
            async move { mail.ok_or_else(|| "the refund notice never arrived".to_owned()) }
        })
        .await;
        let subject = support::receivers::header(&notice.body, "Subject").unwrap();
        assert!(subject.contains("0.50"), "in the refund's currency: {subject}");
    }
}

//! `billing psp-sim` as a process, spoken to over real HTTP as the product's Stripe client will.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

const KEY: &str = "sk_test_psp_sim_tests";

/// A running simulator, killed when dropped (also when a test fails half-way).
struct PspSim {
    child: Child,
    /// Kept open so the simulator never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    base: String,
    http: reqwest::Client,
}

impl PspSim {
    /// Starts `billing psp-sim --addr 127.0.0.1:0 ARGS…` and waits for its address line.
    fn start(args: &[&str]) -> PspSim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_billing"))
            .args(["psp-sim", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start billing psp-sim");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the address line");
        let base = match line.trim_end().strip_prefix("psp-sim listening on ") {
            Some(url) if url.starts_with("http://127.0.0.1:") => url.to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("unexpected first line: {line:?}");
            }
        };
        PspSim { child, _stdout: stdout, base, http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A form POST with the test key, and an `Idempotency-Key` when given.
    async fn post(&self, path: &str, form: &[(&str, &str)], key: Option<&str>) -> reqwest::Response {
        let mut request = self.http.post(self.url(path)).bearer_auth(KEY).form(form);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("POST answered")
    }

    /// A POST that must succeed; its JSON.
    async fn create(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self.post(path, form, None).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self.http.get(self.url(path)).bearer_auth(KEY).send().await.expect("GET answered");
        (response.status(), response.json().await.expect("JSON"))
    }

    async fn ledger(&self) -> Vec<Value> {
        let response = self.http.get(self.url("/sim/ledger")).send().await.expect("ledger answered");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        body["entries"].as_array().expect("entries").clone()
    }

    async fn set_faults(&self, faults: Value) -> Value {
        let response =
            self.http.put(self.url("/sim/faults")).json(&faults).send().await.expect("faults answered");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("JSON")
    }

    /// A JSON POST to one of the simulator's test controls (`/sim/…`): its status and JSON.
    async fn control(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url(path)).json(&body).send().await.expect("control answered");
        (response.status(), response.json().await.expect("JSON"))
    }

    /// A successful off-session payment of `amount` cents: `(payment intent id, charge id)`.
    async fn charge(&self, amount: &str, invoice: &str) -> (String, String) {
        let (customer, method) = self.customer_with_card("tok_visa").await;
        let intent = self.create("/v1/payment_intents", &payment(&customer, &method, amount, invoice)).await;
        let charge = intent["latest_charge"].as_str().expect("latest_charge").to_owned();
        (id_of(&intent, "pi_"), charge)
    }

    /// Opens a dispute on `charge` (the cardholder's bank's move); the dispute.
    async fn dispute(&self, body: Value) -> Value {
        let (status, dispute) = self.control("/sim/disputes", body).await;
        assert_eq!(status, StatusCode::OK, "{dispute}");
        dispute
    }

    /// A customer with a card attached: `(customer id, payment method id)`.
    async fn customer_with_card(&self, token: &str) -> (String, String) {
        let customer = self
            .create(
                "/v1/customers",
                &[("email", "rider@example.test"), ("name", "Rider"), ("metadata[user_id]", "u1")],
            )
            .await;
        let customer = id_of(&customer, "cus_");
        let method = self.create("/v1/payment_methods", &[("type", "card"), ("card[token]", token)]).await;
        let method = id_of(&method, "pm_");
        let attached = self
            .create(&format!("/v1/payment_methods/{method}/attach"), &[("customer", customer.as_str())])
            .await;
        assert_eq!(attached["customer"], customer.as_str());
        (customer, method)
    }
}

impl Drop for PspSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id_of(object: &Value, prefix: &str) -> String {
    let id = object["id"].as_str().unwrap_or_else(|| panic!("no id in {object}"));
    assert!(id.starts_with(prefix), "{id} should start with {prefix}");
    id.to_owned()
}

/// An off-session payment of `amount` cents with the metadata the product sends.
fn payment<'a>(
    customer: &'a str,
    method: &'a str,
    amount: &'a str,
    invoice: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("amount", amount),
        ("currency", "usd"),
        ("customer", customer),
        ("payment_method", method),
        ("confirm", "true"),
        ("off_session", "true"),
        ("metadata[invoice_id]", invoice),
        ("metadata[user_id]", "u1"),
        ("metadata[week]", "2026-W48"),
    ]
}

fn kinds(ledger: &[Value]) -> Vec<&str> {
    ledger.iter().map(|e| e["kind"].as_str().expect("kind")).collect()
}

#[tokio::test]
async fn requests_without_a_test_key_are_refused() {
    let sim = PspSim::start(&[]);
    let http = reqwest::Client::new();
    let form = [("email", "a@example.test")];
    let without = http.post(sim.url("/v1/customers")).form(&form).send().await.expect("answered");
    assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
    let body: Value = without.json().await.expect("JSON");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"].as_str().expect("message").contains("API key"));
    for bad in ["sk_live_123456789012", "not_a_key", "sk_test_"] {
        let response = http.get(sim.url("/v1/charges")).bearer_auth(bad).send().await.expect("answered");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let unknown = http.get(sim.url("/v1/subscriptions")).bearer_auth(KEY).send().await.expect("answered");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = unknown.json().await.expect("JSON");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(sim.ledger().await.is_empty(), "the ledger needs no key and nothing was made");
}

#[tokio::test]
async fn a_charge_succeeds_and_is_in_the_ledger() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let response = sim
        .post("/v1/payment_intents", &payment(&customer, &method, "1230", "2026-W48/u1"), Some("inv-1"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("idempotent-replayed").is_none(), "the first answer is not a replay");
    let intent: Value = response.json().await.expect("JSON");
    let intent_id = id_of(&intent, "pi_");
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 1230);
    assert_eq!(intent["currency"], "usd");
    assert!(intent["created"].is_i64());
    assert_eq!(intent["metadata"]["invoice_id"], "2026-W48/u1");
    let charge = intent["latest_charge"].as_str().expect("latest_charge is an id").to_owned();
    assert!(charge.starts_with("ch_"));

    let (status, fetched) = sim.get(&format!("/v1/payment_intents/{intent_id}")).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &intent));
    let (status, missing) = sim.get("/v1/payment_intents/pi_nope").await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("resource_missing"))
    );

    let ledger = sim.ledger().await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let entry = &ledger[0];
    assert_eq!(entry["kind"], "charge");
    assert_eq!(entry["id"], charge.as_str());
    assert_eq!(entry["amount"], 1230);
    assert_eq!(entry["currency"], "usd");
    assert_eq!(entry["customer"], customer.as_str());
    assert_eq!(entry["payment_intent"], intent_id.as_str());
    assert_eq!(entry["idempotency_key"], "inv-1");
    assert_eq!(entry["metadata"], json!({"invoice_id": "2026-W48/u1", "user_id": "u1", "week": "2026-W48"}));
    let at = entry["created_at"].as_str().expect("created_at");
    let parsed = chrono::DateTime::parse_from_rfc3339(at).expect("RFC 3339");
    assert_eq!(&at[19..20], ".", "milliseconds: {at}");
    assert!(at.ends_with("+00:00"), "an explicit offset: {at}");
    assert!((chrono::Utc::now() - parsed.to_utc()).num_seconds() < 60);

    let (_, charges) = sim.get(&format!("/v1/charges?customer={customer}")).await;
    assert_eq!(charges["data"][0]["id"], charge.as_str());
    assert_eq!(charges["data"][0]["status"], "succeeded");
}

/// Stripe forgets an idempotency key 24 hours after it: so does the simulator, by its own clock,
/// which `POST /sim/clock` moves. The same key then charges again: what a product must never do.
#[tokio::test]
async fn a_key_is_forgotten_24_hours_later_by_the_simulators_clock() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let form = payment(&customer, &method, "500", "2026-W48/u1");
    let first: Value =
        sim.post("/v1/payment_intents", &form, Some("day-old")).await.json().await.expect("JSON");
    let clock = |seconds: i64| {
        sim.http.post(sim.url("/sim/clock")).json(&serde_json::json!({ "advance_seconds": seconds })).send()
    };
    assert_eq!(clock(23 * 3600).await.expect("answered").status(), StatusCode::OK);
    let replay = sim.post("/v1/payment_intents", &form, Some("day-old")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true", "23 h later: replayed");
    let moved: Value = clock(3600).await.expect("answered").json().await.expect("JSON");
    assert_eq!(moved["offset_seconds"], 24 * 3600);
    let again: Value =
        sim.post("/v1/payment_intents", &form, Some("day-old")).await.json().await.expect("JSON");
    assert_ne!(again["id"], first["id"], "24 h later the key is forgotten: a second charge");
    assert_eq!(sim.ledger().await.iter().filter(|e| e["kind"] == "charge").count(), 2);
    assert!(
        again["created"].as_i64().unwrap() >= first["created"].as_i64().unwrap() + 24 * 3600,
        "objects are made on the simulator's clock"
    );
    for bad in [serde_json::json!({ "advance_seconds": -1 }), serde_json::json!({ "advance": 5 })] {
        let refused = sim.http.post(sim.url("/sim/clock")).json(&bad).send().await.expect("answered");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn the_same_key_replays_and_no_key_charges_again() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let form = payment(&customer, &method, "500", "2026-W48/u1");
    let first = sim.post("/v1/payment_intents", &form, Some("k1")).await;
    let first_request = first.headers()["request-id"].to_str().expect("ASCII").to_owned();
    let first: Value = first.json().await.expect("JSON");

    // The same parameters in another order are the same request.
    let reordered: Vec<_> = form.iter().rev().copied().collect();
    let again = sim.post("/v1/payment_intents", &reordered, Some("k1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["original-request"], first_request.as_str());
    assert_eq!(again.json::<Value>().await.expect("JSON"), first);
    assert_eq!(sim.ledger().await.len(), 1, "a replay moves no money");

    let other = payment(&customer, &method, "501", "2026-W48/u1");
    let refused = sim.post("/v1/payment_intents", &other, Some("k1")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert!(body["error"]["message"].as_str().expect("message").starts_with(
        "Keys for idempotent requests can only be used with the same parameters they were first used with"
    ));

    // Without a key, a retry is a second charge: the duplicate the ledger must reveal.
    for _ in 0..2 {
        assert_eq!(sim.post("/v1/payment_intents", &form, None).await.status(), StatusCode::OK);
    }
    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["charge", "charge", "charge"]);
    let keys: Vec<&Value> = ledger.iter().map(|e| &e["idempotency_key"]).collect();
    assert_eq!(keys, [&json!("k1"), &Value::Null, &Value::Null]);
    let same_invoice = ledger.iter().filter(|e| e["metadata"]["invoice_id"] == "2026-W48/u1").count();
    assert_eq!(same_invoice, 3);
}

#[tokio::test]
async fn refused_parameters_are_not_saved_under_the_key() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let mut form = payment(&customer, &method, "700", "2026-W48/u1");
    form.retain(|(name, _)| *name != "amount");
    let missing = sim.post("/v1/payment_intents", &form, Some("k2")).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body: Value = missing.json().await.expect("JSON");
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["param"].as_str()),
        (Some("invalid_request_error"), Some("amount"))
    );

    let stranger = payment("cus_nobody", &method, "700", "2026-W48/u1");
    let unknown = sim.post("/v1/payment_intents", &stranger, Some("k2")).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let body: Value = unknown.json().await.expect("JSON");
    assert_eq!(body["error"]["param"], "customer");
    assert_eq!(body["error"]["code"], "resource_missing");

    let fixed =
        sim.post("/v1/payment_intents", &payment(&customer, &method, "700", "2026-W48/u1"), Some("k2")).await;
    assert_eq!(fixed.status(), StatusCode::OK, "the key was never used: the corrected request runs");
    assert!(fixed.headers().get("idempotent-replayed").is_none());
    assert_eq!(kinds(&sim.ledger().await), ["charge"]);
}

#[tokio::test]
async fn a_declined_card_answers_402_and_is_recorded() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_chargeDeclined").await;
    let form = payment(&customer, &method, "900", "2026-W48/u2");
    let declined = sim.post("/v1/payment_intents", &form, Some("d1")).await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let body: Value = declined.json().await.expect("JSON");
    let error = &body["error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], "generic_decline");
    assert!(error["message"].is_string());
    assert_eq!(error["payment_intent"]["status"], "requires_payment_method");
    assert_eq!(error["payment_intent"]["metadata"]["invoice_id"], "2026-W48/u2");
    let charge = error["charge"].as_str().expect("the failed charge");

    let replay = sim.post("/v1/payment_intents", &form, Some("d1")).await;
    assert_eq!(replay.status(), StatusCode::PAYMENT_REQUIRED, "declines are saved and replayed");
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["decline"]);
    assert_eq!(ledger[0]["id"], charge);
    assert_eq!(ledger[0]["decline_code"], "generic_decline");
    assert_eq!(ledger[0]["customer"], customer.as_str());
    let (_, charges) = sim.get("/v1/charges").await;
    assert_eq!(charges["data"][0]["status"], "failed", "Stripe lists failed charges too");

    // decline_rate makes a good card decline too.
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    sim.set_faults(json!({"decline_rate": 1.0})).await;
    let forced =
        sim.post("/v1/payment_intents", &payment(&customer, &method, "900", "2026-W48/u3"), None).await;
    assert_eq!(forced.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(kinds(&sim.ledger().await), ["decline", "decline"]);

    let reset = sim.http.post(sim.url("/sim/reset")).send().await.expect("reset answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert!(sim.ledger().await.is_empty());
    let (status, _) = sim.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "reset forgets every object");
}

#[tokio::test]
async fn refunds_cannot_exceed_what_was_charged() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let intent = sim.create("/v1/payment_intents", &payment(&customer, &method, "1000", "2026-W48/u1")).await;
    let intent_id = id_of(&intent, "pi_");
    let charge = intent["latest_charge"].as_str().expect("charge").to_owned();

    let refund = |form: Vec<(&'static str, String)>, key: &'static str| {
        let sim = &sim;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = sim.post("/v1/refunds", &form, Some(key)).await;
            (response.status(), response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, partial) = refund(
        vec![
            ("payment_intent", intent_id.clone()),
            ("amount", "300".into()),
            ("metadata[refund_id]", "rf1".into()),
            ("metadata[invoice_id]", "2026-W48/u1".into()),
        ],
        "r1",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{partial}");
    assert_eq!((partial["object"].as_str(), partial["amount"].as_i64()), (Some("refund"), Some(300)));
    assert_eq!(partial["status"], "succeeded");
    id_of(&partial, "re_");

    let (status, rest) = refund(vec![("charge", charge.clone())], "r2").await;
    assert_eq!((status, rest["amount"].as_i64()), (StatusCode::OK, Some(700)), "the default is what remains");

    let (status, over) = refund(vec![("charge", charge.clone()), ("amount", "1".into())], "r3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(over["error"]["type"], "invalid_request_error");
    assert_eq!(over["error"]["code"], "charge_already_refunded");

    let second = sim.create("/v1/payment_intents", &payment(&customer, &method, "500", "2026-W48/u4")).await;
    let (status, too_much) =
        refund(vec![("payment_intent", id_of(&second, "pi_")), ("amount", "501".into())], "r4").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(too_much["error"]["code"], "amount_too_large");

    let (_, charged) = sim.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(
        (charged["amount_refunded"].as_i64(), charged["refunded"].as_bool()),
        (Some(1000), Some(true))
    );
    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["charge", "refund", "refund", "charge"]);
    assert_eq!(ledger[1]["id"], partial["id"]);
    assert_eq!(ledger[1]["charge"], charge.as_str());
    assert_eq!(ledger[1]["customer"], customer.as_str());
    assert_eq!(ledger[1]["idempotency_key"], "r1");
    assert_eq!(ledger[1]["metadata"]["refund_id"], "rf1");
    let (_, refunds) = sim.get("/v1/refunds").await;
    assert_eq!(refunds["data"][0]["id"], rest["id"], "newest first");
}

#[tokio::test]
async fn transfers_reach_connected_accounts() {
    let sim = PspSim::start(&[]);
    let account = sim
        .create(
            "/v1/accounts",
            &[
                ("type", "express"),
                ("email", "driver@example.test"),
                ("capabilities[transfers][requested]", "true"),
                ("metadata[driver_id]", "d1"),
            ],
        )
        .await;
    let account = id_of(&account, "acct_");
    let form = [
        ("amount", "800"),
        ("currency", "usd"),
        ("destination", account.as_str()),
        ("transfer_group", "2026-W48"),
        ("metadata[payout_id]", "2026-W48/d1"),
        ("metadata[driver_id]", "d1"),
        ("metadata[week]", "2026-W48"),
    ];
    let transfer = sim.post("/v1/transfers", &form, Some("p1")).await;
    assert_eq!(transfer.status(), StatusCode::OK);
    let transfer: Value = transfer.json().await.expect("JSON");
    let transfer_id = id_of(&transfer, "tr_");
    assert_eq!(
        (transfer["object"].as_str(), transfer["destination"].as_str()),
        (Some("transfer"), Some(account.as_str()))
    );

    let nowhere = sim
        .post("/v1/transfers", &[("amount", "800"), ("currency", "usd"), ("destination", "acct_nope")], None)
        .await;
    assert_eq!(nowhere.status(), StatusCode::BAD_REQUEST);
    assert_eq!(nowhere.json::<Value>().await.expect("JSON")["error"]["param"], "destination");

    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["transfer"]);
    assert_eq!(ledger[0]["id"], transfer_id.as_str());
    assert_eq!(ledger[0]["destination"], account.as_str());
    assert!(ledger[0].get("customer").is_none(), "a transfer has a destination, not a customer");
    assert_eq!(ledger[0]["amount"], 800);
    assert_eq!(ledger[0]["metadata"]["payout_id"], "2026-W48/d1");
    let (_, listed) = sim.get(&format!("/v1/transfers?destination={account}")).await;
    assert_eq!(listed["data"][0]["id"], transfer_id.as_str());
}

#[tokio::test]
async fn lists_page_newest_first() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    for amount in ["101", "102", "103", "104", "105"] {
        sim.create("/v1/payment_intents", &payment(&customer, &method, amount, "2026-W48/u1")).await;
    }
    let amounts = |page: &Value| -> Vec<i64> {
        page["data"].as_array().expect("data").iter().map(|c| c["amount"].as_i64().expect("amount")).collect()
    };
    let (status, first) = sim.get("/v1/charges?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((first["object"].as_str(), first["url"].as_str()), (Some("list"), Some("/v1/charges")));
    assert_eq!((amounts(&first), first["has_more"].as_bool()), (vec![105, 104], Some(true)));
    let last = first["data"][1]["id"].as_str().expect("id");
    let (_, second) = sim.get(&format!("/v1/charges?limit=2&starting_after={last}")).await;
    assert_eq!((amounts(&second), second["has_more"].as_bool()), (vec![103, 102], Some(true)));
    let last = second["data"][1]["id"].as_str().expect("id");
    let (_, third) = sim.get(&format!("/v1/charges?limit=2&starting_after={last}")).await;
    assert_eq!((amounts(&third), third["has_more"].as_bool()), (vec![101], Some(false)));
    let oldest = third["data"][0]["id"].as_str().expect("id");
    let (_, back) = sim.get(&format!("/v1/charges?limit=2&ending_before={oldest}")).await;
    assert_eq!((amounts(&back), back["has_more"].as_bool()), (vec![103, 102], Some(true)));

    let (_, everything) = sim.get("/v1/payment_intents").await;
    assert_eq!(amounts(&everything), [105, 104, 103, 102, 101], "the default limit is 10");
    let (_, nobody) = sim.get("/v1/charges?customer=cus_nobody").await;
    assert_eq!((amounts(&nobody), nobody["has_more"].as_bool()), (vec![], Some(false)));
    for bad in [
        "/v1/charges?limit=0",
        "/v1/charges?limit=101",
        "/v1/charges?starting_after=ch_nope",
        "/v1/charges?colour=red",
    ] {
        let (status, body) = sim.get(bad).await;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request_error")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn lists_filter_by_creation_time() {
    let sim = PspSim::start(&[]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    sim.create("/v1/payment_intents", &payment(&customer, &method, "101", "2026-W48/u1")).await;
    let (_, listed) = sim.get("/v1/payment_intents").await;
    let created = listed["data"][0]["created"].as_i64().expect("created");
    let count = |page: &Value| page["data"].as_array().expect("data").len();
    for (query, expected) in [
        (format!("created={created}"), 1),
        (format!("created={}", created + 1), 0),
        (format!("created[gte]={created}&created[lt]={}", created + 1), 1),
        (format!("created[gt]={created}"), 0),
        (format!("created[lte]={}", created - 1), 0),
        (format!("created[gte]={}&created[lte]={created}", created - 60), 1),
    ] {
        for list in ["/v1/payment_intents", "/v1/charges"] {
            let (status, page) = sim.get(&format!("{list}?{query}")).await;
            assert_eq!((status, count(&page)), (StatusCode::OK, expected), "{list}?{query}");
        }
    }
    for bad in ["created=soon", "created[after]=1", "created[gte]=x"] {
        let (status, body) = sim.get(&format!("/v1/payment_intents?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"]["param"].as_str().is_some_and(|p| p.starts_with("created")), "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_timeout_after_the_charge_is_replayed_not_charged_twice() {
    let sim = PspSim::start(&["--timeout-after-charge", "1", "--hang-ms", "10000"]);
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    let form = payment(&customer, &method, "2500", "2026-W48/u9");
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().expect("client");
    let lost = impatient
        .post(sim.url("/v1/payment_intents"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "t1")
        .form(&form)
        .send()
        .await
        .expect_err("the answer is held past the client's timeout");
    assert!(lost.is_timeout(), "{lost}");
    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["charge"], "the charge was made although the client never heard");

    let started = Instant::now();
    let retry = sim.post("/v1/payment_intents", &form, Some("t1")).await;
    assert!(started.elapsed() < Duration::from_secs(5), "a replay is not held");
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let intent: Value = retry.json().await.expect("JSON");
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["latest_charge"], ledger[0]["id"], "the same charge");
    assert_eq!(kinds(&sim.ledger().await), ["charge"], "exactly one charge");
}

#[tokio::test]
async fn injected_errors_do_nothing_and_are_not_saved() {
    let sim = PspSim::start(&["--error-rate", "1", "--seed", "7"]);
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        let response =
            sim.post("/v1/customers", &[("email", "a@example.test")], Some(&format!("c{attempt}"))).await;
        let status = response.status();
        assert_eq!(response.headers()["stripe-should-retry"], "true");
        let body: Value = response.json().await.expect("JSON");
        let expected = if status == StatusCode::TOO_MANY_REQUESTS { "rate_limit_error" } else { "api_error" };
        assert_eq!(body["error"]["type"], expected, "{status}: {body}");
        statuses.push(status);
    }
    assert!(statuses.contains(&StatusCode::INTERNAL_SERVER_ERROR), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::TOO_MANY_REQUESTS].contains(s)));
    let (_, customers) = sim.get("/v1/customers").await;
    assert_eq!(customers["data"], json!([]), "nothing was made");

    let faults = sim.set_faults(json!({"error_rate": 0.0})).await;
    assert_eq!((faults["error_rate"].as_f64(), faults["seed"].as_u64()), (Some(0.0), Some(7)));
    let (customer, method) = sim.customer_with_card("tok_visa").await;
    sim.set_faults(json!({"error_rate": 1.0})).await;
    let form = payment(&customer, &method, "1500", "2026-W48/u5");
    let failed = sim.post("/v1/payment_intents", &form, Some("e1")).await;
    assert!(failed.status().is_server_error() || failed.status() == StatusCode::TOO_MANY_REQUESTS);
    assert!(sim.ledger().await.is_empty(), "a fault moves no money");

    sim.set_faults(json!({"error_rate": 0.0})).await;
    let retried = sim.post("/v1/payment_intents", &form, Some("e1")).await;
    assert_eq!(retried.status(), StatusCode::OK, "nothing was saved: the retry runs");
    assert!(retried.headers().get("idempotent-replayed").is_none());
    assert_eq!(kinds(&sim.ledger().await), ["charge"]);

    let bad =
        sim.http.put(sim.url("/sim/faults")).json(&json!({"error_rate": 2})).send().await.expect("answered");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.json::<Value>().await.expect("JSON")["error"]["param"], "error_rate");
}

#[tokio::test]
async fn a_key_in_use_is_refused_with_409() {
    let sim = PspSim::start(&["--latency-ms", "2000"]);
    let form = [("email", "slow@example.test")];
    let (first, second) = tokio::join!(sim.post("/v1/customers", &form, Some("busy")), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sim.post("/v1/customers", &form, Some("busy")).await
    });
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::CONFLICT);
    let body: Value = second.json().await.expect("JSON");
    assert_eq!(body["error"]["type"], "idempotency_error");
    assert_eq!(body["error"]["code"], "idempotency_key_in_use");
    let third = sim.post("/v1/customers", &form, Some("busy")).await;
    assert_eq!(third.headers()["idempotent-replayed"], "true");
    let first: Value = first.json().await.expect("JSON");
    assert_eq!(third.json::<Value>().await.expect("JSON")["id"], first["id"]);
}

#[tokio::test]
async fn bad_options_exit_2_naming_the_option() {
    let cases: [(&[&str], &str); 5] = [
        (&["--error-rate", "1.5"], "--error-rate"),
        (&["--decline-rate=-0.1"], "--decline-rate"),
        (&["--timeout-after-charge", "NaN"], "--timeout-after-charge"),
        (&["--latency-ms", "60001"], "--latency-ms"),
        (&["--error-rate", "often"], "--error-rate"),
    ];
    for (args, option) in cases {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_billing"))
            .args(["psp-sim", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), child)
            .await
            .unwrap_or_else(|_| panic!("{args:?} should be refused, not served"))
            .expect("ran");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.lines().next().unwrap_or_default().contains(option), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn sigterm_stops_it_cleanly() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let mut sim = PspSim::start(&[]);
    sim.create("/v1/customers", &[("email", "a@example.test")]).await;
    let pid = Pid::from_raw(i32::try_from(sim.child.id()).expect("a pid fits in i32"));
    kill(pid, Signal::SIGTERM).expect("signal sent");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = sim.child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// Error `param` and `code` of a refusal, for compact assertions.
fn refusal(body: &Value) -> (Option<&str>, Option<&str>) {
    (body["error"]["param"].as_str(), body["error"]["code"].as_str())
}

#[tokio::test]
async fn a_dispute_withdraws_the_money_and_blocks_refunds_until_won() {
    let sim = PspSim::start(&[]);
    let (intent, charge) = sim.charge("1230", "2026-W48/u1").await;
    let dispute = sim.dispute(json!({ "charge": charge, "reason": "fraudulent" })).await;
    let id = id_of(&dispute, "dp_");
    assert_eq!(dispute["object"], "dispute");
    assert_eq!((dispute["amount"].as_i64(), dispute["currency"].as_str()), (Some(1230), Some("usd")));
    assert_eq!(
        (dispute["charge"].as_str(), dispute["payment_intent"].as_str()),
        (Some(&*charge), Some(&*intent))
    );
    assert_eq!(
        (dispute["reason"].as_str(), dispute["status"].as_str()),
        (Some("fraudulent"), Some("needs_response"))
    );
    assert_eq!(
        dispute["metadata"]["invoice_id"], "2026-W48/u1",
        "the simulator copies the charge's metadata"
    );
    assert_eq!(
        (dispute["is_charge_refundable"].as_bool(), dispute["livemode"].as_bool()),
        (Some(false), Some(false))
    );
    let details = &dispute["evidence_details"];
    let created = dispute["created"].as_i64().expect("created");
    assert_eq!(details["due_by"].as_i64(), Some(created + 7 * 24 * 3600));
    assert_eq!(
        (details["has_evidence"].as_bool(), details["submission_count"].as_i64()),
        (Some(false), Some(0))
    );
    assert_eq!(dispute["evidence"]["uncategorized_text"], Value::Null);
    let withdrawal = &dispute["balance_transactions"][0];
    assert_eq!(
        (withdrawal["amount"].as_i64(), withdrawal["fee"].as_i64(), withdrawal["net"].as_i64()),
        (Some(-1230), Some(1500), Some(-2730))
    );
    assert_eq!(withdrawal["reporting_category"], "dispute");

    let (status, fetched) = sim.get(&format!("/v1/disputes/{id}")).await;
    assert_eq!((status, &fetched), (StatusCode::OK, &dispute));
    let (_, listed) = sim.get(&format!("/v1/disputes?charge={charge}")).await;
    assert_eq!((listed["object"].as_str(), listed["url"].as_str()), (Some("list"), Some("/v1/disputes")));
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let (_, none) = sim.get("/v1/disputes?payment_intent=pi_nobody").await;
    assert_eq!(none["data"], json!([]));
    let (_, charged) = sim.get(&format!("/v1/charges/{charge}")).await;
    assert_eq!(charged["disputed"], true);

    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["charge", "dispute", "dispute_fee"]);
    for (entry, amount) in [(&ledger[1], 1230), (&ledger[2], 1500)] {
        assert_eq!((entry["id"].as_str(), entry["amount"].as_i64()), (Some(&*id), Some(amount)));
        assert_eq!(
            (entry["charge"].as_str(), entry["payment_intent"].as_str()),
            (Some(&*charge), Some(&*intent))
        );
        assert_eq!((&entry["customer"], &entry["currency"]), (&ledger[0]["customer"], &json!("usd")));
        assert_eq!(entry["metadata"], ledger[0]["metadata"]);
        assert_eq!(entry["idempotency_key"], Value::Null);
    }

    for form in [[("charge", charge.as_str())], [("payment_intent", intent.as_str())]] {
        let refused = sim.post("/v1/refunds", &form, None).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(
            (body["error"]["type"].as_str(), refusal(&body).1),
            (Some("invalid_request_error"), Some("charge_disputed"))
        );
        assert!(body["error"]["message"].as_str().expect("message").contains("has a dispute"), "{body}");
    }

    let evidence = [
        ("evidence[uncategorized_text]", "The rider took the rides on these dates."),
        ("evidence[customer_email_address]", "rider@example.test"),
        ("evidence[service_date]", "2026-11-23"),
        ("metadata[case]", "c-1"),
        ("submit", "true"),
    ];
    let submitted = sim.post(&format!("/v1/disputes/{id}"), &evidence, Some("evidence-1")).await;
    assert_eq!(submitted.status(), StatusCode::OK);
    let submitted: Value = submitted.json().await.expect("JSON");
    assert_eq!(submitted["status"], "under_review");
    assert_eq!(submitted["evidence"]["uncategorized_text"], "The rider took the rides on these dates.");
    assert_eq!(submitted["evidence"]["service_date"], "2026-11-23");
    let details = &submitted["evidence_details"];
    assert_eq!(
        (details["has_evidence"].as_bool(), details["submission_count"].as_i64()),
        (Some(true), Some(1))
    );
    assert_eq!(
        (submitted["metadata"]["case"].as_str(), submitted["metadata"]["invoice_id"].as_str()),
        (Some("c-1"), Some("2026-W48/u1"))
    );
    let replay = sim.post(&format!("/v1/disputes/{id}"), &evidence, Some("evidence-1")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.expect("JSON"), submitted);
    let (_, stored) = sim.get(&format!("/v1/disputes/{id}")).await;
    assert_eq!(stored, submitted, "a replay submits nothing more");
    let again = sim.post(&format!("/v1/disputes/{id}"), &[("evidence[customer_name]", "Rider")], None).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "evidence is submitted once");

    let (status, won) = sim.control(&format!("/sim/disputes/{id}/close"), json!({ "outcome": "won" })).await;
    assert_eq!((status, won["status"].as_str()), (StatusCode::OK, Some("won")));
    let reinstated = &won["balance_transactions"][1];
    assert_eq!(
        (reinstated["amount"].as_i64(), reinstated["fee"].as_i64(), reinstated["net"].as_i64()),
        (Some(1230), Some(0), Some(1230))
    );
    assert_eq!(reinstated["reporting_category"], "dispute_reversal");
    let ledger = sim.ledger().await;
    assert_eq!(kinds(&ledger), ["charge", "dispute", "dispute_fee", "dispute_reversal"]);
    assert_eq!((ledger[3]["id"].as_str(), ledger[3]["amount"].as_i64()), (Some(&*id), Some(1230)));
    assert_eq!(ledger[3]["charge"], charge.as_str());
    let (status, twice) =
        sim.control(&format!("/sim/disputes/{id}/close"), json!({ "outcome": "lost" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a dispute closes once: {twice}");
    let evidence_late =
        sim.post(&format!("/v1/disputes/{id}"), &[("evidence[customer_name]", "Rider")], None).await;
    assert_eq!(evidence_late.status(), StatusCode::BAD_REQUEST, "no evidence on a closed dispute");
    let closed: Value = evidence_late.json().await.expect("JSON");
    assert!(closed["error"]["message"].as_str().expect("message").contains("closed"), "{closed}");

    let refund = sim.post("/v1/refunds", &[("charge", charge.as_str()), ("amount", "230")], None).await;
    assert_eq!(refund.status(), StatusCode::OK, "a won dispute leaves the charge refundable");
}

#[tokio::test]
async fn a_lost_dispute_keeps_the_money_and_the_charge_unrefundable() {
    let sim = PspSim::start(&[]);
    let (_, charge) = sim.charge("1000", "2026-W48/u2").await;
    let refund = sim.post("/v1/refunds", &[("charge", charge.as_str()), ("amount", "300")], None).await;
    assert_eq!(refund.status(), StatusCode::OK);
    let (status, over) = sim.control("/sim/disputes", json!({ "charge": charge, "amount": 701 })).await;
    assert_eq!(
        (status, refusal(&over)),
        (StatusCode::BAD_REQUEST, (Some("amount"), Some("amount_too_large")))
    );
    let dispute =
        sim.dispute(json!({ "charge": charge, "amount": 400, "reason": "product_not_received" })).await;
    let id = id_of(&dispute, "dp_");
    assert_eq!(
        (dispute["amount"].as_i64(), dispute["reason"].as_str()),
        (Some(400), Some("product_not_received"))
    );
    let (status, second) = sim.control("/sim/disputes", json!({ "charge": charge })).await;
    assert_eq!(
        (status, refusal(&second)),
        (StatusCode::BAD_REQUEST, (Some("charge"), Some("charge_disputed")))
    );

    let (status, lost) =
        sim.control(&format!("/sim/disputes/{id}/close"), json!({ "outcome": "lost" })).await;
    assert_eq!((status, lost["status"].as_str()), (StatusCode::OK, Some("lost")));
    assert_eq!(lost["balance_transactions"].as_array().expect("transactions").len(), 1, "nothing reinstated");
    assert_eq!(kinds(&sim.ledger().await), ["charge", "refund", "dispute", "dispute_fee"], "no reversal");
    let refused = sim.post("/v1/refunds", &[("charge", charge.as_str())], None).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refusal(&refused.json::<Value>().await.expect("JSON")).1, Some("charge_disputed"));
    let (_, listed) = sim.get("/v1/disputes").await;
    assert_eq!(listed["data"][0]["status"], "lost");
}

#[tokio::test]
async fn dispute_requests_name_the_field_at_fault() {
    let sim = PspSim::start(&[]);
    let (_, charge) = sim.charge("800", "2026-W48/u3").await;
    for (body, param, code) in [
        (json!({ "charge": "ch_nope" }), Some("charge"), Some("resource_missing")),
        (json!({ "reason": "fraudulent" }), Some("charge"), Some("parameter_missing")),
        (json!({ "charge": charge, "amount": 801 }), Some("amount"), Some("amount_too_large")),
        (json!({ "charge": charge, "amount": 0 }), Some("amount"), Some("parameter_invalid_integer")),
        (json!({ "charge": charge, "amount": "8.00" }), Some("amount"), None),
        (json!({ "charge": charge, "reason": "angry" }), Some("reason"), None),
        (json!({ "charge": charge, "colour": "red" }), Some("colour"), None),
    ] {
        let (status, refused) = sim.control("/sim/disputes", body.clone()).await;
        assert_eq!(
            (status, refusal(&refused)),
            (StatusCode::BAD_REQUEST, (param, code)),
            "{body}: {refused}"
        );
        assert_eq!(refused["error"]["type"], "invalid_request_error");
    }
    assert_eq!(kinds(&sim.ledger().await), ["charge"], "refusals move nothing");

    let dispute = sim.dispute(json!({ "charge": charge })).await;
    let id = id_of(&dispute, "dp_");
    assert_eq!(
        (dispute["reason"].as_str(), dispute["amount"].as_i64()),
        (Some("general"), Some(800)),
        "the defaults"
    );
    let (status, bad) = sim.control(&format!("/sim/disputes/{id}/close"), json!({ "outcome": "draw" })).await;
    assert_eq!((status, refusal(&bad).0), (StatusCode::BAD_REQUEST, Some("outcome")));
    let (status, missing) = sim.control("/sim/disputes/dp_nope/close", json!({ "outcome": "won" })).await;
    assert_eq!((status, refusal(&missing).1), (StatusCode::NOT_FOUND, Some("resource_missing")));
    let (status, _) = sim.get("/v1/disputes/dp_nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let path = format!("/v1/disputes/{id}");
    let too_long = "x".repeat(150_001);
    for (form, param) in [
        (vec![("evidence[uncategorized_text]", too_long.as_str())], "evidence[uncategorized_text]"),
        (vec![("evidence[mood]", "calm")], "evidence[mood]"),
        (vec![("evidence[receipt]", "file_123")], "evidence[receipt]"),
    ] {
        let refused = sim.post(&path, &form, None).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{param}");
        let body: Value = refused.json().await.expect("JSON");
        assert_eq!(refusal(&body).0, Some(param), "{body}");
        assert!(body["error"]["message"].as_str().expect("message").contains(param), "{body}");
    }
    let maybe = sim.post(&path, &[("submit", "maybe")], None).await;
    assert_eq!(refusal(&maybe.json::<Value>().await.expect("JSON")).0, Some("submit"));
    let staged = sim.create(&path, &[("evidence[customer_name]", "Rider"), ("submit", "false")]).await;
    assert_eq!(
        (staged["status"].as_str(), staged["evidence_details"]["has_evidence"].as_bool()),
        (Some("needs_response"), Some(true))
    );

    let week = json!({ "advance_seconds": 7 * 24 * 3600 + 1 });
    assert_eq!(sim.control("/sim/clock", week).await.0, StatusCode::OK);
    let late = sim
        .post(&path, &[("evidence[product_description]", "Carpool rides"), ("submit", "true")], None)
        .await;
    assert_eq!(late.status(), StatusCode::BAD_REQUEST, "past due_by");
    let body: Value = late.json().await.expect("JSON");
    assert!(body["error"]["message"].as_str().expect("message").contains("due"), "{body}");
    let (_, unchanged) = sim.get(&path).await;
    assert_eq!(unchanged["status"], "needs_response");

    let reset = sim.http.post(sim.url("/sim/reset")).send().await.expect("reset answered");
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let (status, _) = sim.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "reset forgets disputes");
    let (_, listed) = sim.get("/v1/disputes").await;
    assert_eq!(listed["data"], json!([]));
}

/// Signed events received on a local URL, as the product's webhook endpoint receives them.
struct Hooks {
    url: String,
    events: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Hooks {
    /// Listens on a free port; takes every event whose signature checks out with `secret`,
    /// refuses the others with 400.
    async fn start(secret: &'static str) -> Hooks {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, StatusCode};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("address"));
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let received = events.clone();
        let take = move |headers: HeaderMap, body: Bytes| async move {
            let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
            let now = chrono::Utc::now().timestamp();
            if psp_signature::verify(signature, &body, secret, now).is_err() {
                return StatusCode::BAD_REQUEST;
            }
            let event: Value = serde_json::from_slice(&body).expect("an event is JSON");
            received.lock().expect("events").push(event);
            StatusCode::OK
        };
        let app = axum::Router::new().route("/hooks", axum::routing::post(take));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Hooks { url, events }
    }

    /// The events about disputes received so far, once at least `count` have arrived.
    async fn disputes(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let events: Vec<Value> = self
                .events
                .lock()
                .expect("events")
                .iter()
                .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("charge.dispute.")))
                .cloned()
                .collect();
            if events.len() >= count {
                return events;
            }
            assert!(Instant::now() < deadline, "{count} dispute events expected, got {events:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn dispute_events_are_signed_and_arrive_in_order() {
    const SECRET: &str = "whsec_psp_sim_disputes";
    let hooks = Hooks::start(SECRET).await;
    let sim = PspSim::start(&["--webhook-url", &hooks.url, "--webhook-secret", SECRET]);
    let (_, won_charge) = sim.charge("1500", "2026-W48/u4").await;
    let won = id_of(&sim.dispute(json!({ "charge": won_charge, "reason": "duplicate" })).await, "dp_");
    let events = hooks.disputes(2).await;
    let summary = |events: &[Value]| -> Vec<(String, String)> {
        events
            .iter()
            .map(|e| {
                let object = &e["data"]["object"];
                assert_eq!(e["object"], "event");
                assert_eq!(object["object"], "dispute", "{e}");
                (
                    e["type"].as_str().expect("type").to_owned(),
                    object["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect()
    };
    let created = [
        ("charge.dispute.created".to_owned(), "needs_response".to_owned()),
        ("charge.dispute.funds_withdrawn".to_owned(), "needs_response".to_owned()),
    ];
    assert_eq!(summary(&events), created);

    sim.create(
        &format!("/v1/disputes/{won}"),
        &[("evidence[duplicate_charge_explanation]", "Two weeks, two charges.")],
    )
    .await;
    let events = hooks.disputes(3).await;
    assert_eq!(summary(&events[2..]), [("charge.dispute.updated".to_owned(), "under_review".to_owned())]);
    assert_eq!(
        events[2]["data"]["object"]["evidence"]["duplicate_charge_explanation"],
        "Two weeks, two charges."
    );

    let (status, _) = sim.control(&format!("/sim/disputes/{won}/close"), json!({ "outcome": "won" })).await;
    assert_eq!(status, StatusCode::OK);
    let events = hooks.disputes(5).await;
    assert_eq!(
        summary(&events[3..]),
        [
            ("charge.dispute.closed".to_owned(), "won".to_owned()),
            ("charge.dispute.funds_reinstated".to_owned(), "won".to_owned()),
        ]
    );
    assert!(events.iter().all(|e| e["data"]["object"]["id"] == won.as_str()));
    assert_eq!(
        events[4]["data"]["object"]["balance_transactions"][1]["reporting_category"],
        "dispute_reversal"
    );

    let (_, lost_charge) = sim.charge("700", "2026-W48/u5").await;
    let lost = id_of(&sim.dispute(json!({ "charge": lost_charge })).await, "dp_");
    hooks.disputes(7).await;
    let (status, _) = sim.control(&format!("/sim/disputes/{lost}/close"), json!({ "outcome": "lost" })).await;
    assert_eq!(status, StatusCode::OK);
    let events = hooks.disputes(8).await;
    assert_eq!(
        summary(&events[5..]),
        [created[0].clone(), created[1].clone(), ("charge.dispute.closed".to_owned(), "lost".to_owned())]
    );
    assert!(events[5..].iter().all(|e| e["data"]["object"]["id"] == lost.as_str()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hooks.disputes(8).await.len(), 8, "no funds_reinstated for a loss");

    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().expect("event id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every event has its own id");
    assert!(ids.iter().all(|id| id.starts_with("evt_")));
}

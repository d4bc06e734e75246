//! What comes from outside, fuzzed over HTTP against a real `billing serve` and `billing psp-sim`:
//! ride and user ingestion, the provider's signed webhook, and the simulator's form parser each
//! get arbitrary bytes and near-valid JSON (a valid body with one field replaced by any value,
//! or removed). Never a 5xx, never a dropped connection: a 2xx, or a 4xx whose JSON names the
//! field at fault. Seeded by proptest (`PROPTEST_CASES` cases per endpoint, 48 by default, so
//! that CI runs each briefly; raise it for a longer run).

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use support::{PspSim, StaffedServer};

const SECRET: &str = "whsec_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(json!("9223372036854775808")),
        Just(json!("2026-13-45T99:99:99Z")),
        Just(json!("=HYPERLINK(\"x\")")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body for an endpoint whose valid body is `valid`: arbitrary bytes, or `valid` with one
/// field (at any depth of its first level) replaced by any value or removed.
fn bodies(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    let keys: Vec<String> = valid.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let mutated =
        (proptest::sample::select(keys), proptest::option::of(any_json())).prop_map(move |(key, value)| {
            let mut body = valid.clone();
            match value {
                Some(value) => body[&key] = value,
                None => {
                    body.as_object_mut().unwrap().remove(&key);
                }
            }
            serde_json::to_vec(&body).unwrap()
        });
    // Two in three near-valid: arbitrary bytes seldom get past the JSON parser.
    prop_oneof![1 => proptest::collection::vec(any::<u8>(), 0..300), 2 => mutated]
}

/// Draws `cases()` bodies from `strategy`, seeded by `name`.
fn draw(name: &str, strategy: impl Strategy<Value = Vec<u8>>) -> Vec<Vec<u8>> {
    let seed: [u8; 32] = {
        let mut seed = [7u8; 32];
        for (i, b) in name.bytes().enumerate() {
            seed[i % 32] ^= b;
        }
        seed
    };
    let mut runner = TestRunner::new_with_rng(
        Config { cases: cases(), ..Config::default() },
        proptest::test_runner::TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &seed),
    );
    (0..cases()).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

/// Posts each body; every answer is a 2xx, or a 4xx whose JSON names a field (`field`) or says
/// what is wrong (`error`). `field_required` asks for the field's name on every 4xx.
async fn check(
    name: &str,
    bodies: Vec<Vec<u8>>,
    send: impl Fn(Vec<u8>) -> reqwest::RequestBuilder,
    field_required: bool,
) {
    for body in bodies {
        let shown = String::from_utf8_lossy(&body).chars().take(200).collect::<String>();
        let response =
            send(body).send().await.unwrap_or_else(|e| panic!("{name}: no answer to {shown:?}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(!status.is_server_error(), "{name}: {status} for {shown:?}: {text}");
        if status.is_client_error() {
            let answer: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{name}: {status} not JSON for {shown:?}: {text}"));
            let named = answer["field"].as_str().is_some_and(|f| !f.is_empty())
                || answer["error"]["param"].as_str().is_some_and(|f| !f.is_empty());
            let said = answer["error"].is_string() || answer["error"]["message"].is_string();
            assert!(said, "{name}: {status} without a message for {shown:?}: {text}");
            if field_required && status.as_u16() == 422 {
                assert!(named, "{name}: {status} names no field for {shown:?}: {text}");
            }
        }
    }
}

on_both_databases! {
    async fn what_comes_from_outside_never_breaks_the_server(kind: Kind) {
        let app = StaffedServer::start_with_env(kind, &[("STRIPE_WEBHOOK_SECRET", SECRET)]).await;
        let key = app.ingestion_key().await;
        let http = reqwest::Client::new();

        let ride = json!({
            "ride_id": "fuzz-1", "driver_id": "dana", "distance_m": 12000,
            "started_at": "2026-11-24T08:00:00Z", "ended_at": "2026-11-24T08:30:00Z",
            "seats": [{"passenger_id": "ana", "attendance": "completed"}]
        });
        let url = app.url("/api/v1/rides");
        check("rides", draw("rides", bodies(ride)), |b| {
            http.post(&url).bearer_auth(&key).header("content-type", "application/json").body(b)
        }, true)
        .await;

        let user = json!({ "id": "ana", "name": "Ana", "email": "ana@example.com", "language": "en" });
        let users = json!({ "users": [user] });
        let url = app.url("/api/v1/users");
        check("users", draw("users", bodies(users)), |b| {
            http.post(&url).bearer_auth(&key).header("content-type", "application/json").body(b)
        }, true)
        .await;

        // Signed as the provider signs, so that the body itself is what is tried.
        let event = json!({
            "id": "evt_1", "type": "refund.updated", "created": 1_764_000_000,
            "data": { "object": { "id": "re_1", "object": "refund", "status": "succeeded", "metadata": { "refund_id": "1" } } }
        });
        let url = app.url("/webhooks/stripe");
        check("webhook", draw("webhook", bodies(event)), |b| {
            let now = chrono::Utc::now().timestamp();
            let signature = format!("t={now},v1={}", server::psp::signature::sign(SECRET, now, &b));
            http.post(&url).header("stripe-signature", signature).header("content-type", "application/json").body(b)
        }, false)
        .await;
    }
}

/// The simulator's form parser: Stripe's bracket keys, percent-encoding, any bytes.
#[tokio::test]
async fn the_simulators_form_parser_never_breaks() {
    let sim = PspSim::start(&[]).await;
    let http = reqwest::Client::new();
    let pieces = prop_oneof![
        Just("amount=100".to_owned()),
        Just("currency=usd".to_owned()),
        Just("metadata[invoice_id]=1".to_owned()),
        Just("expand[]=latest_charge".to_owned()),
        Just("a[b][c][d][e][f]=1".to_owned()),
        Just("%ZZ=%".to_owned()),
        Just("[]=[]".to_owned()),
        ".{0,20}",
    ];
    let forms = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(pieces, 0..8).prop_map(|p| p.join("&").into_bytes()),
    ];
    for path in ["/v1/payment_intents", "/v1/customers", "/v1/refunds", "/v1/transfers"] {
        let url = format!("{}{path}", sim.base);
        check(
            path,
            draw(path, forms.clone()),
            |b| {
                http.post(&url)
                    .bearer_auth(support::SIM_KEY)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(b)
            },
            false,
        )
        .await;
    }
}

//! Billing real customers: the carpool app's provider references over user sync, who cannot be
//! charged seen before approval, a configuration that cannot charge the wrong place, and payouts
//! that wait for the provider's funds. Each money path is checked against the provider's own
//! records (localstripe's objects, the simulator's ledger).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use app::model::staff::Role;
use secrecy::SecretString;
use serde_json::{json, Value};
use server::psp::stripe::{StripeClient, TestCard};
use support::{email_of, Localstripe, PspSim, StaffedServer, SIM_KEY};

fn client(base: &str) -> StripeClient {
    StripeClient::new(base, SecretString::from(SIM_KEY.to_owned()), Duration::from_secs(10)).unwrap()
}

async fn sync_users(app: &StaffedServer, key: &str, users: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/users"))
        .bearer_auth(key)
        .json(&json!({ "users": users }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

on_both_databases! {
    async fn a_week_billed_against_localstripe_with_the_carpool_apps_cards(kind: Kind) {
        let localstripe = Localstripe::start().await;
        let env = [
            ("PSP_URL", localstripe.base.as_str()),
            ("PSP_API_KEY", SIM_KEY),
            ("PSP_TEST_CARDS", "numbers"),
            ("PSP_PROVISION", "off"),
        ];
        let app = StaffedServer::start_with_env(kind, &env).await;
        // One attempt each: localstripe has no transfers, so every payout fails at once.
        app.db.put_setting("run_settings", &json!({ "max_attempts": 1, "canary_size": 2 }), "test").await.unwrap();
        app.db.put_setting(app::model::alerts::AlertSettings::KEY, &json!({ "customer_notices": true }), "test").await.unwrap();
        let billing = |args: &[&str]| {
            let mut command = support::billing();
            command.args(args).envs(env).env("DATABASE_URL", &app.test_db.url);
            command
        };
        let week = support::last_week();
        let out = billing(&["demo-data", "--passengers", "6", "--drivers", "2", "--weeks", "1", "--seed", "4"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        // Who is billed this week, from the preview, before any card exists.
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let preview = |token: String| {
            let url = app.url(&format!("/api/v1/weeks/{week}/preview"));
            async move { reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let before = preview(finance.clone()).await;
        let mut riders: Vec<String> = before["invoices"].as_array().unwrap().iter().map(|i| i["user_id"].as_str().unwrap().to_owned()).collect();
        let drivers: Vec<String> = before["payouts"].as_array().unwrap().iter().map(|p| p["driver_id"].as_str().unwrap().to_owned()).collect();
        assert!(riders.len() >= 3, "{before}");
        assert_eq!(before["payment_gaps"]["no_payment_method"], riders.len() as i64, "nobody has a card yet");
        riders.sort();
        let without_card = riders.pop().unwrap();

        // The carpool app makes each rider's customer and card at the provider, then sends their ids.
        let stripe = client(&localstripe.base);
        let key = app.ingestion_key().await;
        let mut sent = Vec::new();
        for rider in &riders {
            let meta = [("user_id", rider.clone())].into_iter().collect();
            let customer = stripe.create_customer(None, rider, &meta, &format!("app-{rider}")).await.unwrap();
            let card = stripe.attach_card(&customer, TestCard::Number("4242424242424242"), &format!("app-card-{rider}")).await.unwrap();
            sent.push(json!({ "id": rider, "name": rider, "provider_customer_id": customer, "provider_payment_method_id": card }));
        }
        for driver in &drivers {
            sent.push(json!({ "id": driver, "name": driver, "provider_account_id": format!("acct_{driver}x") }));
        }
        // A bad reference is refused naming its field, and nothing is stored for that user.
        sent.push(json!({ "id": without_card, "name": without_card, "provider_customer_id": "cus_ok", "provider_payment_method_id": "card_4242" }));
        let (status, answer) = sync_users(&app, &key, json!(sent)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["updated"], (riders.len() + drivers.len()) as i64, "{answer}");
        assert_eq!(answer["rejected"][0]["field"], "provider_payment_method_id", "{answer}");
        assert_eq!(app.db.provider_refs(&without_card).await.unwrap(), Default::default(), "nothing stored for a refused user");

        // A rider changes card: sent again, updated, audited with before and after.
        let first = &riders[0];
        let customer = app.db.provider_refs(first).await.unwrap().provider_customer_id.unwrap();
        let new_card = stripe.attach_card(&customer, TestCard::Number("4242424242424242"), &format!("app-card2-{first}")).await.unwrap();
        let (status, answer) = sync_users(&app, &key, json!([{ "id": first, "name": first, "provider_payment_method_id": new_card }])).await;
        assert_eq!((status, answer["updated"].as_i64()), (200, Some(1)), "{answer}");
        let audited: Vec<(String, String)> = support::rows(&app.db, &format!(
            "SELECT CAST(before AS TEXT), CAST(after AS TEXT) FROM audit_log WHERE action = 'user.provider_refs' AND object_id = '{first}' ORDER BY id"
        )).await;
        assert_eq!(audited.len(), 2, "{audited:?}");
        assert!(audited[1].0.contains(&customer) && audited[1].1.contains(&new_card), "{audited:?}");

        // The preview flags the one rider who cannot be charged, before approval.
        let flagged = preview(finance).await;
        assert_eq!(flagged["payment_gaps"]["no_payment_method"], 1, "{}", flagged["payment_gaps"]);
        assert_eq!(flagged["payment_gaps"]["passengers"], json!([without_card]));
        assert_eq!(flagged["payment_gaps"]["no_payout_account"], 0);
        let out = billing(&["preview", "--week", &week]).output().await.unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains(&format!("cannot be charged (no card at the provider; uncollectible in the run): 1 passenger(s): {without_card}")), "{table}");

        let out = billing(&["run", "--week", &week, "--approve", "--workers", "2"]).output().await.unwrap();
        assert!(out.status.success(), "the run completes: {}", String::from_utf8_lossy(&out.stderr));

        // localstripe's own records: one succeeded payment intent per rider with a card, on that
        // rider's card, for the invoice's amount.
        let listed = stripe.list_all("/v1/payment_intents", None).await.unwrap();
        let succeeded: Vec<&Value> = listed.iter().filter(|p| p["status"] == "succeeded").collect();
        assert_eq!(succeeded.len(), riders.len(), "{listed:?}");
        let invoices: BTreeMap<String, (i64, i64)> = support::rows::<(String, i64, i64)>(&app.db, &format!(
            "SELECT user_id, id, total_minor FROM invoices WHERE week = '{week}'"
        )).await.into_iter().map(|(u, id, total)| (u, (id, total))).collect();
        for intent in &succeeded {
            let user = intent["metadata"]["user_id"].as_str().unwrap();
            assert_ne!(user, without_card);
            assert_eq!(intent["amount"].as_i64(), Some(invoices[user].1), "{intent}");
            let card = app.db.provider_refs(user).await.unwrap().provider_payment_method_id.unwrap();
            assert_eq!(intent["payment_method"], card.as_str(), "charged on the card the app sent last");
        }

        // The rider without a card: uncollectible with the reason, no call made, asked for a card.
        let (invoice, _) = invoices[&without_card];
        let state: Vec<(String, Option<String>)> = support::rows(&app.db, &format!("SELECT state, reason FROM charges WHERE invoice_id = {invoice}")).await;
        assert_eq!(state, vec![("uncollectible".to_owned(), Some("no_payment_method".to_owned()))]);
        let attempts: Vec<(i64,)> = support::rows(&app.db, &format!("SELECT COUNT(*) FROM charge_attempts WHERE invoice_id = {invoice}")).await;
        assert_eq!(attempts, vec![(0,)], "no provider call for a rider without a card");
        let notices: Vec<(String,)> = support::rows(&app.db, &format!("SELECT dedupe_key FROM outbox WHERE subject_id = {invoice} AND kind = 'declined'")).await;
        assert_eq!(notices, vec![(format!("add_card:{invoice}"),)]);

        let out = billing(&["reconcile", "--week", &week]).output().await.unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{printed}{}", String::from_utf8_lossy(&out.stderr));
        assert!(printed.contains(&format!("{week}: {} matched, 0 not matched", riders.len())), "{printed}");

        // Finance's report counts the invoice written off for want of a card.
        let usd = app::model::money::BillingCurrency::from_code("USD").unwrap();
        let report = server::reports::report(&app.db, usd, &week, &week).await.unwrap();
        assert_eq!((report.figures.uncollectible_count, report.figures.no_payment_method_count), (1, 1));
    }

    async fn payouts_wait_for_funds_and_are_then_paid_once(kind: Kind) {
        // The simulator makes a payment's funds available four seconds after it, and refuses
        // transfers beyond the available balance as Stripe does.
        let sim = PspSim::start(&["--funds-delay-seconds", "4"]).await;
        let (test_db, db) = support::TestDb::migrated(kind).await;
        db.put_setting("run_settings", &json!({ "canary_size": 2, "funds_retry_seconds": 1 }), "test").await.unwrap();
        let week = support::last_week();
        for args in [
            vec!["demo-data", "--passengers", "10", "--drivers", "3", "--weeks", "1", "--seed", "2"],
            vec!["run", "--week", &week, "--approve", "--workers", "2"],
        ] {
            let out = sim.billing(&test_db.url).args(&args).output().await.unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let payouts: Vec<(i64, i64)> = support::rows(&db, &format!("SELECT id, total_minor FROM payouts WHERE week = '{week}' AND total_minor > 0")).await;
        assert!(!payouts.is_empty());
        let states: Vec<(String, i64)> = support::rows(&db, "SELECT state, COUNT(*) FROM transfers GROUP BY state").await;
        assert_eq!(states, vec![("paid".to_owned(), payouts.len() as i64)], "none failed for lack of funds");
        let waited: Vec<(i64,)> = support::rows(&db, "SELECT COUNT(*) FROM transfer_attempts WHERE detail LIKE '%insufficient%'").await;
        assert!(waited[0].0 > 0, "the payouts waited for funds first");

        // The provider's ledger: each payout transferred exactly once, for its amount, in the week's group.
        let ledger = sim.ledger().await;
        let mut transferred: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for entry in ledger.iter().filter(|e| e["kind"] == "transfer") {
            let payout: i64 = entry["metadata"]["payout_id"].as_str().unwrap().parse().unwrap();
            transferred.entry(payout).or_default().push(entry["amount"].as_i64().unwrap());
        }
        let expected: BTreeMap<i64, Vec<i64>> = payouts.iter().map(|(id, total)| (*id, vec![*total])).collect();
        assert_eq!(transferred, expected);
        let transfers = client(&sim.base).list_all("/v1/transfers", None).await.unwrap();
        assert!(transfers.iter().all(|t| t["transfer_group"] == week.as_str()), "{transfers:?}");
    }
}

/// Every combination that could charge the wrong place exits 2 with one line naming the variable.
#[tokio::test]
async fn unsafe_provider_settings_exit_2_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let live = ("PSP_API_KEY", "sk_live_abcdef");
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (&["migrate"], vec![live, ("PSP_URL", "")], "PSP_URL"),
        (&["migrate"], vec![live, ("PSP_URL", "sim")], "PSP_URL"),
        (&["serve", "--addr", "127.0.0.1:0"], vec![live, ("PSP_URL", "http://127.0.0.1:9")], "PSP_URL"),
        (
            &["migrate"],
            vec![live, ("PSP_URL", "https://api.stripe.com"), ("PSP_PROVISION", "test")],
            "PSP_PROVISION",
        ),
        (&["migrate"], vec![("PSP_PROVISION", "always")], "PSP_PROVISION"),
        // A test key with no provider named: nothing that calls the provider starts.
        (&["serve", "--addr", "127.0.0.1:0"], vec![("PSP_URL", "")], "PSP_URL"),
        (&["reconcile", "--week", "2026-W10"], vec![("PSP_URL", "")], "PSP_URL"),
    ];
    for (args, env, variable) in cases {
        let output = support::billing()
            .args(args)
            .current_dir(dir.path())
            .env("DATABASE_URL", format!("sqlite://{}/billing.db", dir.path().display()))
            .envs(env.clone())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(variable), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

/// Outside live mode every page says so, in the first HTML; the overview and `/readyz` name the
/// provider, the mode and the account.
#[tokio::test]
async fn test_mode_is_visible_on_every_page_and_in_readiness() {
    let sim = PspSim::start(&[]).await;
    let app = StaffedServer::start_with_env(
        support::Kind::Sqlite,
        &[("PSP_URL", sim.base.as_str()), ("PSP_API_KEY", SIM_KEY)],
    )
    .await;
    let ready: Value = reqwest::get(app.url("/readyz")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["provider"]["mode"], "test", "{ready}");
    assert_eq!(ready["provider"]["account"], "acct_simulator (billing psp-sim)", "{ready}");
    assert_eq!(ready["provider"]["endpoint"], sim.base.as_str(), "{ready}");
    let login = reqwest::get(app.url("/login")).await.unwrap().text().await.unwrap();
    assert!(login.contains("data-test-mode=\"Test mode: no real money moves"), "{login}");
    let browser = app.signed_in(&email_of(Role::Support)).await;
    for path in ["/", "/runs", "/users"] {
        let html = browser.get(app.url(path)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("data-test-mode=\"Test mode: no real money moves"), "{path}: {html}");
    }
}

on_both_databases! {
    async fn run_settings_are_an_audited_setting_checked_field_by_field(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let admin = app.token_for(&email_of(Role::Admin)).await;
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let http = reqwest::Client::new();
        let url = app.url("/api/v1/settings/run");
        let get = |token: &str| http.get(&url).bearer_auth(token).send();
        let defaults: Value = get(&finance).await.unwrap().json().await.unwrap();
        assert_eq!(defaults["rate_per_second"], 100, "{defaults}");
        let put = |token: &str, body: Value| http.put(&url).bearer_auth(token).json(&body).send();
        let mut changed = defaults.clone();
        changed["rate_per_second"] = json!(50);
        changed["workers"] = json!(4);
        assert_eq!(put(&finance, changed.clone()).await.unwrap().status(), 403, "admins only");
        for (field, value) in [("workers", json!(0)), ("rate_per_second", json!(0)), ("failure_rate_pct", json!(250)), ("batch", json!("many"))] {
            let mut bad = changed.clone();
            bad[field] = value;
            let response = put(&admin, bad).await.unwrap();
            assert_eq!(response.status(), 422, "{field}");
            let error: Value = response.json().await.unwrap();
            assert!(error.to_string().contains(field), "{field}: {error}");
        }
        let mut unknown = changed.clone();
        unknown["rate_per_process"] = json!(3);
        assert_eq!(put(&admin, unknown).await.unwrap().status(), 422);
        let stored: Value = get(&admin).await.unwrap().json().await.unwrap();
        assert_eq!(stored, defaults, "nothing stored by a refused change");

        let response = put(&admin, changed.clone()).await.unwrap();
        assert_eq!(response.status(), 200);
        let stored: Value = get(&finance).await.unwrap().json().await.unwrap();
        assert_eq!((stored["rate_per_second"].as_i64(), stored["workers"].as_i64()), (Some(50), Some(4)));
        let audited: Vec<(String,)> = support::rows(&app.db, "SELECT actor FROM audit_log WHERE action = 'setting.change' AND object_id = 'run_settings'").await;
        assert_eq!(audited, vec![(email_of(Role::Admin),)]);
    }

    async fn the_provider_limit_is_shared_by_every_process(kind: Kind) {
        use server::psp::pace::Pace;
        let (test_db, _db) = support::TestDb::migrated(kind).await;
        // Three pools, as three processes would have, each with callers waiting on the limit.
        let per_second = 40;
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let db = test_db.connect().await;
            let pace = std::sync::Arc::new(Pace::shared(&db, per_second));
            for _ in 0..4 {
                let pace = pace.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..5 {
                        pace.until_ready().await;
                    }
                }));
            }
        }
        for task in tasks {
            task.await.unwrap();
        }
        // Every call was granted from a slot of 50 ms, none beyond its share: 60 calls at 40/s
        // took at least 30 slots, and no second held more than the limit and one share.
        let slots: Vec<(i64, i64)> = support::rows(&test_db.connect().await, "SELECT slot, used FROM provider_rate ORDER BY slot").await;
        let share = server::db::provider::slot_share(per_second) as i64;
        // Grants (what the slots record) are at least the calls made: a share granted to a
        // process with fewer callers waiting is not all used.
        assert!(slots.iter().map(|s| s.1).sum::<i64>() >= 60, "{slots:?}");
        assert!(slots.iter().all(|s| s.1 <= share), "{slots:?}");
        assert!(slots.iter().filter(|s| s.1 > 0).count() >= 30, "{slots:?}");
        for (i, (slot, _)) in slots.iter().enumerate() {
            let in_second: i64 = slots[i..].iter().take_while(|s| s.0 < slot + 20).map(|s| s.1).sum();
            assert!(in_second <= i64::from(per_second) + share, "{in_second} calls from slot {slot}: {slots:?}");
        }
    }
}

on_both_databases! {
    async fn finance_retries_a_failed_payout_once(kind: Kind) {
        let sim = PspSim::start(&[]).await;
        let (test_db, db) = support::TestDb::migrated(kind).await;
        db.put_setting("run_settings", &json!({ "canary_size": 2, "max_attempts": 1 }), "test").await.unwrap();
        let week = support::last_week();
        let out = sim.billing(&test_db.url).args(["demo-data", "--passengers", "8", "--drivers", "2", "--weeks", "1", "--seed", "3"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        // The carpool app sent an account the provider does not have: its transfer is refused.
        let actor = server::db::audit::Actor::cli();
        let bad = server::db::rides::ProviderRefs { account_id: Some(Some("acct_closed".into())), ..Default::default() };
        let d1 = server::db::rides::NewUser { id: "d1".into(), name: "d1".into(), email: None, phone: None, language: "en".into(), provider: bad };
        db.sync_users(std::slice::from_ref(&d1), &actor).await.unwrap();
        let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let failed: Vec<(i64, i64)> = support::rows(&db, "SELECT t.payout_id, t.run_id FROM transfers t WHERE t.state = 'failed'").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        let (payout, run) = failed[0];

        // The driver's real account arrives; finance retries the payout from the run.
        let account = client(&sim.base).create_account(None, &Default::default(), "app-account-d1").await.unwrap();
        let good = server::db::rides::ProviderRefs { account_id: Some(Some(account.clone())), ..Default::default() };
        db.sync_users(&[server::db::rides::NewUser { provider: good, ..d1 }], &actor).await.unwrap();
        let mut command = sim.billing(&test_db.url);
        command.env_remove("PSP_PROVISION");
        let server = support::ServerProcess::start_with(command, &test_db.url).await;
        let app = StaffedServer { test_db, db, server };
        for role in [Role::Finance, Role::Support] {
            server::staff::add(&app.db, &actor, &email_of(role), role, support::PASSWORD.into()).await.unwrap();
        }
        let url = app.url(&format!("/api/v1/runs/{run}/payouts/{payout}/retry"));
        let support_token = app.token_for(&email_of(Role::Support)).await;
        let refused = reqwest::Client::new().post(&url).bearer_auth(support_token).send().await.unwrap();
        assert_eq!(refused.status(), 403);
        let finance = app.token_for(&email_of(Role::Finance)).await;
        let retried = reqwest::Client::new().post(&url).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(retried.status(), 200, "{}", retried.text().await.unwrap());
        let again = reqwest::Client::new().post(&url).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(again.status(), 409, "a second click retries nothing");

        // `billing serve` pays it within seconds, once, to the new account.
        let mut paid = Vec::new();
        for _ in 0..100 {
            paid = support::rows::<(String,)>(&app.db, &format!("SELECT state FROM transfers WHERE payout_id = {payout}")).await;
            if paid == vec![("paid".to_owned(),)] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(paid, vec![("paid".to_owned(),)]);
        let transfers: Vec<Value> = sim.ledger().await.into_iter()
            .filter(|e| e["kind"] == "transfer" && e["metadata"]["payout_id"] == payout.to_string().as_str())
            .collect();
        assert_eq!(transfers.len(), 1, "{transfers:?}");
        assert_eq!(transfers[0]["destination"], account.as_str());
        let audited: Vec<(String,)> = support::rows(&app.db, &format!("SELECT actor FROM audit_log WHERE action = 'payout.retry' AND object_id = '{payout}'")).await;
        assert_eq!(audited, vec![(email_of(Role::Finance),)]);
    }
}

/// A run whose only work left waits an hour for funds is left by `billing run` (exit 3) with
/// what it waits for; the run's JSON says the same, and no payout is failed.
#[tokio::test]
async fn billing_run_says_what_a_waiting_run_waits_for() {
    let sim = PspSim::start(&["--funds-delay-seconds", "86400"]).await;
    let (test_db, db) = support::TestDb::migrated(support::Kind::Sqlite).await;
    db.put_setting("run_settings", &json!({ "canary_size": 2 }), "test").await.unwrap();
    let week = support::last_week();
    let out = sim
        .billing(&test_db.url)
        .args(["demo-data", "--passengers", "6", "--drivers", "2", "--weeks", "1", "--seed", "2"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let out = sim.billing(&test_db.url).args(["run", "--week", &week, "--approve"]).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr
            .contains("wait for funds: the provider's available balance cannot cover them yet; next try at"),
        "{stderr}"
    );
    let run = db.run_of_week(&week).await.unwrap().unwrap();
    assert_eq!(run.phase.as_str(), "paying_out");
    let view = server::run::view::view(&db, run, chrono_tz::Tz::UTC).await.unwrap();
    assert_eq!(view.waiting.len(), 1, "{:?}", view.waiting);
    assert_eq!((view.waiting[0].waiting_for.as_str(), view.waiting[0].payouts), ("funds", view.payouts));
    assert!(view.waiting[0].next_at > chrono::Utc::now() + chrono::Duration::minutes(50));
    let failed: Vec<(i64,)> =
        support::rows(&db, "SELECT COUNT(*) FROM transfers WHERE state = 'failed'").await;
    assert_eq!(failed, vec![(0,)]);
    assert!(sim.ledger().await.iter().all(|e| e["kind"] != "transfer"), "nothing was transferred");
}

on_both_databases! {
    async fn a_payout_waits_for_its_drivers_account_and_goes_once_it_arrives(kind: Kind) {
        let sim = PspSim::start(&[]).await;
        let stripe = client(&sim.base);
        let (test_db, db) = support::TestDb::migrated(kind).await;
        db.put_setting("run_settings", &json!({ "canary_size": 2 }), "test").await.unwrap();
        let week = support::last_week();
        let billing = |args: &[&str]| {
            let mut command = sim.billing(&test_db.url);
            command.args(args).env_remove("PSP_PROVISION");
            command
        };
        let out = billing(&["demo-data", "--passengers", "6", "--drivers", "2", "--weeks", "1", "--seed", "6"]).output().await.unwrap();
        assert!(out.status.success());
        // The carpool app made every rider's card and the second driver's account, not the first's.
        let actor = server::db::audit::Actor::cli();
        let user = |id: &str, provider| server::db::rides::NewUser { id: id.into(), name: id.into(), email: None, phone: None, language: "en".into(), provider };
        let mut users = Vec::new();
        for i in 1..=6 {
            let rider = format!("p{i}");
            let customer = stripe.create_customer(None, &rider, &Default::default(), &format!("app-{rider}")).await.unwrap();
            let card = stripe.attach_card(&customer, TestCard::Token("tok_visa"), &format!("app-card-{rider}")).await.unwrap();
            users.push(user(&rider, server::db::rides::ProviderRefs { customer_id: Some(Some(customer)), payment_method_id: Some(Some(card)), account_id: None }));
        }
        let d2 = stripe.create_account(None, &Default::default(), "app-account-d2").await.unwrap();
        users.push(user("d2", server::db::rides::ProviderRefs { account_id: Some(Some(d2)), ..Default::default() }));
        db.sync_users(&users, &actor).await.unwrap();

        // The run pays d2 and leaves d1's payout waiting for an account: `billing run` says so.
        let out = billing(&["run", "--week", &week, "--approve"]).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("wait for the drivers' payout accounts"), "{stderr}");
        let waiting: Vec<(String, String, Option<String>)> = support::rows(&db, "SELECT driver_id, state, waiting_for FROM transfers ORDER BY driver_id").await;
        assert_eq!(waiting, vec![
            ("d1".to_owned(), "pending".to_owned(), Some("account".to_owned())),
            ("d2".to_owned(), "paid".to_owned(), None),
        ]);
        let attempts: Vec<(i64,)> = support::rows(&db, "SELECT COUNT(*) FROM transfer_attempts a JOIN transfers t ON t.payout_id = a.payout_id WHERE t.driver_id = 'd1'").await;
        assert_eq!(attempts, vec![(0,)], "no call and no attempt while there is no account");

        // The app sends d1's account: the payout is due at once and goes, once.
        let d1 = stripe.create_account(None, &Default::default(), "app-account-d1").await.unwrap();
        db.sync_users(&[user("d1", server::db::rides::ProviderRefs { account_id: Some(Some(d1.clone())), ..Default::default() })], &actor).await.unwrap();
        let out = billing(&["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let transfers: Vec<Value> = sim.ledger().await.into_iter().filter(|e| e["kind"] == "transfer").collect();
        assert_eq!(transfers.len(), 2, "{transfers:?}");
        assert_eq!(transfers.iter().filter(|t| t["destination"] == d1.as_str()).count(), 1);
        let run = db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.phase.as_str(), "completed");
    }
}

on_both_databases! {
    async fn the_kill_switch_stops_the_retries_of_a_completed_run(kind: Kind) {
        // A third of the cards decline: the run completes with declined invoices to try again.
        let charged = support::charged_week(kind, &["--decline-rate", "0.3", "--seed", "4"]).await;
        let (app, sim) = (&charged.app, &charged.sim);
        let week = support::last_week();
        let declined: Vec<(i64,)> = support::rows(&app.db, "SELECT invoice_id FROM charges WHERE state = 'declined'").await;
        assert!(!declined.is_empty(), "some invoices declined");
        let run = app.db.run_of_week(&week).await.unwrap().unwrap();
        assert_eq!(run.phase.as_str(), "completed");

        // Paused, nothing is tried, even once their retry is due.
        let out = sim.billing(&app.test_db.url).args(["pause", "--week", &week, "--reason", "card network trouble"]).output().await.unwrap();
        assert!(out.status.success(), "a completed run can be paused: {}", String::from_utf8_lossy(&out.stderr));
        support::execute(&app.db, "UPDATE charges SET next_at = '2000-01-01T00:00:00Z' WHERE state = 'declined'").await;
        let calls = sim.ledger().await.len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let out = sim.billing(&app.test_db.url).args(["run", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(sim.ledger().await.len(), calls, "no call while the run is paused");

        // Resumed, the retries go.
        let out = sim.billing(&app.test_db.url).args(["resume", "--week", &week]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sim.ledger().await.len() == calls {
            assert!(std::time::Instant::now() < deadline, "the retries never went after resume");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

//! Alerts and customer notices, on each database, delivered by `billing serve` processes to real
//! receivers started by the tests (an HTTP webhook endpoint and an SMTP server): grouped alerts
//! page once; every message arrives, none twice by delivery id, even when the delivering
//! process is killed with SIGKILL mid-batch; a refusing receiver is retried with backoff, shown
//! as retrying and served later; an alert nobody acknowledges goes to the second contact once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use app::model::alerts::{AlertKind, AlertSettings};
use server::db::alerts::NewAlert;
use server::db::Db;
use support::receivers::{header, SmtpReceiver, WebhookReceiver};
use support::{PspSim, ServerProcess, TestDb};

async fn set_alerts(db: &Db, settings: &AlertSettings) {
    db.put_setting(AlertSettings::KEY, &serde_json::to_value(settings).unwrap(), "test").await.unwrap();
}

fn test_alert(n: usize) -> NewAlert {
    NewAlert {
        kind: AlertKind::Test,
        group_key: format!("test:{n}"),
        run_id: None,
        week: None,
        title: format!("test alert {n}"),
        detail: "sent by a test".into(),
        link: Some("/alerts".into()),
    }
}

/// The outbox: delivery id → (kind, channel, state, attempts).
async fn outbox(db: &Db) -> BTreeMap<String, (String, String, String, i64)> {
    let rows: Vec<(String, String, String, String, i64)> =
        support::rows(db, "SELECT delivery_id, kind, channel, state, attempts FROM outbox").await;
    rows.into_iter()
        .map(|(id, kind, channel, state, attempts)| (id, (kind, channel, state, attempts)))
        .collect()
}

/// Waits until every message of the outbox is sent (or `limit` passes), returning the outbox.
async fn all_sent(db: &Db, limit: Duration) -> BTreeMap<String, (String, String, String, i64)> {
    let started = Instant::now();
    loop {
        let messages = outbox(db).await;
        if messages.values().all(|m| m.2 == "sent") || started.elapsed() > limit {
            return messages;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serve_with_smtp(db_url: &str, smtp: &SmtpReceiver) -> tokio::process::Command {
    let mut command = support::billing();
    command
        .env("DATABASE_URL", db_url)
        .env("SMTP_URL", &smtp.url)
        .env("MAIL_FROM", "Billing <billing@test.example>");
    command
}

on_both_databases! {
    // Over the API: channels refused naming the field (nothing stored), a test alert, messages
    // listed by state, acknowledging twice refused; support sees alerts but not the channels.
    async fn the_alerts_api_checks_what_it_is_given(kind: Kind) {
        let app = support::StaffedServer::start(kind).await;
        let http = reqwest::Client::new();
        let admin = app.token_for(&support::email_of(app::model::staff::Role::Admin)).await;
        let support_token = app.token_for(&support::email_of(app::model::staff::Role::Support)).await;
        let put = |body: serde_json::Value| http.put(app.url("/api/v1/settings/alerts")).bearer_auth(&admin).json(&body).send();
        let refused = put(serde_json::json!({ "webhook_url": "ftp://x", "email": "oncall@test.example" })).await.unwrap();
        assert_eq!(refused.status(), 422);
        assert!(refused.text().await.unwrap().contains("webhook_url"));
        let stored: AlertSettings = app.db.setting_or_default(AlertSettings::KEY).await.unwrap();
        assert_eq!(stored, AlertSettings::default(), "nothing stored");
        let unknown = put(serde_json::json!({ "webhook": "http://x" })).await.unwrap();
        assert_eq!(unknown.status(), 422, "unknown fields are refused");
        let saved = put(serde_json::json!({ "webhook_url": "http://127.0.0.1:9/hook" })).await.unwrap();
        assert_eq!(saved.status(), 200);

        let sent = http.post(app.url("/api/v1/alerts/test")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(sent.status(), 201);
        let alert: serde_json::Value = sent.json().await.unwrap();
        let get = |query: &str, token: &str| http.get(app.url(&format!("/api/v1/alerts{query}"))).bearer_auth(token.to_owned()).send();
        let page: serde_json::Value = get("?messages=queued", &admin).await.unwrap().json().await.unwrap();
        assert_eq!(page["open"].as_array().unwrap().len(), 1);
        assert_eq!(page["time_zone"], "UTC", "the zone the moments are in");
        assert!(page["messages"].as_array().unwrap().iter().all(|m| m["state"] == "queued"), "{page}");
        assert!(!page["settings"].is_null(), "admins see the channels");
        let failed: serde_json::Value = get("?messages=failed", &admin).await.unwrap().json().await.unwrap();
        assert!(failed["messages"].as_array().unwrap().is_empty());
        let bad = get("?messages=lost", &admin).await.unwrap();
        assert_eq!(bad.status(), 422);
        assert!(bad.text().await.unwrap().contains("messages"));
        let as_support: serde_json::Value = get("", &support_token).await.unwrap().json().await.unwrap();
        assert!(as_support["settings"].is_null(), "support does not see the channels");

        let id = alert["id"].as_i64().unwrap();
        let ack = |token: &str| http.post(app.url(&format!("/api/v1/alerts/{id}/acknowledge"))).bearer_auth(token.to_owned()).send();
        assert_eq!(ack(&support_token).await.unwrap().status(), 200, "support is on call too");
        assert_eq!(ack(&admin).await.unwrap().status(), 409, "already acknowledged");
        let missing = http.post(app.url("/api/v1/alerts/999999/resolve")).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(missing.status(), 404);
    }

    // Raised three times while open, an alert is one alert with three occurrences and one
    // message per channel; resolved, the next raise is a new alert. Acknowledging is audited and
    // only moves an open alert.
    async fn repeated_alerts_are_grouped_not_repeated(kind: Kind) {
        let (_test_db, db) = TestDb::migrated(kind).await;
        set_alerts(&db, &AlertSettings {
            webhook_url: "http://127.0.0.1:9/hook".into(),
            email: "oncall@test.example".into(),
            ..Default::default()
        })
        .await;
        let alert = NewAlert::for_run(AlertKind::RunHalted, 1, "2026-W47", "halted: a guard");
        // No run 1 exists: alerts about runs need none (the foreign key allows NULL only).
        let alert = NewAlert { run_id: None, ..alert };
        let first = db.raise_alert(&alert).await.unwrap();
        assert_eq!(db.raise_alert(&alert).await.unwrap(), first);
        assert_eq!(db.raise_alert(&alert).await.unwrap(), first);
        let open = db.alerts(true, 10).await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].occurrences, 3);
        let messages = outbox(&db).await;
        let channels: BTreeSet<&str> = messages.values().map(|m| m.1.as_str()).collect();
        assert_eq!(messages.len(), 2, "one message per channel, not per raise: {messages:?}");
        assert_eq!(channels, BTreeSet::from(["email", "webhook"]));

        let actor = server::db::audit::Actor::cli();
        assert!(db.settle_alert(first, &actor, false).await.unwrap(), "acknowledged");
        assert!(!db.settle_alert(first, &actor, false).await.unwrap(), "only an open alert is acknowledged");
        assert_eq!(db.raise_alert(&alert).await.unwrap(), first, "acknowledged, still the same alert");
        assert!(db.settle_alert(first, &actor, true).await.unwrap(), "resolved");
        let again = db.raise_alert(&alert).await.unwrap();
        assert_ne!(again, first, "after it is resolved, the same trouble is a new alert");
        assert_eq!(outbox(&db).await.len(), 4);
        let audit: Vec<(String,)> = support::rows(&db, "SELECT action FROM audit_log WHERE object_type = 'alert' ORDER BY id").await;
        assert_eq!(audit, vec![("alert.acknowledge".to_owned(),), ("alert.resolve".to_owned(),)]);
    }

    // A week charged with customer notices on: each charged passenger with an email gets one
    // receipt (in Spanish for those whose language is Spanish, naming the card's last four
    // digits), and an alert reaches the webhook and the on-call address, each once, with the
    // outbox's delivery id.
    async fn receipts_and_alerts_reach_real_receivers_once(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let hook = WebhookReceiver::start(0, Duration::ZERO).await;
        let smtp = SmtpReceiver::start(0).await;
        set_alerts(&db, &AlertSettings {
            webhook_url: hook.url.clone(),
            email: "oncall@test.example".into(),
            customer_notices: true,
            ..Default::default()
        })
        .await;
        // Four cards in ten decline (which ones depends on the order of the calls): those
        // passengers are told when the card is tried again.
        let sim = PspSim::start(&["--decline-rate", "0.4", "--seed", "11"]).await;
        let week = support::last_week();
        for args in [
            vec!["demo-data", "--passengers", "16", "--drivers", "2", "--weeks", "1", "--seed", "4"],
            vec!["run", "--week", &week, "--approve", "--workers", "2"],
        ] {
            let out = sim.billing(&test_db.url).args(&args).output().await.unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        db.raise_alert(&test_alert(1)).await.unwrap();
        let charged: Vec<(i64, String, String)> = support::rows(
            &db,
            "SELECT i.id, u.language, u.email FROM charges c JOIN invoices i ON i.id = c.invoice_id \
             JOIN users u ON u.id = i.user_id WHERE c.state = 'charged'",
        )
        .await;
        let declined: Vec<(i64, String, String)> = support::rows(
            &db,
            "SELECT i.id, u.language, u.email FROM charges c JOIN invoices i ON i.id = c.invoice_id \
             JOIN users u ON u.id = i.user_id WHERE c.state = 'declined'",
        )
        .await;
        // Neither is empty but about once in 3,500 runs (0.6^16).
        assert!(!charged.is_empty() && !declined.is_empty(), "charged {charged:?}, declined {declined:?}");
        // Written with the charges and declines, before any process delivers them.
        let queued = outbox(&db).await;
        assert_eq!(queued.values().filter(|m| m.0 == "receipt").count(), charged.len());
        assert_eq!(queued.values().filter(|m| m.0 == "declined").count(), declined.len());

        let mut command = sim.billing(&test_db.url);
        command.env("SMTP_URL", &smtp.url).env("MAIL_FROM", "Billing <billing@test.example>");
        let serve = ServerProcess::start_with(command, &test_db.url).await;
        let messages = all_sent(&db, Duration::from_secs(30)).await;
        assert!(messages.values().all(|m| m.2 == "sent"), "{messages:?}");
        let mails = smtp.received();
        let mail_ids: BTreeSet<&str> = mails.iter().map(|m| m.delivery_id.as_str()).collect();
        let outbox_mail: BTreeSet<&str> =
            messages.iter().filter(|(_, m)| m.1 == "email").map(|(id, _)| id.as_str()).collect();
        assert_eq!(mail_ids, outbox_mail, "every email arrived, under its delivery id");
        assert_eq!(mails.len(), outbox_mail.len(), "none twice");
        let hooks = hook.received();
        assert_eq!(hooks.len(), 1, "{hooks:?}");
        let body: serde_json::Value = serde_json::from_str(&hooks[0].body).unwrap();
        assert_eq!(body["delivery_id"], hooks[0].delivery_id.as_str());
        assert!(body["text"].as_str().unwrap().contains("test alert 1"), "{body}");
        assert!(messages.contains_key(&hooks[0].delivery_id));

        for (invoice, language, email) in &charged {
            let mail = mails
                .iter()
                .find(|m| header(&m.body, "To").is_some_and(|to| to.contains(email.as_str())))
                .unwrap_or_else(|| panic!("a receipt to {email}"));
            let subject = header(&mail.body, "Subject").unwrap();
            let expected = if language == "es" { "Tu recibo" } else { "Your carpool receipt" };
            assert!(subject.contains(expected) || subject.starts_with("=?"), "{language}: {subject}");
            // Quoted-printable: soft line breaks joined.
            let body = mail.body.replace("=\n", "");
            assert!(body.contains(&format!("{invoice}")), "the receipt names its invoice");
            assert!(body.contains("4242"), "the card's last four digits: {body}");
        }
        // Which cards decline depends on the order the workers charge in: the Spanish speakers
        // are among the charged or the declined, and each kind of notice is checked per language.
        assert!(charged.iter().chain(&declined).any(|c| c.1 == "es"), "the demo has Spanish speakers");
        for (invoice, language, email) in &declined {
            let mail = mails
                .iter()
                .find(|m| header(&m.body, "To").is_some_and(|to| to.contains(email.as_str())))
                .unwrap_or_else(|| panic!("a declined-charge notice to {email}"));
            let body = mail.body.replace("=\n", "");
            let next = if language == "es" { "intentaremos de nuevo" } else { "we will try again on" };
            assert!(body.contains(next), "{language}: what happens next: {body}");
            assert!(body.contains(&format!("{invoice}")));
        }
        serve.terminate().await;
    }

    // The receivers refuse the first attempts: the messages show as retrying with the reason,
    // then arrive, each once, with the same delivery id as every refused attempt carried.
    async fn a_refusing_receiver_is_retried_with_backoff(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let hook = WebhookReceiver::start(2, Duration::ZERO).await;
        let smtp = SmtpReceiver::start(1).await;
        set_alerts(&db, &AlertSettings { webhook_url: hook.url.clone(), email: "oncall@test.example".into(), ..Default::default() }).await;
        db.raise_alert(&test_alert(1)).await.unwrap();
        let serve = ServerProcess::start_with(serve_with_smtp(&test_db.url, &smtp), &test_db.url).await;
        let started = Instant::now();
        let mut saw_retrying = false;
        while started.elapsed() < Duration::from_secs(20) {
            let rows: Vec<(String, Option<String>)> =
                support::rows(&db, "SELECT state, last_error FROM outbox WHERE channel = 'webhook'").await;
            if rows[0].0 == "retrying" {
                assert!(rows[0].1.as_deref().unwrap().contains("500"), "the reason is shown: {rows:?}");
                saw_retrying = true;
            }
            if rows[0].0 == "sent" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(saw_retrying, "the webhook message was shown as retrying");
        let messages = all_sent(&db, Duration::from_secs(20)).await;
        let attempts: BTreeMap<&str, i64> = messages.values().map(|m| (m.1.as_str(), m.3)).collect();
        assert_eq!(attempts, BTreeMap::from([("email", 2), ("webhook", 3)]), "{messages:?}");
        assert_eq!(hook.seen(), 3);
        assert_eq!(hook.received().len(), 1);
        assert_eq!(smtp.received().len(), 1);
        serve.terminate().await;
    }

    // Sixty alerts to a slow webhook and to email; the delivering process is killed with SIGKILL
    // while a batch is in flight, and two others are started: every message arrives, and by
    // delivery id none twice.
    async fn a_delivering_process_killed_mid_batch_loses_nothing(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let hook = WebhookReceiver::start(0, Duration::from_millis(300)).await;
        let smtp = SmtpReceiver::start(0).await;
        set_alerts(&db, &AlertSettings { webhook_url: hook.url.clone(), email: "oncall@test.example".into(), ..Default::default() }).await;
        for n in 0..60 {
            db.raise_alert(&test_alert(n)).await.unwrap();
        }
        let mut first = ServerProcess::start_with(serve_with_smtp(&test_db.url, &smtp), &test_db.url).await;
        let started = Instant::now();
        while hook.seen() < 5 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        first.child.kill().await.unwrap(); // SIGKILL, with webhook calls in flight
        let claimed_then: Vec<(i64,)> =
            support::rows(&db, "SELECT id FROM outbox WHERE state <> 'sent' AND lease_owner IS NOT NULL").await;
        assert!(!claimed_then.is_empty(), "the kill left claimed messages behind");
        // Two processes take over side by side: they share the work without sending a message
        // twice; only what the killed one had claimed may go again.
        let second = ServerProcess::start_with(serve_with_smtp(&test_db.url, &smtp), &test_db.url).await;
        let third = ServerProcess::start_with(serve_with_smtp(&test_db.url, &smtp), &test_db.url).await;
        let messages = all_sent(&db, Duration::from_secs(90)).await;
        assert!(messages.values().all(|m| m.2 == "sent"), "{messages:?}");
        assert_eq!(messages.len(), 120);
        let mut received: Vec<String> = hook.received().into_iter().map(|r| r.delivery_id).collect();
        received.extend(smtp.received().into_iter().map(|r| r.delivery_id));
        let distinct: BTreeSet<&String> = received.iter().collect();
        let expected: BTreeSet<&String> = messages.keys().collect();
        assert_eq!(distinct, expected, "every message arrived under its own delivery id");
        println!(
            "killed mid-batch: {} messages, {} deliveries ({} repeated with the same delivery id, deduped by the receiver)",
            messages.len(),
            received.len(),
            received.len() - distinct.len()
        );
        assert!(received.len() - distinct.len() <= claimed_then.len(), "only the killed batch may repeat");
        second.terminate().await;
        third.terminate().await;
    }

    // An open alert nobody acknowledges goes to the second contact, once; an acknowledged one
    // does not. A server without a mail server leaves email messages alone.
    async fn an_unacknowledged_alert_goes_to_the_second_contact(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let first = WebhookReceiver::start(0, Duration::ZERO).await;
        let second = WebhookReceiver::start(0, Duration::ZERO).await;
        set_alerts(&db, &AlertSettings {
            webhook_url: first.url.clone(),
            email: "oncall@test.example".into(),
            second_webhook_url: second.url.clone(),
            escalate_after_seconds: 1,
            ..Default::default()
        })
        .await;
        let ignored = db.raise_alert(&test_alert(1)).await.unwrap();
        let handled = db.raise_alert(&test_alert(2)).await.unwrap();
        db.settle_alert(handled, &server::db::audit::Actor::cli(), false).await.unwrap();
        let serve = ServerProcess::start(&test_db.url).await;
        let started = Instant::now();
        while second.received().is_empty() && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // room for a wrong second escalation
        let escalations = second.received();
        assert_eq!(escalations.len(), 1, "{escalations:?}");
        let body: serde_json::Value = serde_json::from_str(&escalations[0].body).unwrap();
        assert_eq!(body["alert"]["id"], ignored);
        assert!(body["text"].as_str().unwrap().starts_with("[not acknowledged]"), "{body}");
        assert_eq!(first.received().len(), 2, "the first contact had both alerts once");
        assert!(db.alert(ignored).await.unwrap().unwrap().escalated_at.is_some());
        assert!(db.alert(handled).await.unwrap().unwrap().escalated_at.is_none());
        // This server has no mail server: it leaves the emails to one that has, untried.
        let emails: Vec<(String, i64)> = support::rows(&db, "SELECT state, attempts FROM outbox WHERE channel = 'email'").await;
        assert_eq!(emails, vec![("queued".to_owned(), 0), ("queued".to_owned(), 0)]);
        serve.terminate().await;
    }
}

on_both_databases! {
    // Alerts raised at the same moment by two processes (two pools on one database), eight
    // tasks each, all land: none fails with "database is locked". A transaction that reads
    // (the alert settings) before it writes must take SQLite's write lock first, or a writer
    // that commits in between makes its upgrade fail at once, busy timeout or not.
    async fn alerts_raised_at_once_from_two_processes_all_land(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        set_alerts(&db, &AlertSettings { webhook_url: "http://127.0.0.1:9/hook".into(), ..Default::default() }).await;
        let other = test_db.connect().await;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..16 {
            let pool = if task % 2 == 0 { db.clone() } else { other.clone() };
            tasks.spawn(async move {
                let mut failed = Vec::new();
                for n in 0..20 {
                    // Half the alerts share a group (one alert, many occurrences), half do not.
                    let group = if n % 2 == 0 { 1000 } else { task * 100 + n };
                    if let Err(e) = pool.raise_alert(&test_alert(group)).await {
                        failed.push(e.to_string());
                    }
                }
                failed
            });
        }
        let failed: Vec<String> = tasks.join_all().await.into_iter().flatten().collect();
        assert!(failed.is_empty(), "{} of 320 alerts failed, first: {:?}", failed.len(), failed.first());
        let (alerts, occurrences): (i64, i64) =
            support::rows(&db, "SELECT COUNT(*), CAST(SUM(occurrences) AS BIGINT) FROM alerts").await[0];
        assert_eq!((alerts, occurrences), (1 + 16 * 10, 320));
        let (messages,): (i64,) = support::rows(&db, "SELECT COUNT(*) FROM outbox WHERE kind = 'test'").await[0];
        assert_eq!(messages, alerts, "one webhook message per alert, none per repeat");
    }
}

/// A mail relay that accepts connections and never says a word: every connection is held open.
async fn hung_relay() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    (url, held)
}

on_both_databases! {
    // The mail relay hangs while two thousand receipts wait to go out by email: an alert raised
    // then still reaches the on-call webhook within 10 s (channels are delivered apart, alerts
    // before notices, and every send has one deadline).
    async fn a_hung_mail_relay_delays_only_the_mail(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let hook = WebhookReceiver::start(0, Duration::ZERO).await;
        let (relay, held) = hung_relay().await;
        set_alerts(&db, &AlertSettings {
            webhook_url: hook.url.clone(),
            email: "oncall@test.example".into(),
            customer_notices: true,
            ..Default::default()
        })
        .await;
        let sim = PspSim::start(&[]).await;
        let week = support::last_week();
        for args in [
            vec!["demo-data", "--passengers", "100", "--drivers", "4", "--weeks", "1", "--seed", "4"],
            vec!["run", "--week", &week, "--approve"],
        ] {
            let out = sim.billing(&test_db.url).args(&args).output().await.unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        // Twenty copies of each receipt (each under its own delivery id): two thousand waiting.
        let (last,): (i64,) = support::rows(&db, "SELECT MAX(id) FROM outbox").await[0];
        for n in 1..20 {
            support::execute(&db, &format!(
                "INSERT INTO outbox (delivery_id, dedupe_key, kind, channel, recipient, user_id, subject_id, language, \
                 state, attempts, next_attempt_at, created_at) SELECT delivery_id || '-{n}', dedupe_key || '-{n}', kind, \
                 channel, recipient, user_id, subject_id, language, 'queued', 0, next_attempt_at, created_at FROM outbox \
                 WHERE kind = 'receipt' AND id <= {last}"
            )).await;
        }
        let (waiting,): (i64,) = support::rows(&db, "SELECT COUNT(*) FROM outbox WHERE kind = 'receipt' AND state = 'queued'").await[0];
        assert!(waiting >= 1800, "{waiting} receipts wait");

        let mut command = sim.billing(&test_db.url);
        command.env("SMTP_URL", &relay).env("MAIL_FROM", "Billing <billing@test.example>");
        let serve = ServerProcess::start_with(command, &test_db.url).await;
        // Let the delivery loops take up the receipts and hang on the relay first.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let raised = Instant::now();
        db.raise_alert(&test_alert(1)).await.unwrap();
        while hook.received().is_empty() {
            assert!(raised.elapsed() < Duration::from_secs(10), "the on-call webhook was paged within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("a hung mail relay: paged {} ms after the alert", raised.elapsed().as_millis());
        let (mailed,): (i64,) = support::rows(&db, "SELECT COUNT(*) FROM outbox WHERE channel = 'email' AND state = 'sent'").await[0];
        assert_eq!(mailed, 0, "the relay really hangs: no mail went out");
        serve.terminate().await;
        held.abort();
    }
}

on_both_databases! {
    // Alerts follow their cause: a run paused (with no reason given) raises its alert, which says
    // who paused it once; resuming the run resolves the alert, so no banner outlives the pause.
    async fn a_resumed_run_resolves_its_pause_alert(kind: Kind) {
        let charged = support::charged_week(kind, &[]).await;
        let db = &charged.app.db;
        let (run_id,): (i64,) = support::rows(db, "SELECT MAX(id) FROM runs").await[0];
        let actor = server::db::audit::Actor::cli();
        server::run::apply_control(db, &actor, run_id, "pause", "  ").await.unwrap();
        let open = db.alerts(true, 10).await.unwrap();
        let paused: Vec<_> = open.iter().filter(|a| a.kind == app::model::alerts::AlertKind::RunPaused).collect();
        assert_eq!(paused.len(), 1, "{open:?}");
        assert!(paused[0].detail.contains("no reason given"), "{}", paused[0].detail);
        assert_eq!(paused[0].detail.matches(" by ").count(), 1, "who paused it, once: {}", paused[0].detail);

        server::run::apply_control(db, &actor, run_id, "resume", "").await.unwrap();
        let open = db.alerts(true, 10).await.unwrap();
        assert!(open.iter().all(|a| a.kind != app::model::alerts::AlertKind::RunPaused), "{open:?}");
        let past = db.alerts(false, 10).await.unwrap();
        let resolved = past.iter().find(|a| a.kind == app::model::alerts::AlertKind::RunPaused).unwrap();
        assert_eq!(resolved.resolved_by.as_deref(), Some(actor.name.as_str()));
        charged.app.server.terminate().await;
    }
}

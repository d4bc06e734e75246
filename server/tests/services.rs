//! One operation, one path: the dashboard's server functions and the JSON API run the same
//! service, which writes the audit entry, so the same operation asked both ways leaves the same
//! entry (only the way in differs: a session is `staff`, a personal token `token`). And a run
//! is audited as started however it starts: the dashboard, `billing run`, the schedule.

mod support;

use app::model::audit::{AuditEntry, AuditQuery};
use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::json;
use support::{email_of, Charged};

/// The entries of `action` on `object_id`, oldest first.
async fn entries(db: &server::db::Db, action: &str, object_id: &str) -> Vec<AuditEntry> {
    let query = AuditQuery {
        action: Some(action.into()),
        object_id: Some(object_id.into()),
        limit: Some(200),
        ..AuditQuery::default()
    };
    // Lookups are committed in groups: wait for the writer's next one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut page = db.audit_page(&query).await.unwrap().entries;
        if page.len() >= 2 || std::time::Instant::now() > deadline {
            page.reverse();
            return page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// What an entry says, without when, from where and by which way in.
fn said(e: &AuditEntry) -> (String, String, Option<String>, Option<String>, Option<String>) {
    (e.actor.clone(), e.action.clone(), e.object_type.clone(), e.object_id.clone(), e.detail.clone())
}

on_both_databases! {
    async fn the_dashboard_and_the_api_run_one_service_and_leave_the_same_audit_entry(kind: Kind) {
        let Charged { app, sim } = support::charged_week(kind, &[]).await;
        let finance = email_of(Role::Finance);
        let browser = app.signed_in(&finance).await;
        let token = app.token_for(&finance).await;
        let http = reqwest::Client::new();
        let (invoice, user): (i64, String) =
            support::rows(&app.db, "SELECT c.invoice_id, c.user_id FROM charges c WHERE c.state = 'charged' ORDER BY c.invoice_id LIMIT 1")
                .await
                .into_iter()
                .next()
                .expect("a charged invoice");

        // A customer's charge attempts, looked at from the dashboard, then over the API.
        let page = browser
            .post(app.url("/api/fn/users/activity"))
            .header("origin", &app.server.base)
            .form(&[("id", user.as_str()), ("section", "attempts"), ("before", "")])
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{}", page.text().await.unwrap());
        let api = http.get(app.url(&format!("/api/v1/users/{user}/charges?section=attempts"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(api.status(), StatusCode::OK, "{}", api.text().await.unwrap());
        let looked = entries(&app.db, "user.view", &user).await;
        let attempts: Vec<&AuditEntry> = looked.iter().filter(|e| e.detail.as_deref() == Some("attempts")).collect();
        assert_eq!(attempts.len(), 2, "one entry per look, each way: {looked:?}");
        assert_eq!(said(attempts[0]), said(attempts[1]), "the same entry both ways");
        assert_eq!((attempts[0].actor_kind.as_str(), attempts[1].actor_kind.as_str()), ("staff", "token"));

        // A refund of one cent, asked from the dashboard, then over the API.
        let created = browser
            .post(app.url("/api/fn/refunds/create"))
            .header("origin", &app.server.base)
            .form(&[
                ("invoice_id", invoice.to_string().as_str()),
                ("amount", "0.01"),
                ("reason", "service_issue"),
                ("request_id", "both-ways-1"),
                ("note", "asked twice"),
                ("lines", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::OK, "{}", created.text().await.unwrap());
        let created = http
            .post(app.url(&format!("/api/v1/invoices/{invoice}/refunds")))
            .bearer_auth(&token)
            .json(&json!({ "amount": "0.01", "reason": "service_issue", "request_id": "both-ways-2", "note": "asked twice" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text().await.unwrap());
        let requested = entries(&app.db, "refund.request", &invoice.to_string()).await;
        assert_eq!(requested.len(), 2, "{requested:?}");
        assert_eq!(said(&requested[0]), said(&requested[1]), "the same entry both ways");
        // And the provider made both, once each.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let refunds: Vec<i64> = sim.ledger().await.iter().filter(|e| e["kind"] == "refund").map(|e| e["amount"].as_i64().unwrap()).collect();
            if refunds.len() >= 2 || std::time::Instant::now() > deadline {
                assert_eq!(refunds, vec![1, 1], "two refunds of one cent at the provider");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    async fn a_run_is_audited_as_started_whoever_starts_it(kind: Kind) {
        // `billing run --approve` (the CLI) started this week's run.
        let Charged { app, sim: _sim } = support::charged_week(kind, &[]).await;
        let run = app.db.run_of_week(&support::last_week()).await.unwrap().expect("the run");
        let started = entries(&app.db, "run.start", &run.id.to_string()).await;
        assert_eq!(started.len(), 1, "started once, audited once: {started:?}");
        assert_eq!(started[0].detail.as_deref(), Some(format!("week {}", support::last_week()).as_str()));
        // Starting it again from the dashboard joins the same run, and is not a second start.
        let finance = app.signed_in(&email_of(Role::Finance)).await;
        let again = finance
            .post(app.url("/api/fn/runs/start"))
            .header("origin", &app.server.base)
            .form(&[("week", support::last_week())])
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "{}", again.text().await.unwrap());
        assert_eq!(entries(&app.db, "run.start", &run.id.to_string()).await.len(), 1);
    }
}

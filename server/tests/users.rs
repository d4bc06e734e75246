//! Finding a customer (`GET /api/v1/users?q=`), on each database: by id, name, email or phone,
//! by prefix and ignoring case, refused with a named field when the query is bad, audited.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::Value;
use server::db::rides::NewUser;
use support::{email_of, StaffedServer};

on_both_databases! {
    async fn support_finds_a_customer_by_id_name_email_or_phone(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let user = |id: &str, name: &str, email: &str, phone: &str| NewUser {
            id: id.into(),
            name: name.into(),
            email: Some(email.into()),
            phone: Some(phone.into()),
            language: "en".into(),
        };
        app.db
            .add_users(&[
                user("u-100", "Élodie Durand", "Elodie.Durand@Example.com", "+1 (555) 010-2030"),
                user("u-101", "Bo Li", "bo@example.net", "+44 20 7946 0000"),
                user("x-7", "Ana Bo", "ana@example.org", "555-777"),
            ])
            .await
            .unwrap();
        let token = app.token_for(&email_of(Role::Support)).await;
        let http = reqwest::Client::new();
        let search = |q: &'static str| {
            let request = http.get(app.url("/api/v1/users")).bearer_auth(&token).query(&[("q", q)]);
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{q}");
                let body: Value = response.json().await.unwrap();
                body["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
            }
        };
        assert_eq!(search("u-10").await, ["u-100", "u-101"], "by id prefix");
        assert_eq!(search("élo").await, ["u-100"], "by name, ignoring case, beyond ASCII");
        assert_eq!(search("BO").await, ["u-101"], "by name prefix only (Ana Bo does not start with bo), and by email bo@");
        assert_eq!(search("ELODIE.durand@").await, ["u-100"], "by email, ignoring case");
        assert_eq!(search("+1 555 010").await, ["u-100"], "by phone digits, whatever the formatting");
        assert!(search("nobody").await.is_empty());

        for (query, field) in [(vec![("q", "")], "q"), (vec![("q", "u"), ("limit", "0")], "limit")] {
            let response = http.get(app.url("/api/v1/users")).bearer_auth(&token).query(&query).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(response.json::<Value>().await.unwrap()["field"], field);
        }
        let audit = app.db.audit_page(&Default::default()).await.unwrap();
        let searches: Vec<_> = audit.entries.iter().filter(|e| e.action == "user.search").collect();
        assert_eq!(searches.len(), 6, "every search is audited: who looked for whom");
        assert!(searches.iter().all(|e| e.actor == email_of(Role::Support)));
        let anonymous = http.get(app.url("/api/v1/users")).query(&[("q", "u")]).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }
}

//! `POST /api/v1/rides` over real HTTP against a running `billing serve`, on each database:
//! API-key authentication, idempotency by ride id, conflicts naming both versions, per-ride
//! errors in batches, and the batch limits.

mod support;

use app::model::staff::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use server::db::rides::NewUser;
use support::{email_of, StaffedServer};

fn ride(id: &str, km: i64) -> Value {
    json!({
        "ride_id": id,
        "driver_id": "dana",
        "distance_m": km * 1000,
        "started_at": "2026-11-24T08:00:00Z",
        "ended_at": "2026-11-24T08:30:00Z",
        "seats": [{"passenger_id": "ana", "attendance": "completed"}, {"passenger_id": "bo", "attendance": "no_show"}]
    })
}

async fn with_key_and_users(app: &StaffedServer) -> String {
    let users: Vec<NewUser> = ["dana", "ana", "bo"]
        .iter()
        .map(|id| NewUser {
            id: (*id).into(),
            name: (*id).into(),
            email: None,
            phone: None,
            language: "en".into(),
            provider: Default::default(),
        })
        .collect();
    app.db.add_users(&users).await.unwrap();
    app.ingestion_key().await
}

on_both_databases! {
    async fn rides_need_a_live_ingestion_key(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let http = reqwest::Client::new();
        let post = |auth: Option<String>| {
            let mut request = http.post(app.url("/api/v1/rides")).json(&ride("r1", 10));
            if let Some(auth) = auth {
                request = request.bearer_auth(auth);
            }
            request.send()
        };
        assert_eq!(post(None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        let staff_token = app.token_for(&email_of(Role::Admin)).await;
        assert_eq!(post(Some(staff_token)).await.unwrap().status(), StatusCode::UNAUTHORIZED, "a staff token is not an ingestion key");
        assert_eq!(post(Some("cbkey_forged".into())).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(post(Some(key)).await.unwrap().status(), StatusCode::CREATED);
    }

    async fn a_ride_is_stored_once_and_conflicts_name_both_versions(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let http = reqwest::Client::new();
        let send = |body: Value| http.post(app.url("/api/v1/rides")).bearer_auth(&key).json(&body).send();

        assert_eq!(send(ride("r1", 10)).await.unwrap().status(), StatusCode::CREATED);
        let again = send(ride("r1", 10)).await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(again.json::<Value>().await.unwrap()["stored"], "already");

        let conflict = send(ride("r1", 11)).await.unwrap();
        assert_eq!(conflict.status(), StatusCode::CONFLICT);
        let body: Value = conflict.json().await.unwrap();
        assert_eq!(body["field"], "ride_id");
        assert_eq!(body["stored"]["distance_m"], 10_000, "the stored version");
        assert_eq!(body["received"]["distance_m"], 11_000, "the received version");
        assert_eq!(app.db.ride("r1").await.unwrap().unwrap().distance_m, 10_000);
        assert_eq!(app.db.ride_count().await.unwrap(), 1);
    }

    async fn a_batch_stores_the_good_rides_and_names_each_bad_one(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let mut bad_attendance = ride("b1", 5);
        bad_attendance["seats"][1]["attendance"] = json!("maybe");
        let mut unknown_driver = ride("b2", 5);
        unknown_driver["driver_id"] = json!("ghost");
        let mut backwards = ride("b3", 5);
        backwards["ended_at"] = json!("2026-11-24T07:00:00Z");
        let mut self_ride = ride("b4", 5);
        self_ride["seats"][0]["passenger_id"] = json!("dana");
        let mut missing = ride("b5", 5);
        missing.as_object_mut().unwrap().remove("distance_m");
        let batch = json!({ "rides": [ride("g1", 3), bad_attendance, unknown_driver, ride("g2", 4), backwards, self_ride, missing, ride("g1", 3)] });

        let response = reqwest::Client::new().post(app.url("/api/v1/rides")).bearer_auth(&key).json(&batch).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["created"], 2);
        assert_eq!(body["duplicates"], 1);
        let rejected: Vec<(u64, String)> = body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(
            rejected,
            [
                (1, "seats[1].attendance".to_owned()),
                (2, "driver_id".to_owned()),
                (4, "ended_at".to_owned()),
                (5, "seats[0].passenger_id".to_owned()),
                (6, "ride".to_owned()),
            ],
            "{body}"
        );
        assert!(body["rejected"][4]["reason"].as_str().unwrap().contains("distance_m"), "{body}");
        assert_eq!(app.db.ride_count().await.unwrap(), 2);
    }

    async fn a_batch_answers_each_ride_as_one_at_a_time_would(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let http = reqwest::Client::new();
        let send = |body: Value| http.post(app.url("/api/v1/rides")).bearer_auth(&key).json(&body).send();
        assert_eq!(send(ride("s1", 10)).await.unwrap().status(), StatusCode::CREATED);
        let mut unknown_passenger = ride("u1", 5);
        unknown_passenger["seats"][1]["passenger_id"] = json!("ghost");
        // s1 stored with 10 km: the same again is a duplicate, 12 km a conflict; n1 comes twice
        // in the batch, the second time different.
        let batch = json!({ "rides": [ride("s1", 10), ride("s1", 12), ride("n1", 3), unknown_passenger, ride("n1", 4), ride("n2", 5)] });
        let body: Value = send(batch).await.unwrap().json().await.unwrap();
        assert_eq!((body["created"].as_u64(), body["duplicates"].as_u64()), (Some(2), Some(1)), "{body}");
        let rejected: Vec<(u64, u64, &str)> = body["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["index"].as_u64().unwrap(), r["status"].as_u64().unwrap(), r["field"].as_str().unwrap()))
            .collect();
        assert_eq!(rejected, [(1, 409, "ride_id"), (3, 422, "seats[1].passenger_id"), (4, 409, "ride_id")], "{body}");
        assert_eq!(body["rejected"][0]["stored"]["distance_m"], 10_000, "{body}");
        assert_eq!(body["rejected"][2]["stored"]["distance_m"], 3_000, "the batch's first n1 was stored: {body}");
        assert!(body["rejected"][1]["reason"].as_str().unwrap().contains("ghost"), "{body}");
        assert_eq!(app.db.ride_count().await.unwrap(), 3);
        assert_eq!(app.db.ride("n1").await.unwrap().unwrap().distance_m, 3_000);
        assert_eq!(app.db.ride("u1").await.unwrap(), None, "nothing stored for a refused ride");
    }

    async fn batches_have_limits(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let http = reqwest::Client::new();
        // 10,001 small rides: refused as a whole, nothing stored. The body (~2 MB) is over the
        // general 1 MiB limit but within this endpoint's.
        let rides: Vec<Value> = (0..10_001).map(|i| ride(&format!("x{i}"), 1)).collect();
        let response = http.post(app.url("/api/v1/rides")).bearer_auth(&key).json(&json!({ "rides": rides })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.json::<Value>().await.unwrap()["field"], "rides");
        assert_eq!(app.db.ride_count().await.unwrap(), 0);
        let not_json = http.post(app.url("/api/v1/rides")).bearer_auth(&key).body("{").send().await.unwrap();
        assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
        assert_eq!(support::status_of_oversized_post(&app.server.base, "/api/v1/rides", 17 * 1024 * 1024).await, 413);
    }

    async fn the_carpool_app_adds_its_users(kind: Kind) {
        let app = StaffedServer::start(kind).await;
        let key = with_key_and_users(&app).await;
        let body = json!({ "users": [
            {"id": "u1", "name": "Uma", "email": "Uma@Example.com", "language": "es"},
            {"id": "ana", "name": "Ana again"},
            {"id": "", "name": "No id"},
            {"id": "u2", "name": "Bad mail", "email": "not-an-email"},
            {"id": "u3", "name": "Klingon", "language": "tlh"},
            {"id": "u4", "name": "Extra", "admin": true},
            {"id": "u5", "name": "<script>alert(1)</script>'; DROP TABLE users; --"},
        ]});
        let http = reqwest::Client::new();
        let response = http.post(app.url("/api/v1/users")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["created"], 2, "{answer}");
        assert_eq!(answer["existing"], 1, "{answer}");
        let fields: Vec<(u64, &str)> = answer["rejected"].as_array().unwrap().iter().map(|r| (r["index"].as_u64().unwrap(), r["field"].as_str().unwrap())).collect();
        assert_eq!(fields, [(2, "id"), (3, "email"), (4, "language"), (5, "admin")], "the unknown field is named: {answer}");
        // The new users can now ride.
        let mut ride = ride("u-ride", 3);
        ride["seats"] = json!([{"passenger_id": "u1", "attendance": "completed"}, {"passenger_id": "u5", "attendance": "completed"}]);
        let stored = http.post(app.url("/api/v1/rides")).bearer_auth(&key).json(&ride).send().await.unwrap();
        assert_eq!(stored.status(), StatusCode::CREATED);
        let without_key = http.post(app.url("/api/v1/users")).json(&body).send().await.unwrap();
        assert_eq!(without_key.status(), StatusCode::UNAUTHORIZED);
    }
}

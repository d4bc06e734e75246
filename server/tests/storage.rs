//! Storage behaviour, each test run on SQLite and on PostgreSQL.

mod support;

use app::model::audit::AuditQuery;
use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;
use serde_json::json;
use server::db::audit::{Actor, NewAuditEntry};
use server::db::rides::{NewUser, StoreRideError, Stored};

fn user(id: &str) -> NewUser {
    NewUser {
        id: id.into(),
        name: format!("User {id}"),
        email: None,
        phone: None,
        language: "en".into(),
        provider: Default::default(),
    }
}

fn sample_ride(id: &str) -> Ride {
    let ended_at = chrono::DateTime::parse_from_rfc3339("2026-11-24T08:30:00.123456Z").unwrap().to_utc();
    Ride {
        ride_id: id.into(),
        driver_id: "dana".into(),
        distance_m: 12_345,
        started_at: ended_at - chrono::Duration::minutes(25),
        ended_at,
        seats: vec![
            Seat { passenger_id: "bo".into(), attendance: Attendance::Completed },
            Seat { passenger_id: "ana".into(), attendance: Attendance::NoShow },
        ],
    }
}
use server::db::migrations::{POSTGRES, SQLITE};
use support::{Kind, TestDb};

#[test]
fn both_dialects_have_the_same_migrations() {
    let names = |m: &sqlx::migrate::Migrator| -> Vec<(i64, String)> {
        m.iter().map(|m| (m.version, m.description.to_string())).collect()
    };
    assert!(SQLITE.iter().next().is_some(), "there are migrations");
    assert_eq!(names(&SQLITE), names(&POSTGRES));
}

on_both_databases! {
    async fn an_empty_batch_begins_no_attempt(kind: Kind) {
        // An empty batch (every item of it given back before any call) begins nothing; on
        // PostgreSQL its `IN ()` was once a syntax error that stopped the run's workers.
        use server::db::runs::Work;
        let (_test_db, db) = TestDb::migrated(kind).await;
        for work in [Work::Charge, Work::Transfer] {
            for renew in [None, Some(chrono::Duration::seconds(5))] {
                let begun = db.begin_attempts(work, "2026-W01", &[], "worker", renew).await.unwrap();
                assert!(begun.is_empty());
            }
        }
    }

    async fn migrates_from_empty(kind: Kind) {
        let test_db = TestDb::empty(kind).await;
        let db = test_db.connect().await;

        let before = db.migration_state().await.unwrap();
        assert_eq!(before.applied, 0);
        assert!(!before.is_current());
        assert_eq!(before.pending.len() as u32, before.known);

        db.migrate().await.unwrap();
        let after = db.migration_state().await.unwrap();
        assert!(after.is_current(), "{after:?}");
        assert_eq!(after.applied, after.known);
        assert!(after.latest_version.is_some());

        // Running again is harmless.
        db.migrate().await.unwrap();
        assert_eq!(db.migration_state().await.unwrap(), after);
    }

    async fn asking_for_the_migration_state_changes_nothing(kind: Kind) {
        let test_db = TestDb::empty(kind).await;
        let db = test_db.connect().await;
        db.migration_state().await.unwrap();
        db.migration_state().await.unwrap();
        // sqlx's bookkeeping table was not created by looking.
        let sql = match kind {
            Kind::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'",
            Kind::Postgres => "SELECT COUNT(*) FROM pg_tables WHERE tablename = '_sqlx_migrations'",
        };
        let count: i64 = server::with_pool!(&db, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap());
        assert_eq!(count, 0);
    }

    async fn concurrent_migrations_apply_once(kind: Kind) {
        let test_db = TestDb::empty(kind).await;
        let (a, b) = (test_db.connect().await, test_db.connect().await);
        let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
        ra.unwrap();
        rb.unwrap();
        assert!(a.migration_state().await.unwrap().is_current());
    }

    async fn settings_round_trip(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        assert_eq!(db.setting("refund.limit").await.unwrap(), None);

        let stored = db.put_setting("refund.limit", &json!({"amount": "50.00", "currency": "USD"}), "ops@example.com").await.unwrap();
        assert_eq!(db.setting("refund.limit").await.unwrap(), Some(stored));

        let replaced = db.put_setting("refund.limit", &json!(["a", 1, true]), "admin@example.com").await.unwrap();
        let read = db.setting("refund.limit").await.unwrap().unwrap();
        assert_eq!(read, replaced);
        assert_eq!(read.updated_by, "admin@example.com");
    }

    async fn the_database_refuses_invalid_settings(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        db.put_setting("kept", &json!(1), "a").await.unwrap();
        let result = server::with_pool!(&db, pool => {
            sqlx::query("INSERT INTO settings (key, value, updated_at, updated_by) VALUES ('', '1', '2026-01-01T00:00:00Z', 'x')")
                .execute(pool).await.map(|_| ())
        });
        assert!(result.is_err(), "an empty key is refused by the schema");
        assert_eq!(db.setting("kept").await.unwrap().unwrap().value, json!(1));
    }

    async fn the_audit_log_refuses_changes(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        db.audit(&NewAuditEntry::new(&Actor::cli(), "test.event", "thing", 1)).await.unwrap();
        for sql in ["UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"] {
            let result = server::with_pool!(&db, pool => sqlx::query(sql).execute(pool).await.map(|_| ()));
            let error = result.expect_err(sql).to_string();
            assert!(error.contains("append-only"), "{sql}: {error}");
        }
        let page = db.audit_page(&AuditQuery::default()).await.unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].actor, Actor::cli().name);
        assert_eq!(page.entries[0].actor_kind, "cli");
    }

    async fn audit_pages_are_keyset_paged_and_filtered(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        let ana = Actor { kind: "staff", name: "ana@example.com".into(), staff_id: Some(1), source: "10.0.0.1".into() };
        let bob = Actor { kind: "staff", name: "bob@example.com".into(), staff_id: Some(2), source: "10.0.0.2".into() };
        for i in 0..120 {
            let (actor, action) = if i % 3 == 0 { (&bob, "refund.create") } else { (&ana, "staff.add") };
            let mut entry = NewAuditEntry::new(actor, action, "thing", i);
            entry.after = Some(json!({ "n": i }));
            db.audit(&entry).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut query = AuditQuery { limit: Some(50), ..Default::default() };
        loop {
            let page = db.audit_page(&query).await.unwrap();
            seen.extend(page.entries.iter().map(|e| e.object_id.clone().unwrap().parse::<i32>().unwrap()));
            match page.next {
                Some(next) => query.before_id = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (0..120).rev().collect::<Vec<_>>(), "every entry once, newest first");

        let bobs = db.audit_page(&AuditQuery { actor: Some("bob@example.com".into()), limit: Some(200), ..Default::default() }).await.unwrap();
        assert_eq!(bobs.entries.len(), 40);
        assert!(bobs.entries.iter().all(|e| e.action == "refund.create" && e.source == "10.0.0.2"));
        let prefixed = db.audit_page(&AuditQuery { action: Some("staff.".into()), limit: Some(200), ..Default::default() }).await.unwrap();
        assert_eq!(prefixed.entries.len(), 80);
        let one = db.audit_page(&AuditQuery { object_type: Some("thing".into()), object_id: Some("7".into()), ..Default::default() }).await.unwrap();
        assert_eq!(one.entries.len(), 1);
        assert_eq!(one.entries[0].after.as_deref().map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap()), Some(json!({ "n": 7 })));
        let future = db.audit_page(&AuditQuery { since: Some("2999-01-01".into()), ..Default::default() }).await.unwrap();
        assert!(future.entries.is_empty());
        let past = db.audit_page(&AuditQuery { until: Some("2000-01-01T00:00:00Z".into()), ..Default::default() }).await.unwrap();
        assert!(past.entries.is_empty());
        let all_today = db.audit_page(&AuditQuery { since: Some("2000-01-01".into()), limit: Some(200), ..Default::default() }).await.unwrap();
        assert_eq!(all_today.entries.len(), 120);
        for bad in [AuditQuery { limit: Some(0), ..Default::default() }, AuditQuery { since: Some("soon".into()), ..Default::default() }] {
            assert!(matches!(db.audit_page(&bad).await, Err(server::error::Error::Invalid { .. })));
        }
    }

    async fn lookups_audit_entries_are_committed_before_they_are_answered_and_a_refused_one_fails_alone(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        let writer = server::audit_writer::AuditWriter::start(db.clone());
        let ana = Actor { kind: "staff", name: "ana@example.com".into(), staff_id: Some(1), source: "10.0.0.1".into() };
        // The schema refuses this actor kind: its group fails, and each of the group's entries is
        // then written on its own.
        let nobody = Actor { kind: "nobody", ..ana.clone() };
        let lookups = (0..200).map(|i| {
            let (writer, db) = (writer.clone(), db.clone());
            let actor = if i == 77 { nobody.clone() } else { ana.clone() };
            tokio::spawn(async move {
                let written = writer.write(NewAuditEntry::new(&actor, "user.search", "user_search", i)).await;
                // Answered only once committed: another connection reads it at once.
                let query = AuditQuery { object_id: Some(i.to_string()), ..Default::default() };
                let found = db.audit_page(&query).await.unwrap().entries.len();
                (i, written, found)
            })
        });
        let outcomes = futures::future::join_all(lookups).await;
        for outcome in outcomes {
            let (i, written, found) = outcome.unwrap();
            if i == 77 {
                assert!(written.is_err(), "the refused entry's request fails");
                assert_eq!(found, 0);
            } else {
                assert_eq!(written, Ok(()), "entry {i}");
                assert_eq!(found, 1, "entry {i} is stored once when its request is answered");
            }
        }
        let all = db.audit_page(&AuditQuery { limit: Some(200), ..Default::default() }).await.unwrap();
        assert_eq!(all.entries.len(), 199);
        assert!(all.entries.iter().all(|e| e.action == "user.search" && e.actor == "ana@example.com"));
    }

    async fn an_objects_changes_are_read_through_their_own_index_however_often_it_was_looked_at(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        let ana = Actor { kind: "staff", name: "ana@example.com".into(), staff_id: Some(1), source: "10.0.0.1".into() };
        for i in 0..300 {
            let action = if i % 100 == 50 { "refund.create" } else { "invoice.view" };
            db.audit(&NewAuditEntry::new(&ana, action, "invoice", 7)).await.unwrap();
            db.audit(&NewAuditEntry::new(&ana, "refund.create", "invoice", 8)).await.unwrap();
        }
        let changes = db.object_changes("invoice", "7", 100).await.unwrap();
        assert_eq!(changes.len(), 3, "the three changes, none of the 297 views");
        assert!(changes.iter().all(|e| e.action == "refund.create" && e.object_id.as_deref() == Some("7")));
        assert!(changes.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(db.object_changes("invoice", "8", 100).await.unwrap().len(), 100, "at most the limit");
        let views = db.audit_page(&AuditQuery { object_type: Some("invoice".into()), object_id: Some("7".into()), action: Some("invoice.view".into()), limit: Some(200), ..Default::default() }).await.unwrap();
        assert_eq!((views.entries.len(), views.next.is_some()), (200, true), "the views are still in the log");

        // The query is one the partial index serves (the databases use it only for a query that
        // states its condition).
        let sql = format!("SELECT id FROM audit_log WHERE object_type = 'invoice' AND object_id = '7' AND {} ORDER BY id DESC LIMIT 100", server::db::audit::NOT_A_LOOKUP);
        let plan: Vec<String> = match &db {
            server::db::Db::Sqlite(pool) => {
                let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(pool).await.unwrap();
                rows.into_iter().map(|r| r.3).collect()
            }
            server::db::Db::Postgres(pool) => {
                let mut tx = pool.begin_with("BEGIN").await.unwrap();
                sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
                sqlx::query_scalar(&format!("EXPLAIN {sql}")).fetch_all(&mut *tx).await.unwrap()
            }
        };
        assert!(plan.iter().any(|line| line.contains("audit_log_object_changes")), "{plan:#?}");
    }

    async fn a_search_finds_each_user_once_by_any_key_and_a_blank_one_finds_nobody(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        let mut ana = user("p4711");
        ana.phone = Some("+1 555 4711".into());
        let mut bo = user("x-1");
        bo.name = "P4711 Bo".into();
        db.add_users(&[ana, bo, user("p4712")]).await.unwrap();
        let ids = |hits: Vec<app::model::customer::UserHit>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(db.search_users("p4711", 20).await.unwrap()), ["p4711", "x-1"], "by id and by name, once each, in id order");
        assert_eq!(ids(db.search_users("+1 555 47", 20).await.unwrap()), ["p4711"], "by phone digits");
        assert_eq!(ids(db.search_users("p471", 1).await.unwrap()), ["p4711"], "at most the limit");
        assert!(db.search_users("   ", 20).await.unwrap().is_empty(), "a blank search finds nobody");
    }

    async fn a_ride_is_stored_once_and_a_different_one_under_its_id_is_refused(kind: Kind) {
        let (_guard, db) = TestDb::migrated(kind).await;
        assert_eq!(db.add_users(&[user("dana"), user("ana"), user("bo")]).await.unwrap(), 3);
        assert_eq!(db.add_users(&[user("dana")]).await.unwrap(), 0, "known users are not added twice");

        let ride = sample_ride("r1");
        assert_eq!(db.store_ride(&ride).await.unwrap(), Stored::Created);
        let mut reordered = ride.clone();
        reordered.seats.reverse();
        assert_eq!(db.store_ride(&reordered).await.unwrap(), Stored::AlreadyStored, "a resend, seats in another order");
        let stored = db.ride("r1").await.unwrap().unwrap();
        assert_eq!(stored.seats[0].passenger_id, "ana");
        assert_eq!(stored.ended_at, ride.ended_at);

        let mut changed = ride.clone();
        changed.distance_m += 1;
        match db.store_ride(&changed).await {
            Err(StoreRideError::Conflict { stored }) => assert_eq!(stored.distance_m, 12_345),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(db.ride("r1").await.unwrap().unwrap().distance_m, 12_345, "the stored ride is unchanged");

        let mut stranger = sample_ride("r2");
        stranger.seats[1].passenger_id = "nobody".into();
        let error = db.store_ride(&stranger).await.unwrap_err().to_string();
        assert_eq!(error, "seats[1].passenger_id: no user nobody");
        let mut no_driver = sample_ride("r3");
        no_driver.driver_id = "ghost".into();
        assert_eq!(db.store_ride(&no_driver).await.unwrap_err().to_string(), "driver_id: no user ghost");
        let mut invalid = sample_ride("r4");
        invalid.distance_m = -5;
        assert!(db.store_ride(&invalid).await.unwrap_err().to_string().starts_with("distance_m"));
        assert_eq!(db.ride_count().await.unwrap(), 1, "refused rides left nothing behind");
    }

    async fn a_weeks_rides_are_read_in_order_with_their_seats_however_they_were_stored(kind: Kind) {
        // A seat carries its ride's end time, so a week is read in order (migration 0025): a
        // seat stored before that migration gets it from its ride, and both ways of storing a
        // ride write it. A seat without it would leave its ride out of the week, or seatless.
        let test_db = TestDb::empty(kind).await;
        let db = test_db.connect().await;
        let all = db.migrator();
        let before = sqlx::migrate::Migrator {
            migrations: all.iter().filter(|m| m.version < 25).cloned().collect::<Vec<_>>().into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        server::with_pool!(&db, pool => before.run(pool).await.unwrap());
        db.add_users(&[user("dana"), user("ana"), user("bo")]).await.unwrap();
        let at = |ride: &str, minutes: i64| {
            let mut ride = sample_ride(ride);
            ride.ended_at += chrono::Duration::minutes(minutes);
            ride.started_at += chrono::Duration::minutes(minutes);
            ride
        };
        let old = at("r-old", 10);
        server::with_pool!(&db, pool => {
            sqlx::query(
                "INSERT INTO rides (ride_id, driver_id, distance_m, started_at, ended_at, content_hash, received_at) \
                 VALUES ($1, $2, $3, $4, $5, 'h', $5)",
            )
            .bind(&old.ride_id)
            .bind(&old.driver_id)
            .bind(old.distance_m)
            .bind(old.started_at)
            .bind(old.ended_at)
            .execute(pool)
            .await
            .unwrap();
            for seat in &old.seats {
                sqlx::query("INSERT INTO ride_seats (ride_id, passenger_id, attendance) VALUES ($1, $2, 'completed')")
                    .bind(&old.ride_id)
                    .bind(&seat.passenger_id)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        });
        db.migrate().await.unwrap();
        assert_eq!(db.store_ride(&at("r-one", 20)).await.unwrap(), Stored::Created);
        // An id may hold any character; SQLite's read carries it through JSON.
        let odd = "r-b \"é\\\n";
        let batch = [at(odd, 0), at("r-a", 0), at("r-late", 60 * 24 * 7)];
        assert!(db.store_rides(&batch).await.unwrap().iter().all(|o| matches!(o, Ok(Stored::Created))));

        let start = old.ended_at - chrono::Duration::hours(1);
        let mut read: Vec<(String, Vec<String>)> = Vec::new();
        let count = db
            .each_ride_ended_between(start, start + chrono::Duration::days(1), |ride| {
                read.push((ride.ride_id, ride.seats.into_iter().map(|s| s.passenger_id).collect()));
                Ok::<_, sqlx::Error>(())
            })
            .await
            .unwrap();
        let seats = || vec!["ana".to_string(), "bo".to_string()];
        let expected = [("r-a", seats()), (odd, seats()), ("r-old", seats()), ("r-one", seats())]
            .map(|(id, seats)| (id.to_string(), seats));
        assert_eq!(read, expected, "by end time, then id, each with its seats by passenger");
        assert_eq!(count, 4, "the ride of the next week is not read");
    }

    async fn a_week_of_more_rides_than_one_read_holds_is_read_whole_each_once_in_order(kind: Kind) {
        // SQLite reads a week 2,000 rides at a time, each read starting after the last ride of
        // the one before (by end time, then id). 4,000 rides fill two reads exactly; their end
        // times are three, so rides ending together straddle both boundaries.
        let (_guard, db) = TestDb::migrated(kind).await;
        db.add_users(&[user("dana"), user("ana"), user("bo")]).await.unwrap();
        let rides: Vec<Ride> = (0..4_000)
            .map(|i| {
                let mut ride = sample_ride(&format!("r{i:05}"));
                ride.ended_at += chrono::Duration::minutes(i % 3);
                ride
            })
            .collect();
        for batch in rides.chunks(1_000) {
            db.store_rides(batch).await.unwrap();
        }
        let start = rides[0].ended_at;
        let mut read: Vec<(chrono::DateTime<chrono::Utc>, String)> = Vec::new();
        let count = db
            .each_ride_ended_between(start, start + chrono::Duration::days(1), |ride| {
                assert_eq!(ride.seats.len(), 2, "{}", ride.ride_id);
                read.push((ride.ended_at, ride.ride_id));
                Ok::<_, sqlx::Error>(())
            })
            .await
            .unwrap();
        let mut expected: Vec<_> = rides.into_iter().map(|r| (r.ended_at, r.ride_id)).collect();
        expected.sort();
        assert_eq!(count, 4_000);
        assert_eq!(read, expected);
    }

    async fn concurrent_senders_store_a_ride_once(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        db.add_users(&[user("dana"), user("ana"), user("bo")]).await.unwrap();
        let mut senders = Vec::new();
        for _ in 0..8 {
            let db = test_db.connect().await;
            senders.push(tokio::spawn(async move { db.store_ride(&sample_ride("r1")).await.unwrap() }));
        }
        let mut outcomes = Vec::new();
        for sender in senders {
            outcomes.push(sender.await.unwrap());
        }
        assert_eq!(outcomes.iter().filter(|o| **o == Stored::Created).count(), 1, "{outcomes:?}");
        assert_eq!(db.ride_count().await.unwrap(), 1);
    }
}

on_both_databases! {
    // The audit log's actor filter takes the start of a name or email, ignoring case; `%` and `_`
    // are matched as typed, not as wildcards.
    async fn the_audit_log_finds_an_actor_by_the_start_of_their_email(kind: Kind) {
        let (_test_db, db) = TestDb::migrated(kind).await;
        for name in ["rosa@example.com", "rosalind@example.com", "bob@example.com", "r_x@example.com"] {
            let actor = server::db::audit::Actor { kind: "staff", name: name.into(), staff_id: None, source: "test".into() };
            db.audit(&server::db::audit::NewAuditEntry::new(&actor, "test.entry", "test", 1)).await.unwrap();
        }
        let actors = |filter: &str| {
            let query = app::model::audit::AuditQuery { actor: Some(filter.into()), ..Default::default() };
            let db = &db;
            async move {
                let mut found: Vec<String> =
                    db.audit_page(&query).await.unwrap().entries.into_iter().map(|e| e.actor).collect();
                found.sort();
                found
            }
        };
        assert_eq!(actors("Rosa").await, ["rosa@example.com", "rosalind@example.com"]);
        assert_eq!(actors("rosa@example.com").await, ["rosa@example.com"]);
        assert_eq!(actors("r_").await, ["r_x@example.com"], "_ is not a wildcard");
        assert!(actors("%").await.is_empty(), "% is not a wildcard");
    }
}

on_both_databases! {
    // The check that ends a run's canary reads the ledger transactions of the run's week only
    // (the whole ledger grows by a week's movements every week); the whole-ledger check the
    // tests audit with still sees every week's.
    async fn the_canary_reads_only_its_weeks_ledger(kind: Kind) {
        use app::model::money::{BillingCurrency, Money};
        use server::billing::ledger::{Account, Transaction};
        let (_test_db, db) = TestDb::migrated(kind).await;
        let eur = BillingCurrency::from_code("EUR").unwrap();
        for (week, reference) in [("2026-W01", "invoice-1"), ("2026-W02", "invoice-2"), ("2026-W02", "invoice-3")] {
            let receivable = Account::PassengerReceivable("ana".into());
            let charge = Transaction::transfer("charge", reference, Account::ProviderClearing, receivable, Money::from_minor(500, eur));
            db.record_ledger(&charge.unwrap().of_week(week)).await.unwrap();
        }
        assert!(db.unbalanced_transactions("2026-W01").await.unwrap().is_empty());
        assert!(db.unbalanced_transactions("2026-W02").await.unwrap().is_empty());
        // One posting more on a transaction of each week: neither balances any more.
        support::execute(
            &db,
            "INSERT INTO ledger_postings (transaction_id, account, amount_minor) \
             SELECT id, 'provider_clearing', 1 FROM ledger_transactions WHERE reference IN ('invoice-1', 'invoice-3')",
        )
        .await;
        let ids: Vec<(i64,)> = support::rows(
            &db,
            "SELECT id FROM ledger_transactions WHERE reference IN ('invoice-1', 'invoice-3') ORDER BY reference",
        )
        .await;
        let (first, third) = (ids[0].0, ids[1].0);
        assert_eq!(db.unbalanced_transactions("2026-W01").await.unwrap(), [first]);
        assert_eq!(db.unbalanced_transactions("2026-W02").await.unwrap(), [third]);
        assert!(db.unbalanced_transactions("2026-W03").await.unwrap().is_empty());
        let (_, mut all) = db.ledger_check().await.unwrap();
        all.sort();
        assert_eq!(all, [first, third]);
    }
}

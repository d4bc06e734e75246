//! Storage behaviour, each test run on SQLite and on PostgreSQL.

mod support;

use serde_json::json;
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
}

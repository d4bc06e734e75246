//! A week's stored preview and its approval, on each database: drafts follow their rides, an
//! approval freezes exactly the reviewed content, a ride is billed in one week only, rides that
//! arrive late become late lines of the next approval, and tampering is detected.

mod support;

use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;
use app::model::week::BillingWeek;
use chrono::{Duration, Utc};
use chrono_tz::Tz;
use server::config::Config;
use server::db::audit::Actor;
use server::db::rides::NewUser;
use server::db::weeks::{ApproveError, Approved, FREEZE_LOCK};
use server::db::Db;
use server::preview::{self, PreviewError};
use support::{execute, Kind, TestDb};

fn config(url: &str) -> Config {
    let url = url.to_owned();
    Config::from_lookup(move |name| (name == "DATABASE_URL").then(|| url.clone())).unwrap()
}

fn last_week() -> BillingWeek {
    BillingWeek::containing(Utc::now(), Tz::UTC).previous()
}

fn actor() -> Actor {
    Actor { kind: "staff", name: "fin@example.com".into(), staff_id: None, source: "test".into() }
}

async fn with_users(db: &Db) {
    support::add_users(db, &["dana", "ana", "bo", "cy"]).await;
}

/// A ride of `week`, `hour` hours after it starts, with `passengers` who all rode.
fn ride(id: &str, week: BillingWeek, hour: i64, passengers: &[&str]) -> Ride {
    let ended_at = week.start(Tz::UTC) + Duration::hours(hour);
    Ride {
        ride_id: id.into(),
        driver_id: "dana".into(),
        distance_m: 10_000,
        started_at: ended_at - Duration::minutes(30),
        ended_at,
        seats: passengers
            .iter()
            .map(|p| Seat { passenger_id: (*p).into(), attendance: Attendance::Completed })
            .collect(),
    }
}

on_both_databases! {
    async fn an_approval_freezes_exactly_the_reviewed_preview(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_users(&db).await;
        let week = last_week();
        db.store_ride(&ride("r1", week, 10, &["ana", "bo"])).await.unwrap();
        db.store_ride(&ride("r2", week, 30, &["ana"])).await.unwrap();

        let first = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!(first.status.as_str(), "previewed");
        assert_eq!(first.totals.invoices, 2);
        // 2.00 + 10 km × 0.35 = 5.50 a trip: ana 2.75 + 5.50, bo 2.75.
        assert_eq!(first.totals.charged.minor(), 1100);
        assert_eq!(preview::refresh(&db, &config, week).await.unwrap(), first, "unchanged inputs: the same draft");

        // A ride arrives: the draft is recomputed, and the hash staff saw before no longer approves.
        db.store_ride(&ride("r3", week, 40, &["cy"])).await.unwrap();
        let stale = preview::approve(&db, &config, &actor(), week, &first.content_hash).await;
        assert!(matches!(stale, Err(PreviewError::Approve(ApproveError::Stale(_)))), "{stale:?}");
        assert_eq!(db.stored_week(week).await.unwrap().unwrap().status.as_str(), "previewed", "a refused approval changes nothing");
        let second = preview::refresh(&db, &config, week).await.unwrap();
        assert_ne!(second.content_hash, first.content_hash);
        assert_eq!(second.totals.invoices, 3);
        // The week's hash, computed as its invoices and payouts were written, is the one of the
        // week read back from what was stored.
        let (_, stored) = preview::preview(&db, &config, week).await.unwrap();
        assert_eq!(stored.invoices.len(), 3);
        assert_eq!(second.content_hash, server::billing::plan::plan_hash(&stored));
        // The replaced draft's lines went with it (they have no foreign key to cascade from):
        // the week holds exactly the second draft's 4 invoice lines and 3 payout lines.
        let lines: Vec<(i64, i64, i64, i64)> = support::rows(
            &db,
            "SELECT (SELECT COUNT(*) FROM invoice_lines), (SELECT COUNT(*) FROM payout_lines), \
             (SELECT COUNT(*) FROM invoice_lines WHERE invoice_id NOT IN (SELECT id FROM invoices)), \
             (SELECT COUNT(*) FROM payout_lines WHERE payout_id NOT IN (SELECT id FROM payouts))",
        )
        .await;
        assert_eq!(lines, [(4, 3, 0, 0)]);
        let wrong = preview::approve(&db, &config, &actor(), week, &first.content_hash).await;
        assert!(matches!(wrong, Err(PreviewError::Approve(ApproveError::Changed { .. }))), "{wrong:?}");

        let approved = preview::approve(&db, &config, &actor(), week, &second.content_hash).await.unwrap();
        let Approved::Now(frozen) = approved else { panic!("{approved:?}") };
        assert_eq!(frozen.status.as_str(), "approved");
        assert_eq!(frozen.approved_by.as_deref(), Some("fin@example.com"));
        assert_eq!(frozen.content_hash, second.content_hash);
        let again = preview::approve(&db, &config, &actor(), week, &second.content_hash).await.unwrap();
        assert!(matches!(again, Approved::Before(_)), "approving twice is one approval");

        // The frozen week never changes again: a late ride goes to the next week, as a late line.
        db.store_ride(&ride("late1", week, 50, &["bo"])).await.unwrap();
        let still = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!((still.content_hash.as_str(), still.totals.invoices), (second.content_hash.as_str(), 3));
        let next = week.next();
        db.store_ride(&ride("n1", next, 2, &["bo"])).await.unwrap();
        let (next_week, plan) = preview::preview(&db, &config, next).await.unwrap();
        let bo = plan.invoices.iter().find(|i| i.user_id == "bo").unwrap();
        let lines: Vec<(&str, bool)> = bo.lines.iter().map(|l| (l.ride_id.as_str(), l.late)).collect();
        assert_eq!(lines, [("late1", true), ("n1", false)], "the late ride is billed next week, marked late");
        assert_eq!(next_week.late_lines, 1);

        // The frozen plan still adds up.
        let (_, frozen_plan) = preview::preview(&db, &config, week).await.unwrap();
        let sum: i64 = frozen_plan.invoices.iter().map(|i| i.total.minor()).sum();
        assert_eq!(sum, frozen.totals.charged.minor());
        assert_eq!(frozen.totals.fees.minor() + frozen.totals.payouts.minor(), sum);
    }

    async fn a_ride_is_billed_in_one_week_only(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_users(&db).await;
        let week = last_week().previous().previous();
        db.store_ride(&ride("r1", week, 10, &["ana"])).await.unwrap();
        let draft = preview::refresh(&db, &config, week).await.unwrap();
        preview::approve(&db, &config, &actor(), week, &draft.content_hash).await.unwrap();
        // Late for the frozen week: both later open weeks show it, only the first approval bills it.
        db.store_ride(&ride("late", week, 20, &["bo"])).await.unwrap();
        let (a, b) = (week.next(), week.next().next());
        db.store_ride(&ride("a1", a, 5, &["cy"])).await.unwrap();
        let draft_a = preview::refresh(&db, &config, a).await.unwrap();
        let draft_b = preview::refresh(&db, &config, b).await.unwrap();
        assert_eq!((draft_a.late_lines, draft_b.late_lines), (1, 1));
        preview::approve(&db, &config, &actor(), b, &draft_b.content_hash).await.unwrap();
        let refused = preview::approve(&db, &config, &actor(), a, &draft_a.content_hash).await;
        assert!(matches!(refused, Err(PreviewError::Approve(ApproveError::Stale(_)))), "{refused:?}");
        let redo = preview::refresh(&db, &config, a).await.unwrap();
        assert_eq!(redo.late_lines, 0, "the late ride went out with the other week");
        preview::approve(&db, &config, &actor(), a, &redo.content_hash).await.unwrap();
        let billed: Vec<(String, String)> = match &db {
            Db::Sqlite(p) => sqlx::query_as("SELECT ride_id, week FROM billed_rides ORDER BY ride_id").fetch_all(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_as("SELECT ride_id, week FROM billed_rides ORDER BY ride_id").fetch_all(p).await.unwrap(),
        };
        let expect = |r: &str, w: BillingWeek| (r.to_string(), w.to_string());
        assert_eq!(billed, [expect("a1", a), expect("late", b), expect("r1", week)]);
    }

    async fn a_week_keeps_count_of_its_rides_as_they_arrive(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_users(&db).await;
        let week = last_week();
        let counted = |db: Db| async move {
            let found: Vec<(i64,)> = support::rows(&db, "SELECT rides FROM week_ride_counts").await;
            found.into_iter().map(|(n,)| n).collect::<Vec<i64>>()
        };
        db.store_ride(&ride("r1", week, 10, &["ana"])).await.unwrap();
        assert_eq!(counted(db.clone()).await, Vec::<i64>::new(), "nothing counted before the week is opened");
        let first = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!(counted(db.clone()).await, Vec::<i64>::new(), "a draft made from the rides needs no count");
        assert_eq!(preview::refresh(&db, &config, week).await.unwrap(), first);
        assert_eq!(counted(db.clone()).await, [1], "the draft's second opening counted them");

        // A batch: a ride of the week, one of the next week, a resend; only the first counts.
        let outcomes = db
            .store_rides(&[ride("r2", week, 20, &["bo"]), ride("n1", week.next(), 2, &["bo"]), ride("r1", week, 10, &["ana"])])
            .await
            .unwrap();
        let outcomes: Vec<String> = outcomes.into_iter().map(|o| format!("{:?}", o.unwrap())).collect();
        assert_eq!(outcomes, ["Created", "Created", "AlreadyStored"]);
        assert_eq!(counted(db.clone()).await, [2]);
        let second = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!(second.totals.invoices, 2, "the batch's ride made the draft stale");
        assert_ne!(second.content_hash, first.content_hash);

        // A count that went wrong (here by hand) shows a stale draft as current, but the approval
        // counts the rides itself: it refuses, the count is taken again, and the ride is billed.
        db.store_ride(&ride("r3", week, 30, &["cy"])).await.unwrap();
        execute(&db, "UPDATE week_ride_counts SET rides = rides - 1").await;
        let wrong = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!(wrong.content_hash, second.content_hash);
        let refused = preview::approve(&db, &config, &actor(), week, &wrong.content_hash).await;
        assert!(matches!(refused, Err(PreviewError::Approve(ApproveError::Stale(_)))), "{refused:?}");
        let third = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!((third.totals.invoices, counted(db.clone()).await), (3, vec![3]));
        preview::approve(&db, &config, &actor(), week, &third.content_hash).await.unwrap();
    }

    async fn a_week_counted_while_a_ride_is_being_stored_counts_it(kind: Kind) {
        let (_test_db, db) = TestDb::migrated(kind).await;
        with_users(&db).await;
        let week = last_week();
        let (start, end) = (week.start(Tz::UTC), week.end(Tz::UTC));
        let r1 = ride("r1", week, 3, &["ana"]);
        // A writer midway through storing a ride, as `store_ride` does: the shared freeze lock
        // (PostgreSQL), the ride, the week counts it adds to (none kept yet); not committed.
        macro_rules! midway {
            ($pool:expr) => {{
                let mut tx = $pool.begin_with(server::db::begin_writing(&db)).await.unwrap();
                if let Db::Postgres(_) = &db {
                    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)").bind(FREEZE_LOCK).execute(&mut *tx).await.unwrap();
                }
                sqlx::query("INSERT INTO rides (ride_id, driver_id, distance_m, started_at, ended_at, content_hash, received_at) VALUES ($1, $2, $3, $4, $5, 'x', $5)")
                    .bind(&r1.ride_id).bind(&r1.driver_id).bind(r1.distance_m).bind(r1.started_at).bind(r1.ended_at)
                    .execute(&mut *tx).await.unwrap();
                sqlx::query("UPDATE week_ride_counts SET rides = rides + 1 WHERE starts_at <= $1 AND ends_at > $1")
                    .bind(r1.ended_at).execute(&mut *tx).await.unwrap();
                tx
            }};
        }
        macro_rules! race {
            ($tx:expr) => {{
                let counting = tokio::spawn({
                    let db = db.clone();
                    async move { db.week_fingerprint(start, end).await.unwrap().0 }
                });
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                assert!(!counting.is_finished(), "the count waits for the writer");
                $tx.commit().await.unwrap();
                counting.await.unwrap()
            }};
        }
        let counted = match &db {
            Db::Sqlite(p) => { let tx = midway!(p); race!(tx) }
            Db::Postgres(p) => { let tx = midway!(p); race!(tx) }
        };
        assert_eq!(counted, 1, "the ride committed while the week was counted is in the count");
        let kept: Vec<(i64,)> = support::rows(&db, "SELECT rides FROM week_ride_counts").await;
        assert_eq!(kept, [(1,)]);
    }

    async fn a_draft_goes_on_being_computed_when_its_request_stops_waiting(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = std::sync::Arc::new(config(&test_db.url));
        with_users(&db).await;
        let week = last_week();
        let rides: Vec<Ride> = (0..200).map(|i| ride(&format!("r{i}"), week, 1 + i % 100, &["ana", "bo"])).collect();
        db.store_rides(&rides).await.unwrap();
        let drafts = preview::Drafts::default();
        // A request that waits for nothing is told the draft is being computed, as a conflict
        // about the week...
        let early = drafts.refresh(&db, &config, week, std::time::Duration::ZERO).await;
        let Err(PreviewError::Computing(w, _)) = early else { panic!("{early:?}") };
        assert_eq!(w, week);
        let error = server::error::Error::from(PreviewError::Computing(week, 3));
        assert!(matches!(&error, server::error::Error::Conflict { field, .. } if field == "week"), "{error:?}");
        // ...and the computation goes on without it: the draft is stored.
        let stored = support::eventually(std::time::Duration::from_secs(20), || {
            let db = db.clone();
            async move { db.stored_week(week).await.unwrap().ok_or_else(|| "no draft stored yet".to_owned()) }
        })
        .await;
        assert_eq!(stored.totals.invoices, 2);
        // Two requests that wait get the stored draft, computed once.
        let wait = std::time::Duration::from_secs(30);
        let (a, b) = tokio::join!(drafts.refresh(&db, &config, week, wait), drafts.refresh(&db, &config, week, wait));
        assert_eq!(a.unwrap(), stored);
        assert_eq!(b.unwrap(), stored);
        // A change made while a computation from before it runs (as a waiver is): whoever made it
        // is answered a draft that includes it, not the one being computed.
        db.store_ride(&ride("r200", week, 40, &["ana"])).await.unwrap();
        let early = drafts.refresh(&db, &config, week, std::time::Duration::ZERO).await;
        assert!(matches!(early, Err(PreviewError::Computing(..))), "{early:?}");
        db.store_ride(&ride("r201", week, 50, &["bo"])).await.unwrap();
        let changed = std::time::Instant::now();
        let after = drafts.refresh_since(&db, &config, week, wait, Some(changed)).await.unwrap();
        assert_eq!(after, preview::refresh(&db, &config, week).await.unwrap(), "the draft answered is current");
        assert!(after.totals.charged.minor() > stored.totals.charged.minor());
    }

    async fn the_week_pages_payment_gaps_are_kept_briefly_then_counted_again(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = std::sync::Arc::new(config(&test_db.url));
        with_users(&db).await;
        let week = last_week();
        db.store_ride(&ride("r1", week, 10, &["ana", "bo"])).await.unwrap();
        let stored = preview::refresh(&db, &config, week).await.unwrap();
        // Kept for no time at all: every look after the first starts a count in the background
        // and shows the counts kept until it lands.
        let gaps = preview::GapsCache::new(std::time::Duration::ZERO);
        assert_eq!(gaps.get(&db, &config, &stored).await.unwrap().no_payment_method, 2, "neither rider has a card");
        let mut ana = server::db::rides::NewUser {
            id: "ana".into(),
            name: "ana".into(),
            email: None,
            phone: None,
            language: "en".into(),
            provider: Default::default(),
        };
        ana.provider.customer_id = Some(Some("cus_ana".into()));
        ana.provider.payment_method_id = Some(Some("pm_ana".into()));
        db.sync_users(&[ana], &actor()).await.unwrap();
        let counted = support::eventually(std::time::Duration::from_secs(10), || {
            let (gaps, db, config, stored) = (gaps.clone(), db.clone(), config.clone(), stored.clone());
            async move {
                let now = gaps.get(&db, &config, &stored).await.unwrap();
                if now.no_payment_method == 1 { Ok(now) } else { Err(format!("{now:?}")) }
            }
        })
        .await;
        assert_eq!(counted.passengers, ["bo"]);
        // Kept for an hour: the count taken first is what is shown.
        let kept = preview::GapsCache::new(std::time::Duration::from_secs(3600));
        assert_eq!(kept.get(&db, &config, &stored).await.unwrap().no_payment_method, 1);
        execute(&db, "DELETE FROM provider_accounts").await;
        assert_eq!(kept.get(&db, &config, &stored).await.unwrap().no_payment_method, 1);
    }

    async fn a_changed_invoice_no_longer_matches_its_hash(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_users(&db).await;
        let week = last_week();
        db.store_ride(&ride("r1", week, 10, &["ana", "bo"])).await.unwrap();
        preview::refresh(&db, &config, week).await.unwrap();
        let page = db
            .invoice_page(&app::model::preview::InvoiceQuery { week: week.to_string(), ..Default::default() })
            .await
            .unwrap();
        let id = page.rows[0].id;
        assert!(db.invoice_matches_hash(id).await.unwrap());
        execute(&db, &format!("UPDATE invoice_lines SET amount_minor = amount_minor + 1 WHERE invoice_id = {id}")).await;
        assert!(!db.invoice_matches_hash(id).await.unwrap(), "a line changed behind the product's back is caught");
    }

    async fn invoices_are_searched_by_id_or_name_and_paged_by_key(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        let mut users: Vec<NewUser> = (0..25)
            .map(|i| NewUser { id: format!("u{i:02}"), name: format!("Rider {i:02}"), email: None, phone: None, language: "en".into(), provider: Default::default() })
            .collect();
        users.push(NewUser { id: "zz".into(), name: "Élodie Durand".into(), email: None, phone: None, language: "fr".into(), provider: Default::default() });
        users.push(NewUser { id: "dana".into(), name: "Dana".into(), email: None, phone: None, language: "en".into(), provider: Default::default() });
        db.add_users(&users).await.unwrap();
        let week = last_week();
        for (i, user) in users.iter().filter(|u| u.id != "dana").enumerate() {
            db.store_ride(&ride(&format!("r{i}"), week, i as i64, &[user.id.as_str()])).await.unwrap();
        }
        preview::refresh(&db, &config, week).await.unwrap();
        let query = |q: &str, after: Option<&str>| app::model::preview::InvoiceQuery {
            week: week.to_string(),
            q: q.into(),
            after: after.map(str::to_owned),
            flagged_only: false,
            limit: Some(10),
        };
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = db.invoice_page(&query("", after.as_deref())).await.unwrap();
            seen.extend(page.rows.iter().map(|r| r.user_id.clone()));
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<String> = users.iter().filter(|u| u.id != "dana").map(|u| u.id.clone()).collect();
        expected.sort();
        assert_eq!(seen, expected, "keyset pages cover every invoice once, in order");
        let db = &db;
        let ids = |q: &'static str| async move {
            db.invoice_page(&query(q, None)).await.unwrap().rows.into_iter().map(|r| r.user_id).collect::<Vec<_>>()
        };
        assert_eq!(ids("u1").await, ["u10", "u11", "u12", "u13", "u14", "u15", "u16", "u17", "u18", "u19"]);
        assert_eq!(ids("rider 0").await.len(), 10, "names match case-insensitively");
        assert_eq!(ids("élo").await, ["zz"], "beyond ASCII too");
        assert_eq!(ids("ÉLODIE").await, ["zz"]);
        assert!(ids("nobody").await.is_empty());
    }
}

/// Rides stored while a week is being approved are either in the frozen set or queued as late:
/// none is lost, none billed twice (PostgreSQL, where they really run at once). A smoke test:
/// the window it probes is narrow, `an_approval_waits_for_rides_being_stored` pins the lock.
#[tokio::test]
async fn rides_racing_an_approval_are_never_lost() {
    let (test_db, db) = TestDb::migrated(Kind::Postgres).await;
    let config = config(&test_db.url);
    with_users(&db).await;
    let week = last_week();
    for i in 0..50 {
        db.store_ride(&ride(&format!("base{i}"), week, i, &["ana"])).await.unwrap();
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let db = db.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    db.store_ride(&ride(&format!("race{w}-{i}"), week, i % 150, &["bo"])).await.unwrap();
                }
            })
        })
        .collect();
    // Approve as soon as a preview holds still long enough.
    let mut approved = false;
    while !approved {
        let draft = preview::refresh(&db, &config, week).await.unwrap();
        approved = preview::approve(&db, &config, &actor(), week, &draft.content_hash).await.is_ok();
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let Db::Postgres(pool) = &db else { unreachable!() };
    let (rides, billed, late, both): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM rides), (SELECT COUNT(*) FROM billed_rides), (SELECT COUNT(*) FROM late_rides), \
         (SELECT COUNT(*) FROM billed_rides b JOIN late_rides l ON l.ride_id = b.ride_id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(rides, 450);
    assert_eq!(both, 0, "no ride is both billed and waiting");
    assert_eq!(billed + late, rides, "every ride is billed or waiting: billed {billed}, late {late}");
}

/// The approval takes the freeze lock exclusively, so it waits for every ride still being stored
/// (which hold it shared) and such a ride is either frozen with the week or queued as late.
#[tokio::test]
async fn an_approval_waits_for_rides_being_stored() {
    let (test_db, db) = TestDb::migrated(Kind::Postgres).await;
    let config = config(&test_db.url);
    with_users(&db).await;
    let week = last_week();
    db.store_ride(&ride("r1", week, 1, &["ana"])).await.unwrap();
    let draft = preview::refresh(&db, &config, week).await.unwrap();
    let Db::Postgres(pool) = &db else { unreachable!() };
    let mut in_flight = pool.begin_with(server::db::begin_writing(&db)).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
        .bind(server::db::weeks::FREEZE_LOCK)
        .execute(&mut *in_flight)
        .await
        .unwrap();
    let approval = {
        let (db, config, hash) = (db.clone(), config.clone(), draft.content_hash.clone());
        tokio::spawn(async move { preview::approve(&db, &config, &actor(), week, &hash).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!approval.is_finished(), "the approval waits while a ride is being stored");
    in_flight.commit().await.unwrap();
    assert!(matches!(approval.await.unwrap(), Ok(Approved::Now(_))));
}

on_both_databases! {
    // What the anomaly checks find is stored with each invoice it concerns, and the week counts
    // the flagged invoices: ana rides r2 while r1 is still going (an overlap); bo's ride is plain.
    async fn each_invoice_is_stored_with_its_own_anomalies(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        let config = config(&test_db.url);
        with_users(&db).await;
        let week = last_week();
        db.store_ride(&ride("r1", week, 10, &["ana"])).await.unwrap();
        db.store_ride(&Ride { started_at: ride("r1", week, 10, &[]).ended_at - Duration::minutes(10), ..ride("r2", week, 11, &["ana"]) }).await.unwrap();
        db.store_ride(&ride("r3", week, 20, &["bo"])).await.unwrap();
        let stored = preview::refresh(&db, &config, week).await.unwrap();
        assert_eq!(stored.flagged, 1);
        let rows: Vec<(String, String, bool)> =
            support::rows(&db, "SELECT user_id, anomalies, flagged FROM invoices ORDER BY user_id").await;
        let anomalies: Vec<(String, Vec<app::model::preview::Anomaly>, bool)> =
            rows.into_iter().map(|(user, json, flagged)| (user, serde_json::from_str(&json).unwrap(), flagged)).collect();
        assert_eq!(anomalies.len(), 2);
        let (ana, bo) = (&anomalies[0], &anomalies[1]);
        assert_eq!((ana.0.as_str(), ana.2, bo.0.as_str(), bo.2), ("ana", true, "bo", false));
        assert_eq!(ana.1.len(), 1, "{:?}", ana.1);
        assert_eq!(ana.1[0].kind, app::model::preview::AnomalyKind::OverlappingRides);
        assert_eq!(ana.1[0].ride_id.as_deref(), Some("r2"));
        assert!(ana.1[0].detail.starts_with("ride r2 starts at"), "{}", ana.1[0].detail);
        assert!(bo.1.is_empty());
    }
}

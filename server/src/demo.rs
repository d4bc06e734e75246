//! `billing demo-data`: deterministic synthetic users and rides. The same arguments always make
//! the same data, and running again adds nothing (users and rides are stored by id).

use chrono::{Datelike, Duration, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;
use app::model::week::BillingWeek;

use crate::db::rides::{NewUser, Stored};
use crate::db::Db;

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    pub passengers: u32,
    pub drivers: u32,
    /// Complete weeks before the current one (the current week so far is added too).
    pub weeks: u32,
    pub seed: u64,
    /// Whether the current week so far is added too (benchmarks want complete weeks only).
    pub current_week: bool,
    /// The shape of the user and ride ids.
    pub ids: IdShape,
}

/// The shape of the ids `demo-data` makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IdShape {
    /// Short readable ids: users `p12` and `d3`, rides `demo-{seed}-{week}-p{passenger}-{n}`.
    #[default]
    Demo,
    /// Random-looking lowercase hyphenated UUIDs (36 characters), the same for the same
    /// arguments.
    Uuid,
}

/// Whose id: a passenger's, a driver's or a ride's (a UUID's bytes are drawn for each apart).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Passenger = 1,
    Driver = 2,
    Ride = 3,
}

impl IdShape {
    /// The id of passenger (or driver) `n`, the same in every week.
    fn user(self, seed: u64, kind: Kind, n: u32) -> String {
        match (self, kind) {
            (IdShape::Demo, Kind::Driver) => format!("d{n}"),
            (IdShape::Demo, _) => format!("p{n}"),
            (IdShape::Uuid, _) => uuid_of(seed, kind, u64::from(n), 0),
        }
    }

    /// The id of the `n`th ride of `passenger` in `week`.
    fn ride(self, seed: u64, week: BillingWeek, passenger: u32, n: u32) -> String {
        match self {
            IdShape::Demo => format!("demo-{seed}-{week}-p{passenger}-{n}"),
            IdShape::Uuid => uuid_of(seed, Kind::Ride, week_key(week) << 32 | u64::from(passenger), n.into()),
        }
    }
}

/// The week as a number, for seeding.
fn week_key(week: BillingWeek) -> u64 {
    u64::from(week.monday().num_days_from_ce() as u32)
}

/// A version 4 UUID whose random bits are drawn from a generator seeded by `seed`, `kind`, `a`
/// and `b` alone, written lowercase and hyphenated.
fn uuid_of(seed: u64, kind: Kind, a: u64, b: u64) -> String {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8] = kind as u8;
    key[9..17].copy_from_slice(&a.to_le_bytes());
    key[17..25].copy_from_slice(&b.to_le_bytes());
    let bytes: [u8; 16] = ChaCha8Rng::from_seed(key).random();
    uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
}

/// Rides stored per transaction.
const BATCH: usize = 5_000;

/// What a run added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemoReport {
    pub users_added: u64,
    pub rides_added: u64,
    pub rides_already_there: u64,
}

fn users(size: DemoSize) -> Vec<NewUser> {
    let names =
        ["Ana", "Bo", "Chloé", "Diego", "Emma", "Farid", "Grace", "Hugo", "Inés", "Jun", "Kofi", "Lena"];
    // The name shows the short id whatever the id's shape.
    let make = |kind: Kind, i: u32| {
        let id = size.ids.user(size.seed, kind, i);
        let short = IdShape::Demo.user(size.seed, kind, i);
        NewUser {
            name: format!("{} {}", names[i as usize % names.len()], short.to_uppercase()),
            email: Some(format!("{id}@riders.example")),
            phone: Some(format!("+1555{:07}", i)),
            language: if i.is_multiple_of(5) { "es".into() } else { "en".into() },
            provider: Default::default(),
            id,
        }
    };
    (1..=size.passengers)
        .map(|i| make(Kind::Passenger, i))
        .chain((1..=size.drivers).map(|i| make(Kind::Driver, i)))
        .collect()
}

/// The rides of one passenger in one week: a commuter pair most weekdays (shared with the next
/// passenger), a few heavy riders, some cancellations and no-shows; none after `now`.
fn rides_of(
    size: DemoSize,
    week: BillingWeek,
    tz: Tz,
    passenger: u32,
    now: chrono::DateTime<Utc>,
) -> Vec<Ride> {
    let mut rng = ChaCha8Rng::seed_from_u64(
        size.seed.wrapping_mul(1_000_003) ^ (week_key(week) << 32) ^ u64::from(passenger),
    );
    let heavy = passenger.is_multiple_of(50);
    let count = if heavy { rng.random_range(10..15) } else { rng.random_range(2..7) };
    let start = week.start(tz);
    let user = |kind, n| size.ids.user(size.seed, kind, n);
    let mut rides = Vec::new();
    for n in 0..count {
        let ended_at = start + Duration::minutes(rng.random_range(60..(7 * 24 * 60)));
        if ended_at > now {
            continue;
        }
        let distance_m = rng.random_range(2_000..40_000);
        let attendance = match rng.random_range(0..100) {
            0..5 => Attendance::Cancelled,
            5..8 => Attendance::NoShow,
            _ => Attendance::Completed,
        };
        let mut seats = vec![Seat { passenger_id: user(Kind::Passenger, passenger), attendance }];
        if passenger < size.passengers && rng.random_bool(0.4) {
            seats.push(Seat {
                passenger_id: user(Kind::Passenger, passenger + 1),
                attendance: Attendance::Completed,
            });
        }
        rides.push(Ride {
            ride_id: size.ids.ride(size.seed, week, passenger, n),
            driver_id: user(Kind::Driver, rng.random_range(1..=size.drivers)),
            distance_m,
            started_at: ended_at - Duration::minutes(10 + distance_m / 700),
            ended_at,
            seats,
        });
    }
    rides
}

/// Adds the demo users and rides that are not there yet.
pub async fn generate(db: &Db, tz: Tz, size: DemoSize) -> anyhow::Result<DemoReport> {
    anyhow::ensure!(size.passengers >= 1, "--passengers: at least 1");
    anyhow::ensure!(size.drivers >= 1, "--drivers: at least 1");
    let mut report = DemoReport { users_added: db.add_users(&users(size)).await?, ..Default::default() };
    let now = Utc::now();
    let current = BillingWeek::containing(now, tz);
    let mut week = (0..size.weeks).fold(current, |w, _| w.previous());
    let mut batch: Vec<Ride> = Vec::with_capacity(BATCH);
    let mut store = async |batch: &mut Vec<Ride>| -> anyhow::Result<()> {
        for outcome in db.store_rides(batch).await? {
            match outcome? {
                Stored::Created => report.rides_added += 1,
                Stored::AlreadyStored => report.rides_already_there += 1,
            }
        }
        batch.clear();
        Ok(())
    };
    loop {
        if week == current && !size.current_week {
            break;
        }
        for passenger in 1..=size.passengers {
            batch.extend(rides_of(size, week, tz, passenger, now));
            if batch.len() >= BATCH {
                store(&mut batch).await?;
            }
        }
        if week == current {
            break;
        }
        week = week.next();
    }
    store(&mut batch).await?;
    // As after any bulk load: PostgreSQL's statistics of the tables just filled, so the first
    // queries are not planned as if they were empty (a customer's page took 240 ms, most of it
    // compiling a plan costed for tens of thousands of seats where there were six).
    db.refresh_statistics(&["users", "rides", "ride_seats"]).await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn size(ids: IdShape) -> DemoSize {
        DemoSize { passengers: 120, drivers: 7, weeks: 2, seed: 42, current_week: false, ids }
    }

    /// Every ride of every passenger in `week`, none held back by `now`.
    fn week_of(size: DemoSize, week: BillingWeek) -> Vec<Ride> {
        let now = week.next().next().start(Tz::UTC);
        (1..=size.passengers).flat_map(|p| rides_of(size, week, Tz::UTC, p, now)).collect()
    }

    fn is_canonical_uuid(id: &str) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4 && u.hyphenated().to_string() == id)
    }

    #[test]
    fn uuid_ids_are_the_same_every_time_and_rides_name_the_users() {
        let size = size(IdShape::Uuid);
        let users = users(size);
        assert_eq!(users, super::users(size));
        let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids.len(), users.len(), "user ids are distinct");
        assert!(ids.iter().all(|id| id.len() == 36 && is_canonical_uuid(id)));
        assert_eq!(users[0].name, "Bo P1");

        let week = BillingWeek::parse("2026-W10").unwrap();
        let mut ride_ids = HashSet::new();
        for week in [week, week.next()] {
            let rides = week_of(size, week);
            assert!(rides.len() > 300);
            assert_eq!(rides, week_of(size, week));
            for ride in &rides {
                assert!(ride.ride_id.len() == 36 && is_canonical_uuid(&ride.ride_id), "{}", ride.ride_id);
                assert!(ride_ids.insert(ride.ride_id.clone()), "ride ids are distinct");
                assert!(users[size.passengers as usize..].iter().any(|u| u.id == ride.driver_id));
                for seat in &ride.seats {
                    assert!(users[..size.passengers as usize].iter().any(|u| u.id == seat.passenger_id));
                }
            }
            // A passenger's own seat comes first, under the same id every week.
            for p in [1, 2, 50] {
                let now = week.next().start(Tz::UTC);
                let rides = rides_of(size, week, Tz::UTC, p, now);
                assert!(rides.iter().all(|r| r.seats[0].passenger_id == users[p as usize - 1].id));
            }
        }
        assert!(week_of(size, week).iter().any(|r| r.seats.len() == 2), "some seats are shared");
    }

    #[test]
    fn demo_ids_keep_their_shape() {
        let size = size(IdShape::Demo);
        let users = users(size);
        assert_eq!((users[0].id.as_str(), users[120].id.as_str()), ("p1", "d1"));
        assert_eq!(users[0].email.as_deref(), Some("p1@riders.example"));
        let week = BillingWeek::parse("2026-W10").unwrap();
        let rides = week_of(size, week);
        assert!(rides[0].ride_id.starts_with("demo-42-2026-W10-p1-"), "{}", rides[0].ride_id);
        // The same rides but for their ids, whatever the shape.
        let uuid = week_of(DemoSize { ids: IdShape::Uuid, ..size }, week);
        let times = |rides: &[Ride]| rides.iter().map(|r| (r.ended_at, r.distance_m)).collect::<Vec<_>>();
        assert_eq!(times(&rides), times(&uuid));
    }
}

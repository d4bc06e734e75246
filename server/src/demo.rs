//! `billing demo-data`: deterministic synthetic users and rides. The same arguments always make
//! the same data, and running again adds nothing (users and rides are stored by id).

use chrono::{Datelike, Duration, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use app::model::billing::{Ride, Seat};
use app::model::pricing::Attendance;
use app::model::week::BillingWeek;

use crate::db::rides::NewUser;
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
    let make = |id: String, i: u32| NewUser {
        name: format!("{} {}", names[i as usize % names.len()], id.to_uppercase()),
        email: Some(format!("{id}@riders.example")),
        phone: Some(format!("+1555{:07}", i)),
        language: if i.is_multiple_of(5) { "es".into() } else { "en".into() },
        provider: Default::default(),
        id,
    };
    (1..=size.passengers)
        .map(|i| make(format!("p{i}"), i))
        .chain((1..=size.drivers).map(|i| make(format!("d{i}"), i)))
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
        size.seed.wrapping_mul(1_000_003)
            ^ (u64::from(week.monday().num_days_from_ce() as u32) << 32)
            ^ u64::from(passenger),
    );
    let heavy = passenger.is_multiple_of(50);
    let count = if heavy { rng.random_range(10..15) } else { rng.random_range(2..7) };
    let start = week.start(tz);
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
        let mut seats = vec![Seat { passenger_id: format!("p{passenger}"), attendance }];
        if passenger < size.passengers && rng.random_bool(0.4) {
            seats.push(Seat {
                passenger_id: format!("p{}", passenger + 1),
                attendance: Attendance::Completed,
            });
        }
        rides.push(Ride {
            ride_id: format!("demo-{}-{week}-p{passenger}-{n}", size.seed),
            driver_id: format!("d{}", rng.random_range(1..=size.drivers)),
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
        let (added, there) = db.store_rides(batch).await?;
        report.rides_added += added;
        report.rides_already_there += there;
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
    Ok(report)
}

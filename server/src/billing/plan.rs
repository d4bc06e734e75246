//! Planning a week: the rides to bill become one invoice per passenger and one payout per
//! driver, priced by [`super::pricing::price_trip`]. Pure: the preview and the run both call it,
//! so what staff approve is what is charged.

use chrono_tz::Tz;

use super::planner::Planner;
use super::pricing::PricingError;
use super::waived::{Waived, WaivedKey};
use app::model::billing::{Invoice, Payout, Ride, WeekTotals};
use app::model::money::{BillingCurrency, Money, MoneyError};
use app::model::pricing::{Attendance, FeePolicy};
use app::model::week::BillingWeek;

/// A week's invoices and payouts, in user-id and driver-id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeekPlan {
    pub week: BillingWeek,
    pub invoices: Vec<Invoice>,
    pub payouts: Vec<Payout>,
    pub totals: WeekTotals,
}

/// Why a ride was refused; the message starts with the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RideError {
    #[error("ride_id: must be 1 to 100 characters")]
    RideId,
    #[error("driver_id: must be 1 to 100 characters")]
    DriverId,
    #[error("distance_m: must be from 0 to 2,000,000 metres")]
    Distance,
    #[error("ended_at: the ride ends before it starts")]
    EndsBeforeStart,
    #[error("seats: a ride needs at least one passenger")]
    NoSeats,
    #[error("seats[{0}].passenger_id: must be 1 to 100 characters")]
    PassengerId(usize),
    #[error("seats[{0}].passenger_id: the driver cannot be a passenger of their own ride")]
    DriverAsPassenger(usize),
    #[error("seats[{0}].passenger_id: {1} is already on this ride")]
    DuplicatePassenger(usize, String),
}

/// The longest plausible ride.
pub const MAX_DISTANCE_M: i64 = 2_000_000;

/// An id from the carpool app (ride, driver, passenger): not blank, at most 100 characters.
pub fn valid_id(id: &str) -> bool {
    !id.trim().is_empty() && id.chars().count() <= 100
}

/// Checks a ride before it is stored or billed.
pub fn validate_ride(ride: &Ride) -> Result<(), RideError> {
    if !valid_id(&ride.ride_id) {
        return Err(RideError::RideId);
    }
    if !valid_id(&ride.driver_id) {
        return Err(RideError::DriverId);
    }
    if !(0..=MAX_DISTANCE_M).contains(&ride.distance_m) {
        return Err(RideError::Distance);
    }
    if ride.ended_at < ride.started_at {
        return Err(RideError::EndsBeforeStart);
    }
    if ride.seats.is_empty() {
        return Err(RideError::NoSeats);
    }
    for (i, seat) in ride.seats.iter().enumerate() {
        if !valid_id(&seat.passenger_id) {
            return Err(RideError::PassengerId(i));
        }
        if seat.passenger_id == ride.driver_id {
            return Err(RideError::DriverAsPassenger(i));
        }
        if ride.seats[..i].iter().any(|s| s.passenger_id == seat.passenger_id) {
            return Err(RideError::DuplicatePassenger(i, seat.passenger_id.clone()));
        }
    }
    Ok(())
}

/// Why a week could not be planned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("ride {0}: {1}")]
    Ride(String, RideError),
    #[error("ride {0}: ended in {1}, after the week being planned")]
    FromTheFuture(String, BillingWeek),
    #[error("ride {0}: {1}")]
    Pricing(String, PricingError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("the week is too large to plan: more than 2,147,483,647 rides, 4,294,967,295 lines or people, or 4 GiB of ids")]
    TooLarge,
}

/// Plans `week` from `rides`: the rides that ended in it, and unbilled rides of earlier
/// (frozen) weeks, which become late lines. Seats are priced in passenger-id order, so the
/// leftover minor units of a split always go to the same passengers. Cancelled seats are free
/// and make no line; an invoice or payout of zero is not made. The rides are taken in the
/// order they ended, so a week with several bad rides names the first. (The preview feeds a
/// [`Planner`] as the rides are read instead.)
pub fn plan_week(
    policy: &FeePolicy,
    week: BillingWeek,
    tz: Tz,
    rides: &[Ride],
) -> Result<WeekPlan, PlanError> {
    plan_week_waived(policy, week, tz, rides, &Waived::default())
}

/// [`plan_week`] with the week's applied waivers: a waived seat makes no line and is not part of
/// what its ride's passengers paid (see [`super::waived`]).
pub fn plan_week_waived(
    policy: &FeePolicy,
    week: BillingWeek,
    tz: Tz,
    rides: &[Ride],
    waived: &Waived,
) -> Result<WeekPlan, PlanError> {
    let mut rides: Vec<&Ride> = rides.iter().collect();
    rides.sort_by(|a, b| (a.ended_at, &a.ride_id).cmp(&(b.ended_at, &b.ride_id)));
    let mut planner = Planner::new(policy, week, tz).waiving(waived);
    for ride in rides {
        planner.add(ride)?;
    }
    Ok(planner.finish()?.to_week_plan())
}

/// A SHA-256 digest; `{:x}` writes it in hex.
pub type Digest = sha2::digest::Output<sha2::Sha256>;

/// SHA-256 of `value`'s JSON.
fn sha256_json(value: &impl serde::Serialize) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, value).expect("plain data serialises");
    hasher.finalize()
}

/// The content hash of an invoice: its week, passenger, currency, total and every line (ride,
/// amount in minor units, attendance, late), lines taken in ride-id order. Frozen with the
/// invoice; the run recomputes it from the stored lines and refuses a mismatch.
pub fn invoice_hash(invoice: &Invoice) -> String {
    let lines =
        invoice.lines.iter().map(|l| (l.ride_id.as_str(), l.amount.minor(), l.attendance, l.late)).collect();
    format!("{:x}", invoice_hash_of(invoice.week, &invoice.user_id, invoice.total, lines))
}

/// [`invoice_hash`] of an invoice given by its parts, lines in any order.
pub fn invoice_hash_of(
    week: BillingWeek,
    user_id: &str,
    total: Money,
    mut lines: Vec<(&str, i64, Attendance, bool)>,
) -> Digest {
    lines.sort();
    sha256_json(&("invoice/1", week, user_id, total.currency().code(), total.minor(), lines))
}

/// The content hash of a payout, as [`invoice_hash`].
pub fn payout_hash(payout: &Payout) -> String {
    let lines = payout
        .lines
        .iter()
        .map(|l| (l.ride_id.as_str(), l.gross.minor(), l.fee.minor(), l.net.minor(), l.late))
        .collect();
    format!("{:x}", payout_hash_of(payout.week, &payout.driver_id, payout.total, lines))
}

/// [`payout_hash`] of a payout given by its parts, lines in any order.
pub fn payout_hash_of(
    week: BillingWeek,
    driver_id: &str,
    total: Money,
    mut lines: Vec<(&str, i64, i64, i64, bool)>,
) -> Digest {
    lines.sort();
    sha256_json(&("payout/1", week, driver_id, total.currency().code(), total.minor(), lines))
}

/// The hash of a whole week: every invoice's and payout's hash, in user-id and driver-id order.
/// What an approval names, so that staff approve exactly the set they looked at.
pub fn plan_hash(plan: &WeekPlan) -> String {
    let mut invoices: Vec<_> = plan.invoices.iter().map(|i| (i.user_id.as_str(), invoice_hash(i))).collect();
    invoices.sort();
    let mut payouts: Vec<_> = plan.payouts.iter().map(|p| (p.driver_id.as_str(), payout_hash(p))).collect();
    payouts.sort();
    format!(
        "{:x}",
        sha256_json(&("week/1", plan.week, plan.totals.charged.currency().code(), invoices, payouts))
    )
}

/// [`plan_hash`] computed as the week is walked, with nothing collected: the JSON is hashed as
/// it is written. Give it every invoice in user-id order, then every payout in driver-id order.
pub struct WeekHasher {
    sha: sha2::Sha256,
    payouts: bool,
    first: bool,
}

impl WeekHasher {
    pub fn new(week: BillingWeek, currency: BillingCurrency) -> WeekHasher {
        use sha2::Digest as _;
        let mut hasher = WeekHasher { sha: sha2::Sha256::new(), payouts: false, first: true };
        hasher.write(b"[");
        for (i, part) in ["week/1", &week.to_string(), currency.code()].into_iter().enumerate() {
            if i > 0 {
                hasher.write(b",");
            }
            hasher.json(part);
        }
        hasher.write(b",[");
        hasher
    }

    fn write(&mut self, bytes: &[u8]) {
        use sha2::Digest as _;
        self.sha.update(bytes);
    }

    fn json(&mut self, text: &str) {
        serde_json::to_writer(&mut self.sha, text).expect("a string serialises");
    }

    fn entry(&mut self, id: &str, digest: &Digest) {
        if !std::mem::take(&mut self.first) {
            self.write(b",");
        }
        self.write(b"[");
        self.json(id);
        self.write(b",");
        self.json(&format!("{digest:x}"));
        self.write(b"]");
    }

    /// The next invoice, by its user id and [`invoice_hash_of`].
    pub fn invoice(&mut self, user_id: &str, digest: &Digest) {
        debug_assert!(!self.payouts, "invoices come before payouts");
        self.entry(user_id, digest);
    }

    /// The next payout, by its driver id and [`payout_hash_of`].
    pub fn payout(&mut self, driver_id: &str, digest: &Digest) {
        self.start_payouts();
        self.entry(driver_id, digest);
    }

    fn start_payouts(&mut self) {
        if !self.payouts {
            self.payouts = true;
            self.first = true;
            self.write(b"],[");
        }
    }

    /// The week's hash, in hex.
    pub fn finish(self) -> String {
        self.finish_with(&[])
    }

    /// The week's hash, in hex, naming the week's applied waivers: none, the same hash as
    /// [`WeekHasher::finish`] (weeks without waivers keep the hashes they had); else the
    /// waivers, in id order, as a last list (`[id, user, ride or null, part]` each), so an
    /// approval pins exactly the waivers its approver saw, not only their amounts.
    pub fn finish_with(mut self, waivers: &[WaivedKey]) -> String {
        use sha2::Digest as _;
        self.start_payouts();
        if waivers.is_empty() {
            self.write(b"]]");
        } else {
            self.write(b"],");
            let list: Vec<_> = waivers.iter().map(|w| (w.id, &w.user_id, &w.ride_id, w.part)).collect();
            serde_json::to_writer(&mut self.sha, &list).expect("plain data serialises");
            self.write(b"]");
        }
        format!("{:x}", self.sha.finalize())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use app::model::billing::Seat;
    use chrono::{DateTime, Duration, Utc};
    use proptest::prelude::*;

    use crate::billing::fixtures::{policy, usd};
    use app::model::waiver::WaiverPart;

    fn week() -> BillingWeek {
        BillingWeek::parse("2026-W48").unwrap()
    }

    fn ride(id: &str, driver: &str, km: i64, ended: DateTime<Utc>, seats: &[(&str, Attendance)]) -> Ride {
        Ride {
            ride_id: id.into(),
            driver_id: driver.into(),
            distance_m: km * 1000,
            started_at: ended - Duration::minutes(30),
            ended_at: ended,
            seats: seats.iter().map(|(p, a)| Seat { passenger_id: (*p).into(), attendance: *a }).collect(),
        }
    }

    fn in_week(hours: i64) -> DateTime<Utc> {
        week().start(Tz::UTC) + Duration::hours(hours)
    }

    #[test]
    fn a_small_week() {
        use Attendance::*;
        let rides = [
            ride("r1", "dana", 10, in_week(8), &[("ana", Completed), ("bo", Completed), ("cy", Cancelled)]),
            ride("r2", "dana", 4, in_week(32), &[("ana", NoShow)]),
            ride("r0", "eve", 20, in_week(-24), &[("bo", Completed)]),
        ];
        let plan = plan_week(&policy(), week(), Tz::UTC, &rides).unwrap();
        // r1: 2.00 + 3.50 = 5.50, split 2.75 / 2.75; r2: no-show 3.00; r0 (last week, late): 9.00.
        let by_user: Vec<(&str, i64)> =
            plan.invoices.iter().map(|i| (i.user_id.as_str(), i.total.minor())).collect();
        assert_eq!(by_user, [("ana", 575), ("bo", 1175)]);
        let late: Vec<bool> = plan.invoices[1].lines.iter().map(|l| l.late).collect();
        assert_eq!(late, [true, false], "bo's ride of the previous week is a late line, listed first");
        assert_eq!(plan.totals.charged, usd(1750));
        assert_eq!(plan.totals.fees.checked_add(plan.totals.payouts).unwrap(), plan.totals.charged);
        assert_eq!(plan.totals.invoices, 2, "a cancelled seat makes no invoice");
        // The hash is SHA-256 of the documented JSON (checked here against Python's json and
        // hashlib): stored hashes of approved weeks stay valid whatever computes them.
        let hashes: Vec<String> = plan.invoices.iter().map(invoice_hash).collect();
        assert_eq!(
            hashes,
            [
                "7f90e6144a3b67e573099dfb86d65f9d5af030f8854e4d2ad744235808f5655f",
                "eb87b4f8f0325bc24145c61442f4a4cf59a127d7181aa73f023d9260d87fafc5"
            ]
        );
        let drivers: Vec<&str> = plan.payouts.iter().map(|p| p.driver_id.as_str()).collect();
        assert_eq!(drivers, ["dana", "eve"]);
    }

    #[test]
    fn a_waived_seat_is_charged_to_nobody_and_paid_to_nobody() {
        use crate::billing::waived::WaivedKey;
        use Attendance::*;
        // r1: 5.50 shared by ana and bo (2.75 each); r2: ana's no-show, 3.00. Bo's share and
        // ana's no-show fee are waived.
        let rides = [
            ride("r1", "dana", 10, in_week(8), &[("ana", Completed), ("bo", Completed)]),
            ride("r2", "dana", 4, in_week(32), &[("ana", NoShow)]),
        ];
        let key = |id, user: &str, ride: &str, part| WaivedKey {
            id,
            user_id: user.into(),
            ride_id: Some(ride.into()),
            part,
        };
        let waived = Waived::new([
            key(1, "bo", "r1", WaiverPart::RideShare),
            key(2, "ana", "r2", WaiverPart::NoShowFee),
        ]);
        let plan = plan_week_waived(&policy(), week(), Tz::UTC, &rides, &waived).unwrap();
        let by_user: Vec<(&str, i64)> =
            plan.invoices.iter().map(|i| (i.user_id.as_str(), i.total.minor())).collect();
        assert_eq!(by_user, [("ana", 275)], "bo has nothing left to pay, ana only her share of r1");
        // The driver is paid on what is charged: r1's gross is ana's 2.75, fee 15 % = 0.41 (half
        // to even of 0.4125), net 2.34; r2 is charged nothing and makes no payout line.
        let lines: Vec<(&str, i64, i64, i64)> = plan.payouts[0]
            .lines
            .iter()
            .map(|l| (l.ride_id.as_str(), l.gross.minor(), l.fee.minor(), l.net.minor()))
            .collect();
        assert_eq!(lines, [("r1", 275, 41, 234)]);
        assert_eq!(
            (plan.totals.charged.minor(), plan.totals.fees.minor(), plan.totals.payouts.minor()),
            (275, 41, 234)
        );
        // Waiving the whole of ana's invoice leaves nothing to charge or pay.
        let all = Waived::new([
            WaivedKey { id: 3, user_id: "ana".into(), ride_id: None, part: WaiverPart::Invoice },
            key(1, "bo", "r1", WaiverPart::RideShare),
        ]);
        let nothing = plan_week_waived(&policy(), week(), Tz::UTC, &rides, &all).unwrap();
        assert!(nothing.invoices.is_empty() && nothing.payouts.is_empty());
        assert_eq!(nothing.totals.charged.minor(), 0);
    }

    #[test]
    fn any_change_to_an_invoice_changes_its_hash() {
        use Attendance::*;
        let rides = [
            ride("r1", "dana", 10, in_week(8), &[("ana", Completed)]),
            ride("r2", "dana", 4, in_week(9), &[("ana", NoShow)]),
        ];
        let plan = plan_week(&policy(), week(), Tz::UTC, &rides).unwrap();
        let invoice = &plan.invoices[0];
        let hash = invoice_hash(invoice);
        let mut reordered = invoice.clone();
        reordered.lines.reverse();
        assert_eq!(invoice_hash(&reordered), hash, "the order lines are read in does not matter");
        let mut changes = vec![];
        let mut c = invoice.clone();
        c.lines[0].amount = usd(c.lines[0].amount.minor() + 1);
        changes.push(c);
        let mut c = invoice.clone();
        c.lines[1].late = true;
        changes.push(c);
        let mut c = invoice.clone();
        c.lines.pop();
        changes.push(c);
        let mut c = invoice.clone();
        c.user_id = "bo".into();
        changes.push(c);
        let mut c = invoice.clone();
        c.total = usd(c.total.minor() + 1);
        changes.push(c);
        for changed in changes {
            assert_ne!(invoice_hash(&changed), hash, "{changed:?}");
        }
        assert_eq!(plan_hash(&plan), plan_hash(&plan.clone()));
    }

    #[test]
    fn bad_rides_are_refused_naming_the_field() {
        use Attendance::*;
        let good = ride("r", "dana", 5, in_week(1), &[("ana", Completed)]);
        let cases: Vec<(Ride, &str)> = vec![
            (Ride { distance_m: -1, ..good.clone() }, "distance_m"),
            (Ride { distance_m: MAX_DISTANCE_M + 1, ..good.clone() }, "distance_m"),
            (Ride { started_at: good.ended_at + Duration::minutes(1), ..good.clone() }, "ended_at"),
            (Ride { seats: vec![], ..good.clone() }, "seats"),
            (ride("r", "dana", 5, in_week(1), &[("dana", Completed)]), "seats[0].passenger_id"),
            (
                ride("r", "dana", 5, in_week(1), &[("ana", Completed), ("ana", NoShow)]),
                "seats[1].passenger_id",
            ),
            (Ride { ride_id: " ".into(), ..good.clone() }, "ride_id"),
            (Ride { driver_id: String::new(), ..good.clone() }, "driver_id"),
        ];
        for (bad, field) in cases {
            let error = validate_ride(&bad).unwrap_err().to_string();
            assert!(error.starts_with(field), "{field}: {error}");
        }
        let future = ride("f", "dana", 5, in_week(24 * 7 + 1), &[("ana", Completed)]);
        assert!(matches!(
            plan_week(&policy(), week(), Tz::UTC, &[future]),
            Err(PlanError::FromTheFuture(..))
        ));
    }

    fn arbitrary_ride(index: usize) -> impl Strategy<Value = Ride> {
        let attendance = prop_oneof![4 => Just(Attendance::Completed), 1 => Just(Attendance::Cancelled), 1 => Just(Attendance::NoShow)];
        (
            0usize..6,
            0i64..300_000,
            -200i64..168,
            prop::collection::btree_set(0usize..30, 1..5),
            prop::collection::vec(attendance, 4),
            0i64..150,
        )
            .prop_map(move |(driver, distance_m, hour, passengers, attendance, minutes)| {
                let driver_id = format!("driver{driver}");
                let ended_at = in_week(hour);
                Ride {
                    ride_id: format!("ride{index}"),
                    driver_id,
                    distance_m,
                    // Some longer than a planned ride's length holds (about 71.6 minutes).
                    started_at: ended_at - Duration::minutes(minutes),
                    ended_at,
                    seats: passengers
                        .into_iter()
                        .zip(attendance)
                        .map(|(p, attendance)| Seat { passenger_id: format!("user{p}"), attendance })
                        .collect(),
                }
            })
    }

    /// Any fee policy version: amounts up to 100.00, any fee from 0 to 100 %.
    pub(crate) fn arbitrary_policy() -> impl Strategy<Value = FeePolicy> {
        (0i64..10_000, 0i64..1_000, 0u32..=10_000, 0i64..5_000).prop_map(|(base, per_km, bps, no_show)| {
            FeePolicy {
                base: usd(base),
                per_km: usd(per_km),
                platform_fee_bps: bps,
                no_show_fee: usd(no_show),
            }
        })
    }

    proptest! {
        /// A week priced under a fee policy version is the sum of its rides each priced alone
        /// under that version, for the week and for every passenger.
        #[test]
        fn a_week_under_a_version_is_the_sum_of_its_rides_under_it(
            rides in (1usize..60).prop_flat_map(|n| (0..n).map(arbitrary_ride).collect::<Vec<_>>()),
            policy in arbitrary_policy(),
        ) {
            let plan = plan_week(&policy, week(), Tz::UTC, &rides).unwrap();
            let mut per_passenger: std::collections::BTreeMap<String, i64> = Default::default();
            for ride in &rides {
                let mut seats = ride.seats.clone();
                seats.sort_by(|a, b| a.passenger_id.cmp(&b.passenger_id));
                let attendance: Vec<Attendance> = seats.iter().map(|s| s.attendance).collect();
                let price = crate::billing::pricing::price_trip(&policy, ride.distance_m, &attendance).unwrap();
                for (seat, share) in seats.iter().zip(&price.shares) {
                    *per_passenger.entry(seat.passenger_id.clone()).or_default() += share.minor();
                }
            }
            prop_assert_eq!(plan.totals.charged.minor(), per_passenger.values().sum::<i64>());
            for invoice in &plan.invoices {
                prop_assert_eq!(Some(&invoice.total.minor()), per_passenger.get(&invoice.user_id), "{}", invoice.user_id);
            }
            let invoiced: i64 = plan.invoices.iter().map(|i| i.total.minor()).sum();
            prop_assert_eq!(invoiced, plan.totals.charged.minor(), "no passenger who owes something is left out");
        }
    }

    proptest! {
        /// Waivers (of ride shares, no-show fees and whole invoices, drawn among the week's
        /// seats and passengers) keep the week balanced to the minor unit: what is charged drops
        /// by exactly the waived seats' shares, no waived seat is a line, every payout line is
        /// what its charged passengers paid less the fee on it, and the week's hash names them.
        #[test]
        fn waivers_keep_the_totals_balanced(
            rides in (1usize..40).prop_flat_map(|n| (0..n).map(arbitrary_ride).collect::<Vec<_>>()),
            picks in prop::collection::vec((0usize..40, 0usize..4, 0u8..4), 0..12),
            policy in arbitrary_policy(),
        ) {
            // A pick names a seat of a ride: its own part (3 in 4), the other part (a waiver
            // that covers nothing), or its passenger's whole invoice.
            let mut keys = Vec::new();
            for (i, (ride, seat, how)) in picks.iter().enumerate() {
                let ride = &rides[ride % rides.len()];
                let seat = &ride.seats[seat % ride.seats.len()];
                let own = crate::billing::waived::WaivedKey {
                    id: i as i64 + 1,
                    user_id: seat.passenger_id.clone(),
                    ride_id: Some(ride.ride_id.clone()),
                    part: WaiverPart::of_seat(seat.attendance).unwrap_or(WaiverPart::RideShare),
                };
                keys.push(match how {
                    0 => crate::billing::waived::WaivedKey { ride_id: None, part: WaiverPart::Invoice, ..own },
                    1 => crate::billing::waived::WaivedKey {
                        part: if own.part == WaiverPart::RideShare { WaiverPart::NoShowFee } else { WaiverPart::RideShare },
                        ..own
                    },
                    _ => own,
                });
            }
            let waived = Waived::new(keys.clone());
            let plain = plan_week(&policy, week(), Tz::UTC, &rides).unwrap();
            let plan = plan_week_waived(&policy, week(), Tz::UTC, &rides, &waived).unwrap();
            // What the waivers cover, priced as the planner prices each ride.
            let mut waived_minor = 0i64;
            let mut covered = std::collections::BTreeSet::new();
            for ride in &rides {
                let mut seats = ride.seats.clone();
                seats.sort_by(|a, b| a.passenger_id.cmp(&b.passenger_id));
                let attendance: Vec<Attendance> = seats.iter().map(|s| s.attendance).collect();
                let price = crate::billing::pricing::price_trip(&policy, ride.distance_m, &attendance).unwrap();
                for (seat, share) in seats.iter().zip(&price.shares) {
                    if waived.covers(&ride.ride_id, &seat.passenger_id, seat.attendance) {
                        waived_minor += share.minor();
                        covered.insert((seat.passenger_id.clone(), ride.ride_id.clone()));
                    }
                }
            }
            prop_assert_eq!(plan.totals.charged.minor(), plain.totals.charged.minor() - waived_minor);
            prop_assert_eq!(plan.totals.fees.minor() + plan.totals.payouts.minor(), plan.totals.charged.minor());
            let lines: i64 = plan.invoices.iter().flat_map(|i| &i.lines).map(|l| l.amount.minor()).sum();
            prop_assert_eq!(lines, plan.totals.charged.minor());
            prop_assert_eq!(plan.invoices.iter().map(|i| i.total.minor()).sum::<i64>(), plan.totals.charged.minor());
            let gross: i64 = plan.payouts.iter().flat_map(|p| &p.lines).map(|l| l.gross.minor()).sum();
            prop_assert_eq!(gross, plan.totals.charged.minor(), "the drivers' gross is what is charged");
            for payout in &plan.payouts {
                for line in &payout.lines {
                    prop_assert_eq!(line.fee.minor() + line.net.minor(), line.gross.minor());
                    prop_assert!(line.gross.minor() > 0);
                }
            }
            // Every ride an invoice bills is on a payout: the approval takes the rides it bills
            // from the payout lines alone (`Db::approve_week`).
            let paid: std::collections::BTreeSet<&str> =
                plan.payouts.iter().flat_map(|p| &p.lines).map(|l| l.ride_id.as_str()).collect();
            for invoice in &plan.invoices {
                prop_assert!(invoice.total.minor() > 0);
                for line in &invoice.lines {
                    prop_assert!(!covered.contains(&(invoice.user_id.clone(), line.ride_id.clone())), "{} {} is waived", invoice.user_id, line.ride_id);
                    prop_assert!(paid.contains(line.ride_id.as_str()), "{} is billed but on no payout", line.ride_id);
                }
            }
            // The lean plan's streamed hash names the waivers: with any, it is not the plain week's.
            let mut planner = Planner::new(&policy, week(), Tz::UTC).waiving(&waived);
            for ride in &rides {
                planner.add(ride).unwrap();
            }
            let lean = planner.finish().unwrap();
            prop_assert_eq!(lean.to_week_plan(), plan.clone());
            prop_assert_eq!(lean.hash() == plan_hash(&plan), keys.is_empty());
        }
    }

    proptest! {
        #[test]
        fn the_totals_add_up_to_the_minor_unit(
            rides in (1usize..60).prop_flat_map(|n| (0..n).map(arbitrary_ride).collect::<Vec<_>>()),
            bps in 0u32..=10_000,
        ) {
            let policy = FeePolicy { platform_fee_bps: bps, ..policy() };
            let plan = plan_week(&policy, week(), Tz::UTC, &rides).unwrap();
            let lines: i64 = plan.invoices.iter().flat_map(|i| &i.lines).map(|l| l.amount.minor()).sum();
            prop_assert_eq!(plan.totals.charged.minor(), lines);
            prop_assert_eq!(plan.totals.charged.minor(), plan.invoices.iter().map(|i| i.total.minor()).sum::<i64>());
            prop_assert_eq!(plan.totals.fees.minor() + plan.totals.payouts.minor(), plan.totals.charged.minor());
            let gross: i64 = plan.payouts.iter().flat_map(|p| &p.lines).map(|l| l.gross.minor()).sum();
            prop_assert_eq!(gross, plan.totals.charged.minor(), "every charged unit is in a payout line");
            prop_assert!(plan.invoices.iter().all(|i| i.total.minor() > 0));
            for payout in &plan.payouts {
                for line in &payout.lines {
                    prop_assert_eq!(line.fee.minor() + line.net.minor(), line.gross.minor());
                }
            }
            // Order of arrival does not change the plan.
            let mut reversed = rides.clone();
            reversed.reverse();
            let again = plan_week(&policy, week(), Tz::UTC, &reversed).unwrap();
            prop_assert_eq!(plan_hash(&again), plan_hash(&plan));
            prop_assert_eq!(&again, &plan);
            // The planner fed as the rides come (here in reverse) makes the same week, and its
            // streamed hash is the one computed from the owned week.
            let mut planner = Planner::new(&policy, week(), Tz::UTC);
            for ride in &reversed {
                planner.add(ride).unwrap();
            }
            let lean = planner.finish().unwrap();
            prop_assert_eq!(lean.hash(), plan_hash(&plan));
            // What the store reads without rebuilding ride ids agrees with the lines.
            for (lean, invoice) in lean.invoices().zip(&plan.invoices) {
                prop_assert_eq!(lean.late_lines(), invoice.lines.iter().filter(|l| l.late).count());
            }
            for (lean, payout) in lean.payouts().zip(&plan.payouts) {
                let gross = payout.lines.iter().map(|l| l.gross.minor()).sum::<i64>();
                let fees = payout.lines.iter().map(|l| l.fee.minor()).sum::<i64>();
                let (lean_gross, lean_fees) = lean.gross_and_fees();
                prop_assert_eq!((lean_gross.minor(), lean_fees.minor()), (gross, fees));
            }
            prop_assert_eq!(lean.to_week_plan(), plan);
        }
    }
}

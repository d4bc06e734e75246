//! The applied waivers of a week, as the planner looks them up while it prices rides: a few
//! entries (waivers are asked for one by one by staff), looked up by ride id without allocating,
//! so a week of a million passengers with no waiver costs one branch per seat.
//!
//! The rule: a waived seat contributes nothing anywhere. It makes no invoice line, and its share
//! is not part of what the ride's passengers paid, so the driver's gross for that ride, the
//! platform's fee on it and the driver's payout all drop with it; `fees + payouts == charged`
//! keeps holding. The other passengers' shares do not change (a ride is priced as it was taken).

use std::collections::{HashMap, HashSet};

use app::model::pricing::Attendance;
use app::model::waiver::WaiverPart;
use serde::Serialize;

/// One applied waiver, as the week's content hash names it: its id, whose, which ride (none for
/// a whole invoice) and what part.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WaivedKey {
    pub id: i64,
    pub user_id: String,
    pub ride_id: Option<String>,
    pub part: WaiverPart,
}

/// The applied waivers of a week.
#[derive(Clone, Debug, Default)]
pub struct Waived {
    /// By ride id: the passengers whose seat of it is waived, and which part.
    seats: HashMap<String, Vec<(String, WaiverPart)>>,
    /// Passengers whose whole invoice is waived.
    invoices: HashSet<String>,
    /// Every waiver, in id order.
    keys: Vec<WaivedKey>,
}

impl Waived {
    /// The lookup of `waivers` (any order).
    pub fn new(waivers: impl IntoIterator<Item = WaivedKey>) -> Waived {
        let mut waived = Waived::default();
        for key in waivers {
            match (&key.ride_id, key.part) {
                (None, _) | (_, WaiverPart::Invoice) => {
                    waived.invoices.insert(key.user_id.clone());
                }
                (Some(ride), part) => {
                    waived.seats.entry(ride.clone()).or_default().push((key.user_id.clone(), part));
                }
            }
            waived.keys.push(key);
        }
        waived.keys.sort();
        waived
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `passenger`'s seat of ride `ride_id`, which ended as `attendance`, is waived: by
    /// a waiver of their whole invoice, or of that seat's part (a ride share of a seat ridden, a
    /// no-show fee of a no-show).
    pub fn covers(&self, ride_id: &str, passenger: &str, attendance: Attendance) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.invoices.contains(passenger) {
            return true;
        }
        let Some(part) = WaiverPart::of_seat(attendance) else { return false };
        self.seats.get(ride_id).is_some_and(|seats| seats.iter().any(|(p, w)| p == passenger && *w == part))
    }

    /// Every waiver, in id order: what the week's content hash includes.
    pub fn keys(&self) -> &[WaivedKey] {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: i64, user: &str, ride: Option<&str>, part: WaiverPart) -> WaivedKey {
        WaivedKey { id, user_id: user.into(), ride_id: ride.map(Into::into), part }
    }

    #[test]
    fn a_waiver_covers_its_seat_and_part_only() {
        let waived = Waived::new([
            key(3, "bo", None, WaiverPart::Invoice),
            key(1, "ana", Some("r1"), WaiverPart::RideShare),
            key(2, "cy", Some("r2"), WaiverPart::NoShowFee),
        ]);
        assert!(waived.covers("r1", "ana", Attendance::Completed));
        assert!(
            !waived.covers("r1", "ana", Attendance::NoShow),
            "a ride share waiver is not a no-show fee's"
        );
        assert!(!waived.covers("r2", "ana", Attendance::Completed), "another ride");
        assert!(!waived.covers("r1", "cy", Attendance::Completed), "another passenger");
        assert!(waived.covers("r2", "cy", Attendance::NoShow));
        assert!(waived.covers("anything", "bo", Attendance::NoShow), "a whole invoice");
        let ids: Vec<i64> = waived.keys().iter().map(|k| k.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert!(!Waived::default().covers("r1", "ana", Attendance::Completed));
    }
}

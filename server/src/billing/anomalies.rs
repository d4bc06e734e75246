//! What looks wrong in a planned week, found before anyone approves it: an invoice far above the
//! passenger's recent average, a passenger on two rides at once, a ride too long or too fast to
//! be real, a week total far from the recent weeks'. Pure, integer arithmetic on minor units.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::planner::{LeanInvoice, LeanPlan, RideRef};
use app::model::billing::Ride;
use app::model::money::Money;
use app::model::preview::{Anomaly, AnomalyKind, AnomalyThresholds};

/// What the recent weeks looked like: per passenger, the sum of their invoices and in how many
/// weeks they had one; and each recent week's total charged, in minor units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub users: HashMap<String, (i64, u32)>,
    pub week_totals: Vec<i64>,
}

/// The anomalies of a week: per invoice, as the JSON array stored with it, by the passenger's
/// number in the plan; and for the week as a whole. A million passengers' demo week flags about
/// 108,000 invoices: as text they take 27 MB, as lists of [`Anomaly`] keyed by user id 60 MB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    invoices: HashMap<u32, Box<str>>,
    pub week: Vec<Anomaly>,
}

impl Anomalies {
    /// `invoice`'s anomalies as the JSON array stored with it, if it has any.
    pub fn of(&self, invoice: &LeanInvoice) -> Option<&str> {
        self.invoices.get(&invoice.person_number()).map(|json| &**json)
    }

    /// How many invoices have anomalies.
    pub fn flagged(&self) -> usize {
        self.invoices.len()
    }
}

/// `part / whole` as a decimal with one digit, for the words of an anomaly.
fn ratio(part: i64, whole: i64) -> Decimal {
    (Decimal::from(part) / Decimal::from(whole.max(1))).round_dp(1)
}

/// The average of `sum` over `n`, in minor units rounded down, as money.
fn average(sum: i64, n: u32, like: Money) -> Money {
    Money::from_minor(sum / i64::from(n.max(1)), like.currency())
}

/// Why a ride is implausible, if it is.
pub fn implausible(ride: &Ride, t: &AnomalyThresholds) -> Option<String> {
    let max_m = i64::from(t.max_distance_km) * 1000;
    if ride.distance_m > max_m {
        return Some(format!(
            "ride {} is {} km long, above the {} km limit",
            ride.ride_id,
            ride.distance_m / 1000,
            t.max_distance_km
        ));
    }
    let seconds = (ride.ended_at - ride.started_at).num_seconds();
    // distance / time > max speed, without division: metres * 3600 > km/h * 1000 * seconds.
    if ride.distance_m > 0 && ride.distance_m * 3600 > i64::from(t.max_speed_kmh) * 1000 * seconds {
        let kmh =
            if seconds > 0 { (ride.distance_m * 3600 / 1000 / seconds).to_string() } else { "∞".into() };
        return Some(format!(
            "ride {} covers {} m in {} s ({} km/h), above {} km/h",
            ride.ride_id, ride.distance_m, seconds, kmh, t.max_speed_kmh
        ));
    }
    None
}

/// Finds the anomalies of `plan` against `history`; `implausible` holds why each implausible
/// ride (by its number in the plan) is so, as [`implausible`] found it when the ride was added.
pub fn find(
    plan: &LeanPlan,
    implausible: &HashMap<u32, String>,
    history: &History,
    t: &AnomalyThresholds,
) -> Anomalies {
    let mut found = Anomalies::default();

    for invoice in plan.invoices() {
        let mut list = Vec::new();
        if let Some(&(sum, weeks)) = history.users.get(&*invoice.user_id()) {
            // total > pct% of sum / weeks  <=>  total * weeks * 100 > sum * pct
            let total = invoice.total().minor();
            if weeks > 0
                && i128::from(total) * i128::from(weeks) * 100
                    > i128::from(sum) * i128::from(t.invoice_vs_average_pct)
            {
                list.push(Anomaly {
                    kind: AnomalyKind::HighInvoice,
                    detail: format!(
                        "{} is {}× the average of {} over {} recent week(s)",
                        invoice.total(),
                        ratio(total * i64::from(weeks), sum),
                        average(sum, weeks, invoice.total()),
                        weeks
                    ),
                    ride_id: None,
                });
            }
        }
        let mut own: Vec<RideRef> = invoice.lines().map(|l| l.ride).collect();
        let flagged: Vec<Anomaly> = own
            .iter()
            .filter_map(|ride| {
                implausible.get(&ride.index).map(|why| Anomaly {
                    kind: AnomalyKind::ImplausibleDistance,
                    detail: why.clone(),
                    ride_id: Some(ride.ride_id.clone()),
                })
            })
            .collect();
        // The passenger's rides this invoice bills, by start; each one that starts before an
        // earlier one ended overlaps it.
        own.sort_by(|a, b| (a.started_at, &a.ride_id).cmp(&(b.started_at, &b.ride_id)));
        let mut latest: Option<&RideRef> = None;
        for ride in &own {
            if let Some(before) = latest {
                if ride.started_at < before.ended_at {
                    list.push(Anomaly {
                        kind: AnomalyKind::OverlappingRides,
                        detail: format!(
                            "ride {} starts at {} UTC, before ride {} ends at {} UTC",
                            ride.ride_id,
                            ride.started_at.format("%a %H:%M"),
                            before.ride_id,
                            before.ended_at.format("%a %H:%M")
                        ),
                        ride_id: Some(ride.ride_id.clone()),
                    });
                }
            }
            if latest.is_none_or(|l| ride.ended_at > l.ended_at) {
                latest = Some(ride);
            }
        }
        // Implausible rides after the overlaps, in the order the invoice lists them.
        list.extend(flagged);
        if !list.is_empty() {
            let json = serde_json::to_string(&list).expect("anomalies serialise");
            found.invoices.insert(invoice.person_number(), json.into_boxed_str());
        }
    }

    if !history.week_totals.is_empty() {
        let n = history.week_totals.len() as i64;
        let sum: i64 = history.week_totals.iter().sum();
        let charged = plan.totals.charged.minor();
        // |charged - sum/n| > pct% of sum/n  <=>  |charged*n - sum| * 100 > sum * pct
        let gap = i128::from((charged * n - sum).abs()) * 100;
        if gap > i128::from(sum) * i128::from(t.week_change_pct) {
            let avg = average(sum, n as u32, plan.totals.charged);
            let direction = if charged * n > sum { "above" } else { "below" };
            found.week.push(Anomaly {
                kind: AnomalyKind::WeekTotal,
                detail: format!(
                    "the week's total {} is {}% {} the average of {} over the last {} week(s)",
                    plan.totals.charged,
                    ratio((charged * n - sum).abs() * 100, sum),
                    direction,
                    avg,
                    n
                ),
                ride_id: None,
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::fixtures::policy;
    use crate::billing::planner::Planner;
    use app::model::billing::Seat;
    use app::model::pricing::Attendance;
    use app::model::week::BillingWeek;
    use chrono::{Duration, TimeZone, Utc};
    use chrono_tz::Tz;
    use std::collections::BTreeMap;

    fn ride(id: &str, passenger: &str, start_h: i64, minutes: i64, km: i64) -> Ride {
        let started_at = Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap() + Duration::hours(start_h);
        Ride {
            ride_id: id.into(),
            driver_id: "d".into(),
            distance_m: km * 1000,
            started_at,
            ended_at: started_at + Duration::minutes(minutes),
            seats: vec![Seat { passenger_id: passenger.into(), attendance: Attendance::Completed }],
        }
    }

    /// What [`find`] found, each invoice's by its user id.
    #[derive(Debug)]
    struct Found {
        invoices: BTreeMap<String, Vec<Anomaly>>,
        week: Vec<Anomaly>,
    }

    fn anomalies(rides: &[Ride], history: &History) -> Found {
        let week = BillingWeek::parse("2026-W48").unwrap();
        let thresholds = AnomalyThresholds::default();
        let policy = policy();
        let mut planner = Planner::new(&policy, week, Tz::UTC);
        let mut flagged = HashMap::new();
        for ride in rides {
            let index = planner.add(ride).unwrap();
            if let Some(why) = implausible(ride, &thresholds) {
                flagged.insert(index, why);
            }
        }
        let plan = planner.finish().unwrap();
        let found = find(&plan, &flagged, history, &thresholds);
        let invoices: BTreeMap<String, Vec<Anomaly>> = plan
            .invoices()
            .filter_map(|i| {
                found.of(&i).map(|json| (i.user_id().into_owned(), serde_json::from_str(json).unwrap()))
            })
            .collect();
        assert_eq!(invoices.len(), found.flagged());
        Found { invoices, week: found.week }
    }

    #[test]
    fn each_kind_is_found_and_a_plain_week_has_none() {
        let plain = [ride("a1", "ana", 8, 30, 10), ride("a2", "ana", 18, 30, 10)];
        let history =
            History { users: [("ana".to_string(), (4 * 1100, 4))].into(), week_totals: vec![1100; 4] };
        let found = anomalies(&plain, &history);
        assert!(found.invoices.is_empty() && found.week.is_empty(), "{found:?}");

        // Overlap: a2 starts 10 minutes into a1.
        let overlap = [
            ride("a1", "ana", 8, 30, 10),
            Ride {
                started_at: plain[0].started_at + Duration::minutes(10),
                ended_at: plain[0].started_at + Duration::minutes(50),
                ..ride("a2", "ana", 8, 30, 10)
            },
        ];
        let kinds: Vec<_> = anomalies(&overlap, &history).invoices["ana"]
            .iter()
            .map(|a| (a.kind, a.ride_id.clone()))
            .collect();
        assert_eq!(kinds, [(AnomalyKind::OverlappingRides, Some("a2".to_string()))]);

        // Too far, and too fast (60 km in 10 minutes is 360 km/h).
        let far = [ride("f", "ana", 8, 600, 301), ride("g", "ana", 20, 10, 60)];
        let found = anomalies(&far, &History::default());
        let rides: Vec<_> =
            found.invoices["ana"].iter().map(|a| (a.kind, a.ride_id.clone().unwrap())).collect();
        assert_eq!(
            rides,
            [(AnomalyKind::ImplausibleDistance, "f".into()), (AnomalyKind::ImplausibleDistance, "g".into())]
        );

        // Ten rides against an average of one: high invoice, and a week total far above.
        let many: Vec<Ride> = (0..10).map(|i| ride(&format!("m{i}"), "ana", i * 10, 30, 10)).collect();
        let history =
            History { users: [("ana".to_string(), (2 * 550, 2))].into(), week_totals: vec![550, 550] };
        let found = anomalies(&many, &history);
        assert_eq!(found.invoices["ana"][0].kind, AnomalyKind::HighInvoice);
        assert!(
            found.invoices["ana"][0].detail.contains("is 10× the average of 5.50"),
            "{}",
            found.invoices["ana"][0].detail
        );
        assert_eq!(found.week[0].kind, AnomalyKind::WeekTotal);
        assert!(found.week[0].detail.contains("900% above the average of 5.50"), "{}", found.week[0].detail);
    }

    #[test]
    fn an_invoice_just_at_the_threshold_is_not_high() {
        // 3 rides of 5.50 = 16.50, exactly 300% of an average of 5.50.
        let rides: Vec<Ride> = (0..3).map(|i| ride(&format!("r{i}"), "ana", i * 10, 30, 10)).collect();
        let history = History { users: [("ana".to_string(), (550, 1))].into(), week_totals: vec![] };
        assert!(anomalies(&rides, &history).invoices.is_empty());
        let history = History { users: [("ana".to_string(), (549, 1))].into(), week_totals: vec![] };
        assert_eq!(anomalies(&rides, &history).invoices["ana"][0].kind, AnomalyKind::HighInvoice);
    }
}

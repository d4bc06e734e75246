//! Pricing as versions of the fee policy, shared by the dashboard, the JSON API and the CLI.
//!
//! A version holds the trip base, the per-km rate, the platform fee and the no-show fee, and is in
//! force from a billing week until a later version. One finance or admin member proposes it;
//! another approves it, never the proposer. A week is priced with the version in force for it,
//! and an approved (frozen) week keeps the version it was approved with. Before a proposal is
//! approved, [`what_if`] prices a stored week both ways without storing anything.

use app::auth::Action;
use app::model::billing::Ride;
use app::model::billing::WeekTotals;
use app::model::money::{BillingCurrency, Money, MoneyError};
use app::model::pricing::{
    Attendance, ChangeBucket, FeePolicy, NewPolicyVersion, PassengerChange, PolicyVersion, PolicyVersions,
    VersionStatus, WhatIf, BUILT_IN_VERSION,
};
use app::model::staff::Principal;
use app::model::week::BillingWeek;
use chrono::Utc;
use std::collections::HashMap;

use crate::billing::pricing::{price_trip, PricingError};
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::fee_policies::{DecideError, NewVersion};
use crate::db::Db;
use crate::error::Error;

/// The largest increases a what-if lists.
pub const LARGEST_INCREASES: usize = 20;

/// The built-in policy, in force before the first approved version: 2.00 per trip, 0.35 per km,
/// 15 % platform fee, 3.00 per no-show, each rounded to the currency's minor unit.
pub fn built_in(config: &Config) -> Result<PolicyVersion, Error> {
    let policy = crate::preview::default_policy(config.currency)
        .map_err(|e| Error::internal("the built-in fee policy", e))?;
    Ok(PolicyVersion {
        id: BUILT_IN_VERSION,
        effective_week: None,
        policy,
        note: "The fee policy until a version is approved".to_owned(),
        status: VersionStatus::Approved,
        proposed_by: None,
        proposed_at: None,
        decided_by: None,
        decided_at: None,
    })
}

/// The version that prices `week`: the approved one with the latest effective week not after it,
/// or the built-in policy.
pub async fn for_week(db: &Db, config: &Config, week: BillingWeek) -> Result<PolicyVersion, Error> {
    match db
        .fee_policy_for_week(&week.to_string())
        .await
        .map_err(|e| Error::internal("reading fee policies", e))?
    {
        Some(version) => Ok(version),
        None => built_in(config),
    }
}

fn current_week(config: &Config) -> BillingWeek {
    BillingWeek::containing(Utc::now(), config.time_zone)
}

/// Every version, newest first with the built-in policy last, and the one in force this week.
pub async fn list(db: &Db, config: &Config, principal: &Principal) -> Result<PolicyVersions, Error> {
    crate::auth::may(principal, Action::ManagePricing)?;
    let mut versions =
        db.fee_policy_versions().await.map_err(|e| Error::internal("listing fee policies", e))?;
    versions.push(built_in(config)?);
    let week = current_week(config);
    let in_force = for_week(db, config, week).await?.id;
    Ok(PolicyVersions { current_week: week.to_string(), in_force, versions })
}

/// One version (the built-in policy is version 0).
pub async fn get(db: &Db, config: &Config, principal: &Principal, id: i64) -> Result<PolicyVersion, Error> {
    crate::auth::may(principal, Action::ManagePricing)?;
    if id == BUILT_IN_VERSION {
        return built_in(config);
    }
    db.fee_policy_version(id)
        .await
        .map_err(|e| Error::internal("reading a fee policy", e))?
        .ok_or_else(|| Error::NotFound(format!("fee policy version {id}")))
}

/// Checks every field of a proposal; the first refusal names its field.
pub fn check(
    config: &Config,
    proposal: &NewPolicyVersion,
    current: BillingWeek,
) -> Result<NewVersion, Error> {
    let week = BillingWeek::parse(proposal.effective_week.trim())
        .map_err(|m| Error::invalid("effective_week", m))?;
    if week < current {
        return Err(Error::invalid(
            "effective_week",
            format!("{week} is in the past; a version takes effect from {current} or later"),
        ));
    }
    let amount = |field: &'static str, text: &str| -> Result<Money, Error> {
        let money = Money::parse(text, config.currency).map_err(|e| Error::invalid(field, e.to_string()))?;
        if money.minor() < 0 {
            return Err(Error::invalid(field, format!("{text} is negative; a price is 0 or more")));
        }
        Ok(money)
    };
    let base = amount("base", &proposal.base)?;
    let per_km = amount("per_km", &proposal.per_km)?;
    let bps = proposal.platform_fee_bps.trim();
    let platform_fee_bps: u32 = bps.parse().map_err(|_| {
        Error::invalid(
            "platform_fee_bps",
            format!("{bps:?} is not a whole number of basis points (1500 = 15 %)"),
        )
    })?;
    if platform_fee_bps > 10_000 {
        return Err(Error::invalid(
            "platform_fee_bps",
            format!("{platform_fee_bps} basis points is more than 100 % of what passengers pay"),
        ));
    }
    let no_show_fee = amount("no_show_fee", &proposal.no_show_fee)?;
    let note = proposal.note.trim();
    if note.chars().count() > 500 {
        return Err(Error::invalid("note", "at most 500 characters"));
    }
    Ok(NewVersion {
        effective_week: week.to_string(),
        policy: FeePolicy { base, per_km, platform_fee_bps, no_show_fee },
        note: note.to_owned(),
    })
}

/// Proposes a version (finance, admin), audited. A week already approved keeps its prices, so a
/// proposal for it is refused.
pub async fn propose(
    db: &Db,
    config: &Config,
    principal: &Principal,
    proposal: &NewPolicyVersion,
) -> Result<PolicyVersion, Error> {
    crate::auth::may(principal, Action::ManagePricing)?;
    let new = check(config, proposal, current_week(config))?;
    let week = BillingWeek::parse(&new.effective_week).map_err(|m| Error::invalid("effective_week", m))?;
    if let Some(stored) = db.stored_week(week).await.map_err(|e| Error::internal("reading a week", e))? {
        if stored.status == app::model::preview::WeekStatus::Approved {
            return Err(Error::invalid(
                "effective_week",
                format!("{week} is already approved and keeps the prices it was approved with"),
            ));
        }
    }
    db.propose_fee_policy(&Actor::staff(principal), &new)
        .await
        .map_err(|e| Error::internal("proposing a fee policy", e))
}

/// Approves another member's proposal (finance, admin), or withdraws a proposal; audited with the
/// before and after. Drafts priced with the version it replaces are recomputed when next opened.
pub async fn decide(
    db: &Db,
    config: &Config,
    principal: &Principal,
    id: i64,
    approve: bool,
) -> Result<PolicyVersion, Error> {
    crate::auth::may(principal, Action::ManagePricing)?;
    let current = current_week(config);
    db.decide_fee_policy(&Actor::staff(principal), id, approve, &current.to_string()).await.map_err(|e| {
        match e {
            DecideError::NotFound(_) => Error::NotFound(format!("fee policy version {id}")),
            e @ DecideError::OwnProposal(_) => Error::Forbidden(e.to_string()),
            e @ DecideError::NotProposed { .. } => Error::conflict("status", e.to_string()),
            e @ (DecideError::WeekApproved { .. }
            | DecideError::InForce { .. }
            | DecideError::Passed { .. }) => Error::conflict("effective_week", e.to_string()),
            DecideError::Database(e) => Error::internal("deciding on a fee policy", e),
        }
    })
}

/// Prices `week` with the version that prices it now and with version `id`, from the same rides,
/// storing nothing: totals both ways, how many passengers pay more, less or the same, the
/// distribution of the changes and the largest increases.
pub async fn what_if(
    db: &Db,
    config: &Config,
    principal: &Principal,
    id: i64,
    week: BillingWeek,
) -> Result<WhatIf, Error> {
    crate::auth::may(principal, Action::ManagePricing)?;
    let proposed = get(db, config, principal, id).await?;
    let tz = config.time_zone;
    let start = week.start(tz);
    if start > Utc::now() {
        return Err(Error::invalid("week", format!("{week} has not started yet")));
    }
    let internal = |e: sqlx::Error| Error::internal("pricing a week both ways", e);
    // A frozen week is compared with the version it was approved with.
    let current = match db.stored_week_policy_version(week).await.map_err(internal)? {
        Some(Some(frozen)) => get(db, config, principal, frozen).await?,
        Some(None) => built_in(config)?,
        None => for_week(db, config, week).await?,
    };
    let tally = price_both_ways(db, config, week, &current.policy, &proposed.policy).await?;
    Ok(compare(week, current.id, proposed.id, &tally))
}

/// The week's rides priced under two policies in one read.
async fn price_both_ways(
    db: &Db,
    config: &Config,
    week: BillingWeek,
    before: &FeePolicy,
    after: &FeePolicy,
) -> Result<Tally, Error> {
    let tz = config.time_zone;
    let (start, end) = (week.start(tz), week.end(tz));
    let internal = |e: sqlx::Error| Error::internal("pricing a week both ways", e);
    let mut tally = Tally::new(config.currency);
    let mut add = |ride: Ride| -> Result<(), WhatIfError> { tally.add(&ride, [before, after]) };
    for ride in db.late_rides_before(start).await.map_err(internal)? {
        add(ride).map_err(WhatIfError::into_error)?;
    }
    db.each_ride_ended_between(start, end, &mut add).await.map_err(WhatIfError::into_error)?;
    Ok(tally)
}

/// What stops a what-if while the rides are read.
#[derive(Debug, thiserror::Error)]
pub enum WhatIfError {
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl WhatIfError {
    fn into_error(self) -> Error {
        Error::internal("pricing a week both ways", self)
    }
}

/// A week priced under two policies at once, keeping only what a comparison needs: each
/// passenger's total both ways and the week's sums both ways. The rides are priced exactly as the
/// planner prices them (seats in passenger-id order, [`price_trip`]), so the sums are the ones a
/// preview under each policy would show (property-tested against the planner below), in a
/// fraction of its memory: no ride, line or id is kept but the passengers'.
pub struct Tally {
    currency: BillingCurrency,
    /// Per passenger: what they pay under each policy.
    passengers: HashMap<Box<str>, [i64; 2]>,
    /// Per policy: what passengers pay, and the platform's fees.
    charged: [i64; 2],
    fees: [i64; 2],
}

impl Tally {
    pub fn new(currency: BillingCurrency) -> Tally {
        Tally { currency, passengers: HashMap::new(), charged: [0; 2], fees: [0; 2] }
    }

    /// Prices `ride` under both policies and adds it.
    pub fn add(&mut self, ride: &Ride, policies: [&FeePolicy; 2]) -> Result<(), WhatIfError> {
        let mut seats: Vec<_> = ride.seats.iter().collect();
        seats.sort_by(|a, b| a.passenger_id.cmp(&b.passenger_id));
        let attendance: Vec<Attendance> = seats.iter().map(|s| s.attendance).collect();
        let prices = [
            price_trip(policies[0], ride.distance_m, &attendance)?,
            price_trip(policies[1], ride.distance_m, &attendance)?,
        ];
        for (side, price) in prices.iter().enumerate() {
            self.charged[side] = checked(self.charged[side], price.total()?.minor())?;
            self.fees[side] = checked(self.fees[side], price.fee.minor())?;
        }
        for (i, seat) in seats.iter().enumerate() {
            let shares = [prices[0].shares[i].minor(), prices[1].shares[i].minor()];
            if shares == [0, 0] {
                continue;
            }
            let totals = match self.passengers.get_mut(seat.passenger_id.as_str()) {
                Some(totals) => totals,
                None => self.passengers.entry(seat.passenger_id.as_str().into()).or_insert([0, 0]),
            };
            for side in 0..2 {
                totals[side] = checked(totals[side], shares[side])?;
            }
        }
        Ok(())
    }

    /// The week's totals under policy `side` (0 or 1), as the preview's: one invoice per
    /// passenger who pays something, and the drivers get what the fees leave.
    pub fn totals(&self, side: usize) -> WeekTotals {
        let money = |minor| Money::from_minor(minor, self.currency);
        WeekTotals {
            invoices: self.passengers.values().filter(|t| t[side] != 0).count() as u64,
            charged: money(self.charged[side]),
            fees: money(self.fees[side]),
            payouts: money(self.charged[side] - self.fees[side]),
        }
    }

    /// Each passenger who pays something under either policy, with both totals.
    pub fn passengers(&self) -> impl Iterator<Item = (&str, [i64; 2])> + '_ {
        self.passengers.iter().map(|(user, totals)| (&**user, *totals))
    }
}

fn checked(sum: i64, add: i64) -> Result<i64, MoneyError> {
    sum.checked_add(add).ok_or(MoneyError::Overflow)
}

/// The comparison of one week priced two ways from the same rides.
pub fn compare(week: BillingWeek, current: i64, proposed: i64, tally: &Tally) -> WhatIf {
    let currency = tally.currency;
    let (mut up, mut down, mut same) = (0u64, 0u64, 0u64);
    let mut increases: Vec<(i64, &str, i64, i64)> = Vec::new();
    let mut deltas: Vec<i64> = Vec::with_capacity(tally.passengers.len());
    for (user, [was, is]) in tally.passengers() {
        let delta = is - was;
        match delta.cmp(&0) {
            std::cmp::Ordering::Greater => {
                up += 1;
                increases.push((delta, user, was, is));
                // Only the largest are kept, so a million increases never sit in memory.
                if increases.len() >= 4 * LARGEST_INCREASES {
                    largest_first(&mut increases);
                }
            }
            std::cmp::Ordering::Less => down += 1,
            std::cmp::Ordering::Equal => same += 1,
        }
        deltas.push(delta);
    }
    largest_first(&mut increases);
    let money = |minor| Money::from_minor(minor, currency);
    WhatIf {
        week: week.to_string(),
        current_version: current,
        proposed_version: proposed,
        before: tally.totals(0),
        after: tally.totals(1),
        passengers: tally.passengers.len() as u64,
        up,
        down,
        same,
        distribution: distribution(&deltas)
            .into_iter()
            .map(|(low, high, n)| ChangeBucket { low: money(low), high: money(high), passengers: n })
            .collect(),
        largest_increases: increases
            .into_iter()
            .map(|(delta, user, was, is)| PassengerChange {
                user_id: user.to_owned(),
                before: money(was),
                after: money(is),
                change: money(delta),
            })
            .collect(),
    }
}

/// Keeps the [`LARGEST_INCREASES`] largest, largest first (ties by user id).
fn largest_first(increases: &mut Vec<(i64, &str, i64, i64)>) {
    increases.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    increases.truncate(LARGEST_INCREASES);
}

/// The changes (minor units) counted in buckets of a round width (1, 2 or 5 times a power of
/// ten, at most about 20 of them), with no change at all in a bucket of its own:
/// `(low, high, count)` counts the changes in `[low, high)` other than zero, and `(0, 0, n)` the
/// unchanged.
pub fn distribution(deltas: &[i64]) -> Vec<(i64, i64, u64)> {
    let (Some(&min), Some(&max)) = (deltas.iter().min(), deltas.iter().max()) else { return Vec::new() };
    let span = (max.max(0) - min.min(0)).max(1);
    let mut width: i64 = 1;
    'search: for power in 0..18 {
        for step in [1, 2, 5] {
            width = step * 10i64.pow(power);
            if span / width < 20 {
                break 'search;
            }
        }
    }
    let mut buckets: std::collections::BTreeMap<(i64, i64), u64> = std::collections::BTreeMap::new();
    for &delta in deltas {
        let key = if delta == 0 {
            (0, 0)
        } else {
            let low = delta.div_euclid(width) * width;
            (low, low + width)
        };
        *buckets.entry(key).or_insert(0) += 1;
    }
    buckets.into_iter().map(|((low, high), n)| (low, high, n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::fixtures::{policy, usd};
    use crate::billing::plan::tests::arbitrary_policy;
    use crate::billing::planner::{LeanPlan, Planner};
    use app::model::billing::Seat;
    use chrono::Duration;
    use chrono_tz::Tz;
    use proptest::prelude::*;

    fn week() -> BillingWeek {
        BillingWeek::parse("2026-W48").unwrap()
    }

    fn rides() -> impl Strategy<Value = Vec<Ride>> {
        let ride = (0i64..80_000, 1i64..160, prop::collection::btree_set(0u8..20, 1..4), 0u8..10).prop_map(
            |(distance_m, hour, passengers, kind)| {
                let ended_at = week().start(Tz::UTC) + Duration::hours(hour);
                let attendance = match kind {
                    0 => Attendance::NoShow,
                    1 => Attendance::Cancelled,
                    _ => Attendance::Completed,
                };
                Ride {
                    ride_id: String::new(),
                    driver_id: format!("driver{}", hour % 3),
                    distance_m,
                    started_at: ended_at - Duration::minutes(20),
                    ended_at,
                    seats: passengers
                        .into_iter()
                        .map(|p| Seat { passenger_id: format!("user{p}"), attendance })
                        .collect(),
                }
            },
        );
        prop::collection::vec(ride, 1..40).prop_map(|mut rides| {
            for (i, ride) in rides.iter_mut().enumerate() {
                ride.ride_id = format!("ride{i}");
            }
            rides
        })
    }

    fn plan(policy: &FeePolicy, rides: &[Ride]) -> LeanPlan {
        let mut planner = Planner::new(policy, week(), Tz::UTC);
        for ride in rides {
            planner.add(ride).unwrap();
        }
        planner.finish().unwrap()
    }

    fn tally(before: &FeePolicy, after: &FeePolicy, rides: &[Ride]) -> Tally {
        let mut tally = Tally::new(before.base.currency());
        for ride in rides {
            tally.add(ride, [before, after]).unwrap();
        }
        tally
    }

    proptest! {
        /// The tally of two policies is what the planner makes of each: the week's totals and
        /// every passenger's invoice, both ways.
        #[test]
        fn the_tally_is_the_planners_week_both_ways(
            rides in rides(),
            before in arbitrary_policy(),
            after in arbitrary_policy(),
        ) {
            let tally = tally(&before, &after, &rides);
            for (side, policy) in [(0, &before), (1, &after)] {
                let plan = plan(policy, &rides);
                prop_assert_eq!(&tally.totals(side), &plan.totals);
                let invoices: std::collections::BTreeMap<String, i64> =
                    plan.invoices().map(|i| (i.user_id().into_owned(), i.total().minor())).collect();
                let tallied: std::collections::BTreeMap<String, i64> =
                    tally.passengers().filter(|(_, t)| t[side] != 0).map(|(u, t)| (u.to_owned(), t[side])).collect();
                prop_assert_eq!(tallied, invoices);
            }
        }

        /// The same version both ways changes nobody's invoice.
        #[test]
        fn the_same_version_changes_nothing(rides in rides(), policy in arbitrary_policy()) {
            let w = compare(week(), 3, 3, &tally(&policy, &policy, &rides));
            prop_assert_eq!(w.same, w.passengers);
            prop_assert_eq!((w.up, w.down), (0, 0));
            prop_assert!(w.largest_increases.is_empty());
            prop_assert_eq!(&w.before, &w.after);
            prop_assert!(w.distribution.iter().all(|b| b.low == b.high), "{:?}", w.distribution);
        }

        /// A higher trip base never lowers an invoice; every passenger is counted once, in one
        /// bucket, and the changes add up to the change of the week's total.
        #[test]
        fn a_higher_base_lowers_no_invoice(rides in rides(), extra in 1i64..500) {
            let higher = FeePolicy { base: usd(policy().base.minor() + extra), ..policy() };
            let w = compare(week(), 0, 1, &tally(&policy(), &higher, &rides));
            prop_assert_eq!(w.down, 0);
            prop_assert_eq!(w.up + w.same, w.passengers);
            prop_assert_eq!(w.distribution.iter().map(|b| b.passengers).sum::<u64>(), w.passengers);
            let sum: i64 = w.largest_increases.iter().map(|c| c.change.minor()).sum();
            if w.up as usize <= LARGEST_INCREASES {
                prop_assert_eq!(sum, w.after.charged.minor() - w.before.charged.minor());
            }
            for pair in w.largest_increases.windows(2) {
                prop_assert!(pair[0].change.minor() >= pair[1].change.minor(), "largest first");
            }
        }
    }

    #[test]
    fn changes_fall_in_round_buckets_with_no_change_apart() {
        assert_eq!(distribution(&[]), vec![]);
        assert_eq!(distribution(&[0, 0]), vec![(0, 0, 2)]);
        // A span of 700 cents: buckets of 50.
        let buckets = distribution(&[-200, -1, 0, 1, 49, 50, 500]);
        assert_eq!(
            buckets,
            vec![(-200, -150, 1), (-50, 0, 1), (0, 0, 1), (0, 50, 2), (50, 100, 1), (500, 550, 1)]
        );
        let wide = distribution(&[-1_000_000, 3_000_000]);
        assert_eq!(
            wide,
            vec![(-1_000_000, -500_000, 1), (3_000_000, 3_500_000, 1)],
            "a span of 4,000,000: buckets of 500,000"
        );
    }
}

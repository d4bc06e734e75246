//! Pricing as versions of the fee policy, shared by the dashboard, the JSON API and the CLI.
//!
//! A version holds the trip base, the per-km rate, the platform fee and the no-show fee, and is in
//! force from a billing week until a later version. One finance or admin member proposes it;
//! another approves it, never the proposer. A week is priced with the version in force for it,
//! and an approved (frozen) week keeps the version it was approved with. Before a proposal is
//! approved, [`what_if`] prices a stored week both ways without storing anything.

use app::auth::Action;
use app::model::billing::Ride;
use app::model::money::{Money, MoneyError};
use app::model::pricing::{
    ChangeBucket, FeePolicy, NewPolicyVersion, PassengerChange, PolicyVersion, PolicyVersions, VersionStatus,
    WhatIf, BUILT_IN_VERSION,
};
use app::model::staff::Principal;
use app::model::week::BillingWeek;
use chrono::Utc;
use std::collections::HashMap;

use crate::billing::plan::PlanError;
use crate::billing::planner::{LeanPlan, Planner};
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
        let money = Money::parse(text, config.currency).map_err(|e| match e {
            MoneyError::BadAmount { .. } => Error::invalid(field, e.to_string()),
            other => Error::invalid(field, other.to_string()),
        })?;
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
    if approve {
        // Time passes between a proposal and its approval: the week must still be to come.
        let version = get(db, config, principal, id).await?;
        if let Some(week) = version.effective_week.as_deref().and_then(|w| BillingWeek::parse(w).ok()) {
            if week < current && version.status == VersionStatus::Proposed {
                return Err(Error::conflict(
                    "effective_week",
                    format!(
                        "{week} has passed since this was proposed; propose it again for {current} or later"
                    ),
                ));
            }
        }
    }
    db.decide_fee_policy(&Actor::staff(principal), id, approve, &current.to_string()).await.map_err(|e| {
        match e {
            DecideError::NotFound(_) => Error::NotFound(format!("fee policy version {id}")),
            e @ DecideError::OwnProposal(_) => Error::Forbidden(e.to_string()),
            e @ DecideError::NotProposed { .. } => Error::conflict("status", e.to_string()),
            e @ (DecideError::WeekApproved { .. } | DecideError::InForce { .. }) => {
                Error::conflict("effective_week", e.to_string())
            }
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
    let (before, after) = price_both_ways(db, config, week, &current.policy, &proposed.policy).await?;
    Ok(compare(week, current.id, proposed.id, &before, &after))
}

/// The week's rides planned under two policies in one read.
async fn price_both_ways(
    db: &Db,
    config: &Config,
    week: BillingWeek,
    before: &FeePolicy,
    after: &FeePolicy,
) -> Result<(LeanPlan, LeanPlan), Error> {
    let tz = config.time_zone;
    let (start, end) = (week.start(tz), week.end(tz));
    let plan_error = |e: PlanError| Error::internal("pricing a week both ways", e);
    let internal = |e: sqlx::Error| Error::internal("pricing a week both ways", e);
    let mut old = Planner::new(before, week, tz);
    let mut new = Planner::new(after, week, tz);
    let mut add = |ride: Ride| -> Result<(), WhatIfError> {
        old.add(&ride)?;
        new.add(&ride)?;
        Ok(())
    };
    for ride in db.late_rides_before(start).await.map_err(internal)? {
        add(ride).map_err(WhatIfError::into_error)?;
    }
    db.each_ride_ended_between(start, end, &mut add).await.map_err(WhatIfError::into_error)?;
    Ok((old.finish().map_err(plan_error)?, new.finish().map_err(plan_error)?))
}

/// What stops a what-if while the rides are read.
#[derive(Debug, thiserror::Error)]
enum WhatIfError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl WhatIfError {
    fn into_error(self) -> Error {
        Error::internal("pricing a week both ways", self)
    }
}

/// The comparison of one week planned two ways from the same rides.
pub fn compare(
    week: BillingWeek,
    current: i64,
    proposed: i64,
    before: &LeanPlan,
    after: &LeanPlan,
) -> WhatIf {
    let currency = before.currency;
    let old: HashMap<&str, i64> = before.invoices().map(|i| (i.user_id(), i.total().minor())).collect();
    let mut changes: HashMap<&str, (i64, i64)> =
        old.iter().map(|(user, minor)| (*user, (*minor, 0))).collect();
    for invoice in after.invoices() {
        changes.entry(invoice.user_id()).or_insert((0, 0)).1 = invoice.total().minor();
    }
    let (mut up, mut down, mut same) = (0u64, 0u64, 0u64);
    let mut increases: Vec<(i64, &str, i64, i64)> = Vec::new();
    let mut deltas: Vec<i64> = Vec::with_capacity(changes.len());
    for (user, (was, is)) in &changes {
        let delta = is - was;
        match delta.cmp(&0) {
            std::cmp::Ordering::Greater => {
                up += 1;
                increases.push((delta, user, *was, *is));
            }
            std::cmp::Ordering::Less => down += 1,
            std::cmp::Ordering::Equal => same += 1,
        }
        deltas.push(delta);
    }
    increases.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    increases.truncate(LARGEST_INCREASES);
    let money = |minor| Money::from_minor(minor, currency);
    WhatIf {
        week: week.to_string(),
        current_version: current,
        proposed_version: proposed,
        before: before.totals.clone(),
        after: after.totals.clone(),
        passengers: changes.len() as u64,
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
    use app::model::billing::Seat;
    use app::model::pricing::Attendance;
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

    proptest! {
        /// The same version both ways changes nobody's invoice.
        #[test]
        fn the_same_version_changes_nothing(rides in rides(), policy in crate::billing::plan::tests::arbitrary_policy()) {
            let (before, after) = (plan(&policy, &rides), plan(&policy, &rides));
            let w = compare(week(), 3, 3, &before, &after);
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
            let (before, after) = (plan(&policy(), &rides), plan(&higher, &rides));
            let w = compare(week(), 0, 1, &before, &after);
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

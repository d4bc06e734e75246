//! Pricing one trip: who pays what, what the platform keeps, what the driver gets.
//!
//! The rule (also in the README): the trip costs `base + per_km × km` (rounded half to even to
//! the minor unit); the passengers who rode share it by the largest-remainder split, in the order
//! of their ids; each no-show pays the no-show fee; cancelled seats pay nothing; a trip nobody
//! rode costs only its no-show fees. The platform keeps its fee on the total paid, and the driver
//! is paid the rest, so shares, fee and payout always add up.

use app::model::money::{Money, MoneyError};
use app::model::pricing::{Attendance, FeePolicy};

use super::split::{fee_minor, round_half_even_div, split_even};

/// What a trip comes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TripPrice {
    /// What each passenger pays, in the order given (cancelled seats pay zero).
    pub shares: Vec<Money>,
    /// The platform's fee on the total.
    pub fee: Money,
    /// What the driver is paid.
    pub payout: Money,
}

impl TripPrice {
    /// Everything the passengers pay.
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.fee.checked_add(self.payout)
    }
}

/// Why a trip cannot be priced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("distance_m: must not be negative")]
    NegativeDistance,
    #[error("passengers: a trip needs at least one passenger")]
    NoPassengers,
    #[error("policy: {0}")]
    Money(#[from] MoneyError),
}

/// Prices a trip of `distance_m` metres for passengers whose seats ended as `seats`. The caller
/// orders `seats` by passenger id, which fixes who gets the leftover minor units.
pub fn price_trip(
    policy: &FeePolicy,
    distance_m: i64,
    seats: &[Attendance],
) -> Result<TripPrice, PricingError> {
    if distance_m < 0 {
        return Err(PricingError::NegativeDistance);
    }
    if seats.is_empty() {
        return Err(PricingError::NoPassengers);
    }
    let currency = policy.base.currency();
    let distance_cost = round_half_even_div(i128::from(policy.per_km.minor()) * i128::from(distance_m), 1000);
    let distance_cost = i64::try_from(distance_cost).map_err(|_| MoneyError::Overflow)?;
    let cost = policy.base.checked_add(Money::from_minor(distance_cost, policy.per_km.currency()))?;

    let riders = seats.iter().filter(|s| **s == Attendance::Completed).count();
    let mut rider_shares =
        if riders > 0 { split_even(cost.minor(), riders).map_err(|_| MoneyError::Overflow)? } else { vec![] }
            .into_iter();
    let shares: Vec<Money> = seats
        .iter()
        .map(|seat| match seat {
            Attendance::Completed => {
                Money::from_minor(rider_shares.next().expect("one share per rider"), currency)
            }
            Attendance::Cancelled => Money::zero(currency),
            Attendance::NoShow => policy.no_show_fee,
        })
        .collect();
    let total = Money::sum(currency, shares.iter().copied())?;
    let fee = Money::from_minor(fee_minor(total.minor(), policy.platform_fee_bps), currency);
    let payout = total.checked_sub(fee)?;
    Ok(TripPrice { shares, fee, payout })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::billing::fixtures::{policy, usd};

    #[test]
    fn a_shared_trip() {
        // 2.00 + 0.35 × 12.345 km = 2.00 + 4.32075 → 6.32; three riders: 2.11, 2.11, 2.10.
        let price = price_trip(&policy(), 12_345, &[Attendance::Completed; 3]).unwrap();
        assert_eq!(price.shares, vec![usd(211), usd(211), usd(210)]);
        assert_eq!(price.total().unwrap(), usd(632));
        assert_eq!(price.fee, usd(95), "15 % of 6.32 = 0.948");
        assert_eq!(price.payout, usd(537));
    }

    #[test]
    fn cancelled_seats_are_free_and_no_shows_pay_their_fee() {
        let seats = [Attendance::Completed, Attendance::Cancelled, Attendance::NoShow];
        let price = price_trip(&policy(), 10_000, &seats).unwrap();
        assert_eq!(price.shares, vec![usd(550), usd(0), usd(300)]);
        let nobody_rode =
            price_trip(&policy(), 10_000, &[Attendance::Cancelled, Attendance::NoShow]).unwrap();
        assert_eq!(nobody_rode.total().unwrap(), usd(300));
    }

    #[test]
    fn bad_trips_are_refused_naming_the_field() {
        assert!(price_trip(&policy(), -1, &[Attendance::Completed])
            .unwrap_err()
            .to_string()
            .starts_with("distance_m"));
        assert!(price_trip(&policy(), 1, &[]).unwrap_err().to_string().starts_with("passengers"));
    }

    fn attendance() -> impl Strategy<Value = Attendance> {
        prop_oneof![Just(Attendance::Completed), Just(Attendance::Cancelled), Just(Attendance::NoShow)]
    }

    proptest! {
        #[test]
        fn shares_fee_and_payout_add_up(
            distance_m in 0i64..2_000_000,
            seats in prop::collection::vec(attendance(), 1..9),
            base in 0i64..10_000, per_km in 0i64..1_000, bps in 0u32..=10_000, no_show in 0i64..5_000,
        ) {
            let policy = FeePolicy { base: usd(base), per_km: usd(per_km), platform_fee_bps: bps, no_show_fee: usd(no_show) };
            let price = price_trip(&policy, distance_m, &seats).unwrap();
            let paid = Money::sum(policy.base.currency(), price.shares.iter().copied()).unwrap();
            prop_assert_eq!(paid, price.total().unwrap(), "what passengers pay is fee plus payout");
            prop_assert!(price.fee.minor() >= 0 && price.payout.minor() >= 0);
            let riders: Vec<i64> = seats.iter().zip(&price.shares).filter(|(s, _)| **s == Attendance::Completed).map(|(_, m)| m.minor()).collect();
            if !riders.is_empty() {
                prop_assert!(riders.iter().max().unwrap() - riders.iter().min().unwrap() <= 1, "riders share evenly");
            }
            prop_assert_eq!(price_trip(&policy, distance_m, &seats).unwrap(), price, "deterministic");
        }
    }
}

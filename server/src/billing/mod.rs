//! Pure billing rules: no I/O, unit and property tests: pricing, splitting, planning a week (with
//! its waivers) and finding its anomalies.

pub mod anomalies;
pub mod ledger;
pub mod plan;
pub mod planner;
pub mod pricing;
pub mod split;
pub mod waived;

/// Amounts and the policy the rules' tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use app::model::money::{BillingCurrency, Money};
    use app::model::pricing::FeePolicy;

    /// `minor` US cents.
    pub fn usd(minor: i64) -> Money {
        Money::from_minor(minor, BillingCurrency::from_code("USD").unwrap())
    }

    /// 2.00 per trip, 0.35 per km, 15 %, 3.00 per no-show.
    pub fn policy() -> FeePolicy {
        FeePolicy { base: usd(200), per_km: usd(35), platform_fee_bps: 1500, no_show_fee: usd(300) }
    }
}

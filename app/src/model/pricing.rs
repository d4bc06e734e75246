//! The fee policy: what a trip costs and what the platform keeps.

use serde::{Deserialize, Serialize};

use super::money::Money;

/// How trips are priced. All amounts in the billing currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeePolicy {
    /// Charged once per completed trip, shared by its passengers.
    pub base: Money,
    /// Per kilometre driven, shared by the trip's passengers.
    pub per_km: Money,
    /// The platform's share of what passengers pay, in basis points (1 500 = 15 %).
    pub platform_fee_bps: u32,
    /// What a passenger who booked and did not show up pays.
    pub no_show_fee: Money,
}

/// What became of one passenger's seat on a trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attendance {
    /// Rode: shares the trip's cost.
    Completed,
    /// Cancelled in time: pays nothing.
    Cancelled,
    /// Booked and did not come: pays the no-show fee.
    NoShow,
}

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

/// Where a version of the fee policy stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Waiting for a second finance or admin member.
    Proposed,
    /// In force from its week until a later version.
    Approved,
    /// Taken back before anyone approved it.
    Withdrawn,
    /// Approved, then replaced by another version for the same week before that week began.
    Superseded,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Proposed => "proposed",
            VersionStatus::Approved => "approved",
            VersionStatus::Withdrawn => "withdrawn",
            VersionStatus::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<VersionStatus> {
        [
            VersionStatus::Proposed,
            VersionStatus::Approved,
            VersionStatus::Withdrawn,
            VersionStatus::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The id of the built-in policy, in force for every week before the first approved version.
pub const BUILT_IN_VERSION: i64 = 0;

/// How pages name version `id`: "version 3", or "the built-in policy".
pub fn version_label(id: i64) -> String {
    if id == BUILT_IN_VERSION {
        "the built-in policy".to_owned()
    } else {
        format!("version {id}")
    }
}

/// A version of the fee policy: never edited once approved; a later version replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// [`BUILT_IN_VERSION`] for the built-in policy.
    pub id: i64,
    /// The first billing week it prices (`2026-W50`); `None` for the built-in policy.
    pub effective_week: Option<String>,
    pub policy: FeePolicy,
    pub note: String,
    pub status: VersionStatus,
    pub proposed_by: Option<String>,
    pub proposed_at: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
}

impl PolicyVersion {
    /// "version 3", or "the built-in policy".
    pub fn label(&self) -> String {
        version_label(self.id)
    }
}

/// The versions as staff see them: the one in force this week, those approved for later weeks,
/// the proposals, and the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersions {
    /// The current billing week (`2026-W49`).
    pub current_week: String,
    /// The id of the version in force for the current week.
    pub in_force: i64,
    /// Newest first, the built-in policy last.
    pub versions: Vec<PolicyVersion>,
}

/// How one passenger's invoice for the week changes under a proposed version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassengerChange {
    pub user_id: String,
    pub before: Money,
    pub after: Money,
    pub change: Money,
}

/// How many passengers' invoices change by an amount in `[low, high)` (or exactly `low` when
/// `low == high`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBucket {
    pub low: Money,
    pub high: Money,
    pub passengers: u64,
}

/// A stored week priced both ways, its version and a proposed one, with nothing stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatIf {
    pub week: String,
    /// The version the week is priced with now (frozen weeks: the one they were approved with).
    pub current_version: i64,
    pub proposed_version: i64,
    pub before: super::billing::WeekTotals,
    pub after: super::billing::WeekTotals,
    pub passengers: u64,
    pub up: u64,
    pub down: u64,
    pub same: u64,
    /// The changes per passenger, in buckets of equal width, lowest first.
    pub distribution: Vec<ChangeBucket>,
    /// The largest increases, largest first (at most 20).
    pub largest_increases: Vec<PassengerChange>,
}

/// A proposed version as staff type it: amounts in major units of the billing currency, the fee
/// in basis points, each checked by the server, which names the field it refuses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPolicyVersion {
    /// The first billing week it prices (`2026-W50`).
    pub effective_week: String,
    pub base: String,
    pub per_km: String,
    pub platform_fee_bps: String,
    pub no_show_fee: String,
    #[serde(default)]
    pub note: String,
}

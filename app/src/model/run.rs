//! The weekly run as the dashboard shows it: phase, control, counts, amounts, throughput and
//! the latest events.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use super::money::Money;

/// A stored run state that is not one of the product's (a row changed behind its back).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a run phase or control")]
pub struct UnknownState(pub String);

/// Declares a run state stored as its snake_case name: `as_str`, `Display`, and `TryFrom<String>`
/// (how the server reads it from the database).
macro_rules! run_state {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownState;
            fn from_str(text: &str) -> Result<Self, UnknownState> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| UnknownState(text.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownState;
            fn try_from(text: String) -> Result<Self, UnknownState> {
                text.parse()
            }
        }
    };
}

run_state! {
    /// Where a run is, in the order it moves (it only moves forward).
    Phase {
        /// The first `canary_size` invoices, checked against the provider before the rest.
        Canary => "canary",
        Charging => "charging",
        PayingOut => "paying_out",
        Completed => "completed",
    }
}

run_state! {
    /// Whether a run's workers may make calls: only while `running`.
    Control {
        Running => "running",
        Paused => "paused",
        /// Stopped by a guard, with its reason.
        Halted => "halted",
        Aborted => "aborted",
    }
}

/// One line of a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvent {
    /// In the business time zone (RFC 3339 with its offset, as every moment of [`RunView`]).
    pub at: DateTime<FixedOffset>,
    pub kind: String,
    pub message: String,
}

/// A run and where it stands. Its moments are in the business time zone, named by
/// `time_zone` (RFC 3339 with that zone's offset: the same instants, whatever the zone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub id: i64,
    pub week: String,
    pub phase: Phase,
    pub control: Control,
    pub reason: Option<String>,
    pub started_at: DateTime<FixedOffset>,
    pub started_by: String,
    pub completed_at: Option<DateTime<FixedOffset>>,
    /// The approved total, what is charged so far, what is paid to drivers so far.
    pub expected: Money,
    pub charged: Money,
    pub paid: Money,
    pub invoices: i64,
    pub charged_count: i64,
    pub declined: i64,
    pub uncollectible: i64,
    pub pending: i64,
    pub payouts: i64,
    pub paid_count: i64,
    pub attempts: i64,
    pub unknown_attempts: i64,
    /// Successful provider calls in each of the last 24 five-second slots, oldest first.
    pub sparkline: Vec<i64>,
    /// Successful calls per second over the last ten to fifteen seconds (or since the run started, when
    /// later), times ten (an integer: 125 = 12.5/s).
    pub rate_x10: i64,
    /// Seconds to go at that rate, when it is moving.
    pub eta_seconds: Option<i64>,
    /// Newest first.
    pub events: Vec<RunEvent>,
    /// What the run's pending payouts wait for, if anything.
    #[serde(default)]
    pub waiting: Vec<RunWaiting>,
    /// The run's failed payouts (the first hundred), which finance may retry.
    #[serde(default)]
    pub failed_payouts: Vec<FailedPayout>,
    /// Charges and payouts that wait for a person (the first hundred).
    #[serde(default)]
    pub held: Vec<HeldItem>,
    /// The business time zone the moments are in (empty: UTC).
    #[serde(default)]
    pub time_zone: String,
}

/// A charge or payout that waits for a person: its attempt is past the key-reuse window (the
/// provider may have forgotten its key, so it is never sent again) and the provider could not
/// be asked what it made. Finance looks it up again, or marks it as not made at the provider
/// (a second member confirms; then a new attempt goes out under a new key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldItem {
    /// `charge` (of an invoice) or `payout`.
    pub kind: String,
    /// The invoice's or the payout's id.
    pub id: i64,
    pub user_id: String,
    pub amount: Money,
    /// Why it waits, in the provider's or the run's words.
    pub detail: Option<String>,
    /// The open attempt's idempotency key, and when it was first sent.
    pub key: Option<String>,
    pub since: Option<DateTime<FixedOffset>>,
    /// Who asked to mark it as not made, waiting for a second member to confirm.
    pub proposed_by: Option<String>,
}

/// A payout the provider refused for good (not for funds), with the last attempt's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPayout {
    pub payout_id: i64,
    pub driver_id: String,
    pub amount: Money,
    pub attempts: i64,
    pub detail: Option<String>,
}

/// Payouts of a run that wait, still pending, for something outside the product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunWaiting {
    /// `funds` (the provider's available balance cannot cover them yet) or `account` (the
    /// driver has no connected account yet).
    pub waiting_for: String,
    pub payouts: i64,
    pub amount: Money,
    /// The next try, in the business time zone.
    pub next_at: DateTime<FixedOffset>,
    /// The provider's or the run's words for it.
    pub detail: Option<String>,
}

impl RunWaiting {
    /// The wait in a sentence, as the run page and `billing run` say it; `zone` names the
    /// business time zone `next_at` is in.
    pub fn sentence(&self, zone: &str) -> String {
        let what = match self.waiting_for.as_str() {
            "funds" => "for funds: the provider's available balance cannot cover them yet",
            "account" => "for the drivers' payout accounts, which the carpool app has not sent",
            _ => "for the provider",
        };
        format!(
            "{} payout(s) of {} {} wait {what}; next try at {}",
            self.payouts,
            self.amount,
            self.amount.currency().code(),
            crate::components::format::moment(self.next_at, zone)
        )
    }
}

impl RunView {
    /// Finished items out of all, per mille, for the progress bar (charges, then payouts).
    pub fn progress_per_mille(&self) -> i64 {
        let total = self.invoices + self.payouts;
        if total == 0 {
            return 1000;
        }
        let done = (self.invoices - self.pending) + self.paid_count;
        (done * 1000 / total).clamp(0, 1000)
    }

    /// Whether workers may still make calls.
    pub fn running(&self) -> bool {
        self.control == Control::Running && self.phase != Phase::Completed
    }

    /// Whether the run is over for good: completed or aborted (its stream ends then).
    pub fn over(&self) -> bool {
        self.phase == Phase::Completed || self.control == Control::Aborted
    }
}

/// A run halted by a guard, for the banner on every page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltedRun {
    pub id: i64,
    pub week: String,
    pub reason: String,
}

/// How a run works; stored as the `run_settings` setting (`GET`/`PUT /api/v1/settings/run`,
/// the form on the runs page), defaults otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunSettings {
    /// Invoices charged and checked before the rest.
    pub canary_size: i64,
    /// Concurrent workers per process.
    pub workers: usize,
    /// Items a worker claims at once; after the canary, the calls of a batch are in flight
    /// together (so at most `workers × batch` calls are in flight per process).
    pub batch: i64,
    /// The provider account's limit of calls per second, shared by every process working any
    /// run (through the database).
    pub rate_per_second: u32,
    /// Attempts before an invoice is uncollectible (or a transfer failed).
    pub max_attempts: i64,
    /// Seconds before a declined invoice is tried again.
    pub decline_retry_seconds: i64,
    /// Seconds before an unknown outcome is asked again (same key).
    pub unknown_retry_seconds: i64,
    /// Seconds before a payout waiting for funds (or for the driver's account) is tried again.
    pub funds_retry_seconds: i64,
    /// Seconds a claim holds an item; a crashed worker's items come back after it.
    pub lease_seconds: i64,
    /// Seconds a provider call may take before its outcome counts as unknown.
    pub provider_timeout_seconds: u64,
    /// The key-reuse window: an attempt older than this is never sent again under its
    /// idempotency key (the provider forgets keys after 24 hours); the movement is looked up in
    /// the provider's lists instead.
    pub key_window_seconds: i64,
    /// Guard: the most one passenger may be charged in a run, in minor units.
    pub user_cap_minor: i64,
    /// Guard: the run halts when unknown and failed attempts exceed this percentage…
    pub failure_rate_pct: i64,
    /// …of at least this many attempts.
    pub failure_min_attempts: i64,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            canary_size: 20,
            workers: 8,
            batch: 8,
            rate_per_second: 100,
            max_attempts: 3,
            decline_retry_seconds: 24 * 3600,
            unknown_retry_seconds: 2,
            funds_retry_seconds: 3600,
            lease_seconds: 30,
            provider_timeout_seconds: 10,
            key_window_seconds: 20 * 3600,
            user_cap_minor: 100_000,
            failure_rate_pct: 20,
            failure_min_attempts: 20,
        }
    }
}

/// The ranges the settings may take, checked when staff change them: (field, lowest, highest).
const RANGES: &[(&str, i64, i64)] = &[
    ("canary_size", 0, 100_000),
    ("workers", 1, 256),
    ("batch", 1, 1_000),
    ("rate_per_second", 1, 1_000_000),
    ("max_attempts", 1, 100),
    ("decline_retry_seconds", 0, 30 * 24 * 3600),
    ("unknown_retry_seconds", 0, 3600),
    ("funds_retry_seconds", 1, 7 * 24 * 3600),
    ("lease_seconds", 1, 3600),
    ("provider_timeout_seconds", 1, 300),
    ("key_window_seconds", 600, 23 * 3600),
    ("user_cap_minor", 1, 1_000_000_000_000),
    ("failure_rate_pct", 1, 100),
    ("failure_min_attempts", 1, 1_000_000),
];

impl RunSettings {
    /// The setting's key.
    pub const KEY: &'static str = "run_settings";

    /// Each field's value, by name, as [`RunSettings::validate`] checks them.
    fn fields(&self) -> [(&'static str, i64); 14] {
        [
            ("canary_size", self.canary_size),
            ("workers", self.workers as i64),
            ("batch", self.batch),
            ("rate_per_second", i64::from(self.rate_per_second)),
            ("max_attempts", self.max_attempts),
            ("decline_retry_seconds", self.decline_retry_seconds),
            ("unknown_retry_seconds", self.unknown_retry_seconds),
            ("funds_retry_seconds", self.funds_retry_seconds),
            ("lease_seconds", self.lease_seconds),
            ("provider_timeout_seconds", i64::try_from(self.provider_timeout_seconds).unwrap_or(i64::MAX)),
            ("key_window_seconds", self.key_window_seconds),
            ("user_cap_minor", self.user_cap_minor),
            ("failure_rate_pct", self.failure_rate_pct),
            ("failure_min_attempts", self.failure_min_attempts),
        ]
    }

    /// Checks every field against its range; the first one out of it, named, with the range.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for ((field, value), (_, low, high)) in self.fields().into_iter().zip(RANGES) {
            if !(*low..=*high).contains(&value) {
                return Err((field, format!("must be from {low} to {high}, not {value}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod waiting_tests {
    use super::*;
    use crate::model::money::BillingCurrency;

    #[test]
    fn a_wait_names_its_next_try_in_the_business_zone() {
        let wait = RunWaiting {
            waiting_for: "funds".into(),
            payouts: 2,
            amount: Money::from_minor(12_345, BillingCurrency::from_code("EUR").unwrap()),
            next_at: DateTime::parse_from_rfc3339("2026-12-07T06:24:27+01:00").unwrap(),
            detail: None,
        };
        assert_eq!(
            wait.sentence("Europe/Paris"),
            "2 payout(s) of 123.45 EUR wait for funds: the provider's available balance cannot cover \
             them yet; next try at Mon 7 Dec 2026 06:24:27 Europe/Paris (+01:00)"
        );
    }
}

#[cfg(test)]
mod settings_tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_each_field_is_checked_by_name() {
        assert_eq!(RunSettings::default().validate(), Ok(()));
        let names: Vec<&str> = RunSettings::default().fields().iter().map(|f| f.0).collect();
        let ranged: Vec<&str> = RANGES.iter().map(|r| r.0).collect();
        assert_eq!(names, ranged, "one range per field, in the same order");
        let bad = [
            RunSettings { workers: 0, ..Default::default() },
            RunSettings { rate_per_second: 0, ..Default::default() },
            RunSettings { failure_rate_pct: 101, ..Default::default() },
            RunSettings { provider_timeout_seconds: 301, ..Default::default() },
            RunSettings { canary_size: -1, ..Default::default() },
        ];
        let fields =
            ["workers", "rate_per_second", "failure_rate_pct", "provider_timeout_seconds", "canary_size"];
        for (settings, field) in bad.iter().zip(fields) {
            assert_eq!(settings.validate().unwrap_err().0, field);
        }
    }
}

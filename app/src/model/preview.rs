//! What the week's preview page shows: the stored (or frozen) invoices and payouts of a week,
//! their totals and the anomalies found in them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::billing::WeekTotals;
use super::money::Money;
use super::pricing::Attendance;
use super::week::BillingWeek;

/// Where a week's invoice set stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeekStatus {
    /// A draft: recomputed whenever the week's rides change.
    Previewed,
    /// Frozen by a finance or admin approval: what the run charges and pays.
    Approved,
}

impl WeekStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WeekStatus::Previewed => "previewed",
            WeekStatus::Approved => "approved",
        }
    }

    pub fn parse(value: &str) -> Option<WeekStatus> {
        match value {
            "previewed" => Some(WeekStatus::Previewed),
            "approved" => Some(WeekStatus::Approved),
            _ => None,
        }
    }
}

/// What looks wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// An invoice far above the passenger's recent weekly average.
    HighInvoice,
    /// A passenger on two rides at the same time.
    OverlappingRides,
    /// A ride too long, or too fast, to be real.
    ImplausibleDistance,
    /// The week's total far from the recent weeks'.
    WeekTotal,
}

impl AnomalyKind {
    /// A short label for a badge.
    pub fn label(self) -> &'static str {
        match self {
            AnomalyKind::HighInvoice => "high invoice",
            AnomalyKind::OverlappingRides => "overlapping rides",
            AnomalyKind::ImplausibleDistance => "implausible distance",
            AnomalyKind::WeekTotal => "unusual week total",
        }
    }
}

/// One anomaly, said in words, with the ride it concerns when there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ride_id: Option<String>,
}

/// When something counts as an anomaly. Stored as the `anomaly_thresholds` setting; integers
/// only (percentages and whole units), so that no float decides anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyThresholds {
    /// An invoice is high above this percentage of the passenger's average (300 = three times).
    pub invoice_vs_average_pct: u32,
    /// How many earlier weeks make the averages (of a passenger, and of the week's total).
    pub lookback_weeks: u32,
    /// The week's total is unusual when it differs from the recent average by more than this
    /// percentage.
    pub week_change_pct: u32,
    /// A ride longer than this is implausible.
    pub max_distance_km: u32,
    /// A ride faster on average than this is implausible.
    pub max_speed_kmh: u32,
}

impl Default for AnomalyThresholds {
    fn default() -> Self {
        AnomalyThresholds {
            invoice_vs_average_pct: 300,
            lookback_weeks: 4,
            week_change_pct: 50,
            max_distance_km: 300,
            max_speed_kmh: 150,
        }
    }
}

impl AnomalyThresholds {
    /// The setting's key.
    pub const KEY: &'static str = "anomaly_thresholds";

    /// Checks every value; the error starts with the field's name.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let checks: [(&'static str, u32, u32, u32); 5] = [
            ("invoice_vs_average_pct", self.invoice_vs_average_pct, 101, 10_000),
            ("lookback_weeks", self.lookback_weeks, 1, 52),
            ("week_change_pct", self.week_change_pct, 1, 1_000),
            ("max_distance_km", self.max_distance_km, 1, 2_000),
            ("max_speed_kmh", self.max_speed_kmh, 1, 500),
        ];
        for (field, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err((field, format!("must be from {min} to {max}, not {value}")));
            }
        }
        Ok(())
    }
}

/// The head of the week's page: totals, state and the week-level anomalies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekSummary {
    pub week: BillingWeek,
    pub currency: String,
    pub status: WeekStatus,
    /// The week's first and last day, in the business time zone, for people.
    pub first_day: String,
    pub last_day: String,
    pub time_zone: String,
    /// Whether the week has ended (only an ended week can be approved).
    pub ended: bool,
    pub totals: WeekTotals,
    pub payouts: u64,
    pub late_lines: u64,
    /// Invoices with at least one anomaly.
    pub flagged: u64,
    /// Invoices whose passenger has no customer or card at the provider (read when shown): the
    /// run would end them uncollectible with `no_payment_method`. Zero with test provisioning.
    #[serde(default)]
    pub no_payment_method: u64,
    /// Payouts whose driver has no connected account: they would wait for one.
    #[serde(default)]
    pub no_payout_account: u64,
    /// The first of those passengers and drivers, by id.
    #[serde(default)]
    pub unpayable: Vec<String>,
    #[serde(default)]
    pub unpaid_drivers: Vec<String>,
    /// The hash of every invoice and payout: an approval names the one it approves.
    pub content_hash: String,
    /// The fee policy version the week is priced with (0: the built-in policy); a frozen week
    /// keeps the one it was approved with.
    #[serde(default)]
    pub fee_policy_version: i64,
    /// When the draft was computed and when it was approved, in the business time zone.
    pub computed_at: DateTime<chrono::FixedOffset>,
    pub approved_at: Option<DateTime<chrono::FixedOffset>>,
    pub approved_by: Option<String>,
    pub anomalies: Vec<Anomaly>,
    pub thresholds: AnomalyThresholds,
    /// The week after, when it has started.
    pub next: Option<BillingWeek>,
    /// The week's run, once one was started.
    pub run_id: Option<i64>,
    /// The week's waivers, oldest first (each passenger's also on their invoice).
    #[serde(default)]
    pub waivers: Vec<super::waiver::WaiverView>,
}

/// Which invoices to list: a prefix of the user's id or name, after a user id (keyset paging).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceQuery {
    pub week: String,
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub flagged_only: bool,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The most rows a page of invoices or payouts holds.
pub const MAX_PAGE: u32 = 200;
/// Rows per page when the query does not say.
pub const DEFAULT_PAGE: u32 = 50;

/// One invoice in the week's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub id: i64,
    pub user_id: String,
    pub user_name: String,
    pub total: Money,
    pub lines: u32,
    pub late_lines: u32,
    pub anomalies: Vec<Anomaly>,
    /// Once the week's run has it: `pending`, `charged`, `declined` or `uncollectible`.
    pub charge: Option<String>,
}

/// A page of invoices; `next_after` continues it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePage {
    pub rows: Vec<InvoiceRow>,
    pub next_after: Option<String>,
}

/// A line as the invoice view shows it, with the ride it bills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLineView {
    pub ride_id: String,
    pub driver_id: String,
    pub amount: Money,
    pub attendance: Attendance,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// `ended_at` in the business time zone, for people.
    pub ended_local: String,
    pub distance_m: i64,
    pub late: bool,
}

/// One invoice with its lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDetail {
    pub id: i64,
    pub week: BillingWeek,
    pub status: WeekStatus,
    pub user_id: String,
    pub user_name: String,
    pub total: Money,
    pub content_hash: String,
    pub lines: Vec<InvoiceLineView>,
    pub anomalies: Vec<Anomaly>,
    /// The waivers of this passenger in this week, oldest first: applied ones are the lines
    /// struck through (not in `lines` nor in `total`), the others are shown with their state.
    /// An invoice waived whole has no stored invoice: `id` 0, no lines, total 0.
    #[serde(default)]
    pub waivers: Vec<super::waiver::WaiverView>,
    /// A fresh request id for the waiver form opened with this invoice.
    #[serde(default)]
    pub waiver_request_id: String,
    /// The business time zone (IANA name) the waivers' moments are written in.
    #[serde(default)]
    pub time_zone: String,
}

/// One driver's payout in the week's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRow {
    pub id: i64,
    pub driver_id: String,
    pub driver_name: String,
    pub gross: Money,
    pub fees: Money,
    pub total: Money,
    pub rides: u32,
    /// Once the week's run has it: `pending`, `paid` or `failed`.
    pub transfer: Option<String>,
}

/// A page of payouts; `next_after` continues it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutPage {
    pub rows: Vec<PayoutRow>,
    pub next_after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_name_the_bad_field() {
        assert!(AnomalyThresholds::default().validate().is_ok());
        let bad = AnomalyThresholds { lookback_weeks: 0, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "lookback_weeks");
        let bad = AnomalyThresholds { invoice_vs_average_pct: 100, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "invoice_vs_average_pct");
    }
}

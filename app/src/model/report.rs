//! Finance's weekly report: every figure from the double-entry ledger, for one billing week or
//! a range of them.

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::refund::RefundReason;

/// What a range of billing weeks came to, from the ledger's transactions attributed to them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFigures {
    /// Invoices frozen (one receivable posting each) and what they came to.
    pub invoices: i64,
    pub invoiced: Money,
    /// Successful charges.
    pub charges: i64,
    pub charged: Money,
    /// Still owed by passengers: declined and not yet charged again.
    pub outstanding: Money,
    /// Given up as uncollectible (written off).
    pub uncollectible_count: i64,
    pub uncollectible: Money,
    /// Of those, invoices whose passenger had no card at the provider (`no_payment_method`).
    #[serde(default)]
    pub no_payment_method_count: i64,
    /// Refunds that succeeded.
    pub refunds: i64,
    pub refunded: Money,
    /// Charged minus refunded.
    pub net: Money,
    /// The platform's revenue of the weeks.
    pub platform_fees: Money,
    /// Transfers made to drivers.
    pub transfers: i64,
    pub driver_payouts: Money,
    /// Still owed to drivers.
    pub payable: Money,
    /// What the provider holds for the platform from these weeks.
    pub provider_clearing: Money,
    /// The provider's own fees, when the provider reports them (the simulator does not).
    pub provider_fees: Option<Money>,
}

/// Refunds of one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonTotal {
    pub reason: RefundReason,
    pub count: i64,
    pub amount: Money,
}

/// One week's bar in the twelve-week chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekBar {
    pub week: String,
    pub charged: Money,
    pub refunded: Money,
}

/// The report of the weeks `from` to `to` (inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub currency: String,
    pub figures: ReportFigures,
    /// The same number of weeks just before, to compare with.
    pub previous_from: String,
    pub previous_to: String,
    pub previous: ReportFigures,
    pub refunds_by_reason: Vec<ReasonTotal>,
    /// The twelve weeks ending with `to`, oldest first.
    pub history: Vec<WeekBar>,
}

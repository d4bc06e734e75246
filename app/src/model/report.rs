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
    /// Disputes whose money the provider withdrew (a card issuer took it back while it decides),
    /// and how much: the `dispute.withdrawal` postings to `disputes`.
    pub disputes: i64,
    pub disputed: Money,
    /// What the provider charged for those disputes (`dispute_fees`), won or lost alike.
    pub dispute_fees: Money,
    /// Disputes won, and the money the provider gave back (reinstated).
    pub disputes_won_count: i64,
    pub disputes_won: Money,
    /// Disputes lost, and the money gone for good (`dispute_losses`).
    pub disputes_lost_count: i64,
    pub disputes_lost: Money,
    /// The weeks' disputes by their status now (`needs_response`, `won`, …), from the disputes
    /// the product recorded, inquiries included; statuses without one are left out.
    pub disputes_by_status: Vec<(String, i64)>,
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

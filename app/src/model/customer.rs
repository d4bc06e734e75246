//! A customer as support sees them: who they are, what they were charged week by week, and
//! every ride, invoice, charge attempt, refund and payout, newest first and paged.

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::refund::RefundView;

/// A user found by a search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHit {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One week of a customer's charges, for the summary strip and the twelve-week chart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekCharges {
    /// `YYYY-Www`.
    pub week: String,
    /// The invoice's total (zero when the customer had none that week).
    pub invoiced: Money,
    /// What was charged (the invoice's total once its charge succeeded).
    pub charged: Money,
    pub refunded: Money,
    /// `pending`, `charged`, `declined`, `uncollectible`, `not run` or `none`.
    pub state: String,
    pub invoice_id: Option<i64>,
}

/// A customer's invoice in their history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInvoice {
    pub id: i64,
    pub week: String,
    pub total: Money,
    pub lines: i64,
    /// The charge's state once the week's run has it.
    pub charge: Option<String>,
    pub refunded: Money,
    /// Whether its week is approved (frozen); a draft's invoice can still change.
    pub approved: bool,
}

/// One call to the provider to charge an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeAttemptView {
    pub invoice_id: i64,
    pub week: String,
    pub attempt: i64,
    pub idempotency_key: String,
    pub amount: Money,
    /// `started`, `succeeded`, `declined`, `failed` or `unknown`.
    pub outcome: String,
    /// The provider's payment intent.
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    pub worker: String,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// How long the call took, when it finished.
    pub millis: Option<i64>,
}

/// A ride the customer took or drove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRide {
    pub ride_id: String,
    /// `passenger` or `driver`.
    pub role: String,
    pub driver_id: String,
    /// When it ended: RFC 3339, in the business time zone ([`ActivityPage::time_zone`]).
    pub ended_at: String,
    pub distance_m: i64,
    /// What the passenger was billed for it, once a preview or an approval billed it.
    pub billed: Option<Money>,
    pub invoice_id: Option<i64>,
}

/// A driver's weekly payout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerPayout {
    pub id: i64,
    pub week: String,
    pub total: Money,
    /// `pending`, `paid` or `failed`, once the week's run has it.
    pub transfer: Option<String>,
}

/// Which list of a customer's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Invoices,
    Attempts,
    Refunds,
    Rides,
    Payouts,
}

impl Section {
    pub const ALL: [Section; 5] =
        [Section::Invoices, Section::Attempts, Section::Refunds, Section::Rides, Section::Payouts];

    pub fn as_str(self) -> &'static str {
        match self {
            Section::Invoices => "invoices",
            Section::Attempts => "attempts",
            Section::Refunds => "refunds",
            Section::Rides => "rides",
            Section::Payouts => "payouts",
        }
    }

    pub fn parse(value: &str) -> Option<Section> {
        Section::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn title(self) -> &'static str {
        match self {
            Section::Invoices => "Invoices",
            Section::Attempts => "Charge attempts",
            Section::Refunds => "Refunds",
            Section::Rides => "Rides",
            Section::Payouts => "Payouts",
        }
    }
}

/// One page of one list, newest first; `next` continues it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "section", content = "rows", rename_all = "snake_case")]
pub enum ActivityRows {
    Invoices(Vec<CustomerInvoice>),
    Attempts(Vec<ChargeAttemptView>),
    Refunds(Vec<RefundView>),
    Rides(Vec<CustomerRide>),
    Payouts(Vec<CustomerPayout>),
}

/// One page of one of a customer's lists; its moments are in the business time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPage {
    pub rows: ActivityRows,
    /// Pass as `before` for the next (older) page; `None` on the last one.
    pub next: Option<String>,
    /// The business time zone the rows' moments are written in (empty: UTC).
    #[serde(default)]
    pub time_zone: String,
}

/// Who the customer is and their last twelve weeks; the lists come page by page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: String,
    /// RFC 3339.
    pub created_at: String,
    pub is_driver: bool,
    pub currency: String,
    /// The last twelve weeks, oldest first, ending with the last complete week.
    pub weeks: Vec<WeekCharges>,
    pub charged_total: Money,
    pub refunded_total: Money,
    /// Refunds waiting for approval or for the provider.
    pub open_refunds: i64,
    /// The customer at the payment provider (`cus_…`), as the carpool app sent it.
    #[serde(default)]
    pub provider_customer_id: Option<String>,
    /// The saved card the rider is charged on (`pm_…`).
    #[serde(default)]
    pub provider_payment_method_id: Option<String>,
    /// The driver's connected account payouts go to (`acct_…`).
    #[serde(default)]
    pub provider_account_id: Option<String>,
    /// Card issuers' disputes of the customer's charges, newest first (at most 100).
    #[serde(default)]
    pub disputes: Vec<super::dispute::DisputeView>,
    /// The business time zone (IANA name) the disputes' moments are written in.
    #[serde(default)]
    pub time_zone: String,
}

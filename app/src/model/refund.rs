//! Refunds: why, in what state, within which limits, and the invoice page that shows them.

use serde::{Deserialize, Serialize};

use super::audit::AuditEntry;
use super::customer::ChargeAttemptView;
use super::money::{BillingCurrency, Money};
use super::preview::InvoiceLineView;

/// Why money goes back (the contract's list).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    ServiceIssue,
    Other,
}

impl RefundReason {
    pub const ALL: [RefundReason; 5] = [
        RefundReason::Duplicate,
        RefundReason::Fraudulent,
        RefundReason::RequestedByCustomer,
        RefundReason::ServiceIssue,
        RefundReason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
            RefundReason::ServiceIssue => "service_issue",
            RefundReason::Other => "other",
        }
    }

    /// Parses a reason; the error lists the ones that exist.
    pub fn parse(value: &str) -> Result<RefundReason, String> {
        RefundReason::ALL.into_iter().find(|r| r.as_str() == value.trim()).ok_or_else(|| {
            format!(
                "{value:?} is not a reason: use one of duplicate, fraudulent, requested_by_customer, service_issue, other"
            )
        })
    }

    /// For people.
    pub fn label(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "Charged twice",
            RefundReason::Fraudulent => "Fraudulent",
            RefundReason::RequestedByCustomer => "Requested by the customer",
            RefundReason::ServiceIssue => "Service issue",
            RefundReason::Other => "Other (say what in the note)",
        }
    }

    /// The reason Stripe knows, where it has one.
    pub fn provider_reason(self) -> Option<&'static str> {
        match self {
            RefundReason::Duplicate => Some("duplicate"),
            RefundReason::Fraudulent => Some("fraudulent"),
            RefundReason::RequestedByCustomer => Some("requested_by_customer"),
            RefundReason::ServiceIssue | RefundReason::Other => None,
        }
    }
}

/// Where a refund stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Above the requester's limits: waits for a finance or admin approval.
    AwaitingApproval,
    /// Approved; the provider has not confirmed it yet (it is being asked, with the same key).
    Pending,
    /// The provider gave the money back.
    Succeeded,
    /// The provider refused it; shown, and asked again with the same key.
    Failed,
    /// Turned down by an approver; nothing moved.
    Rejected,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::AwaitingApproval => "awaiting_approval",
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed",
            RefundState::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<RefundState> {
        [
            RefundState::AwaitingApproval,
            RefundState::Pending,
            RefundState::Succeeded,
            RefundState::Failed,
            RefundState::Rejected,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// For people (the customer-facing words: pending, succeeded, failed).
    pub fn label(self) -> &'static str {
        match self {
            RefundState::AwaitingApproval => "awaiting approval",
            RefundState::Pending => "pending",
            RefundState::Succeeded => "succeeded",
            RefundState::Failed => "failed · retrying",
            RefundState::Rejected => "rejected",
        }
    }

    /// Whether it may still change by itself (the pages refresh while one does).
    pub fn open(self) -> bool {
        matches!(self, RefundState::AwaitingApproval | RefundState::Pending | RefundState::Failed)
    }
}

/// A refund as the pages and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    pub id: i64,
    pub request_id: String,
    pub invoice_id: i64,
    pub user_id: String,
    pub week: String,
    /// `customer`, or `repair`: giving back a charge the ledger does not explain (found by
    /// reconciliation), which is not part of what the invoice charged.
    pub kind: String,
    pub amount: Money,
    pub reason: RefundReason,
    pub note: String,
    /// The ride ids of the lines refunded, when chosen by line.
    pub lines: Vec<String>,
    pub state: RefundState,
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision_note: Option<String>,
    /// The key every provider call for this refund carries.
    pub idempotency_key: String,
    pub attempts: i64,
    /// The provider's refund id once it answered.
    pub provider_id: Option<String>,
    /// The last problem, if any.
    pub detail: Option<String>,
}

/// One call to the provider for a refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAttemptView {
    pub refund_id: i64,
    pub attempt: i64,
    pub outcome: String,
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// A refund request from the form or the API. `amount` in major units; empty with `lines`
/// chosen means the sum of those lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    #[serde(default)]
    pub amount: Option<String>,
    pub reason: String,
    /// Made when the form opens; the same id twice is one refund.
    pub request_id: String,
    #[serde(default)]
    pub note: Option<String>,
    /// Ride ids of the invoice's lines to refund.
    #[serde(default)]
    pub lines: Vec<String>,
    /// When given, the invoice must be this user's.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// What a refund request came to: made now (201), waiting for approval (202), or the refund
/// this request id made before (200).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAnswer {
    /// `created`, `awaiting_approval` or `existing`.
    pub outcome: String,
    pub refund: RefundView,
}

impl RefundAnswer {
    /// The HTTP status the contract gives the outcome.
    pub fn status(&self) -> u16 {
        match self.outcome.as_str() {
            "created" => 201,
            "awaiting_approval" => 202,
            _ => 200,
        }
    }
}

/// How much support may refund without a second person; stored as the `refund_limits`
/// setting, in major units of the billing currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLimits {
    /// The largest single refund support makes alone.
    pub support_per_refund: String,
    /// The most support refunds alone per day (the business time zone's calendar day).
    pub support_per_day: String,
}

impl RefundLimits {
    pub const KEY: &'static str = "refund_limits";

    /// 50 and 200 units of `currency`.
    pub fn default_for(currency: BillingCurrency) -> RefundLimits {
        let units = |n: i64| Money::from_minor(n * 10i64.pow(currency.exponent()), currency).to_string();
        RefundLimits { support_per_refund: units(50), support_per_day: units(200) }
    }

    /// Both limits in minor units, or the field that is wrong and why.
    pub fn parse(&self, currency: BillingCurrency) -> Result<(i64, i64), (&'static str, String)> {
        let one = |field: &'static str, value: &str| {
            let money = Money::parse(value, currency).map_err(|e| (field, e.to_string()))?;
            if money.minor() < 0 {
                return Err((field, "must not be negative".to_owned()));
            }
            Ok(money.minor())
        };
        Ok((
            one("support_per_refund", &self.support_per_refund)?,
            one("support_per_day", &self.support_per_day)?,
        ))
    }
}

/// A ledger transaction touching an invoice (its charge, its refunds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntryView {
    pub transaction_id: i64,
    pub kind: String,
    pub reference: String,
    pub created_at: String,
    /// (account, signed amount: debits positive).
    pub postings: Vec<(String, Money)>,
}

/// Everything about one invoice, on one page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRecord {
    pub id: i64,
    pub week: String,
    pub user_id: String,
    pub user_name: String,
    pub user_email: Option<String>,
    pub total: Money,
    /// The charge's state once the week's run has it.
    pub charge: Option<String>,
    pub charged: Money,
    pub refunded: Money,
    /// Charged minus refunds made, under way or waiting for approval.
    pub refundable: Money,
    pub lines: Vec<InvoiceLineView>,
    pub attempts: Vec<ChargeAttemptView>,
    pub refunds: Vec<RefundView>,
    pub refund_attempts: Vec<RefundAttemptView>,
    pub ledger: Vec<LedgerEntryView>,
    pub audit: Vec<AuditEntry>,
    /// A fresh request id for the refund form opened with this page.
    pub new_request_id: String,
    /// What the caller may refund alone in one refund, when limited (support).
    pub caller_limit: Option<Money>,
    /// What the caller may refund alone in a day (the business zone's), when limited.
    pub caller_daily_limit: Option<Money>,
    /// What is left of that today.
    pub caller_daily_left: Option<Money>,
    /// The business time zone (IANA name) the page writes its moments in.
    pub time_zone: String,
    /// Card issuers' disputes of the invoice's charge, newest first.
    #[serde(default)]
    pub disputes: Vec<super::dispute::DisputeView>,
}

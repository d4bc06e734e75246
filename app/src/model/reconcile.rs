//! Reconciliation: the provider's records of a week matched one to one with the ledger.

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::refund::RefundState;

/// How an item of the provider or of the ledger came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchClass {
    Matched,
    /// At the provider, not in the ledger (a duplicate charge, say).
    ProviderOnly,
    /// In the ledger, not at the provider.
    LedgerOnly,
    /// On both sides with different amounts.
    AmountMismatch,
}

impl MatchClass {
    pub fn label(self) -> &'static str {
        match self {
            MatchClass::Matched => "matched",
            MatchClass::ProviderOnly => "at the provider, not in the ledger",
            MatchClass::LedgerOnly => "in the ledger, not at the provider",
            MatchClass::AmountMismatch => "amounts differ",
        }
    }
}

/// One item that did not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconItem {
    pub class: MatchClass,
    /// `charge`, `refund`, `transfer` or `dispute`.
    pub kind: String,
    /// The provider's id (payment intent, refund, transfer or dispute).
    pub provider_id: String,
    pub provider_amount: Option<Money>,
    pub ledger_amount: Option<Money>,
    /// The passenger or driver.
    pub user_id: Option<String>,
    pub invoice_id: Option<i64>,
    pub payout_id: Option<i64>,
    /// The idempotency key of the product's attempt, when the ledger side has one.
    pub attempt_key: Option<String>,
    /// What differs and what to do, when the class does not say it all (a dispute's status, or
    /// that a dispute is answered on /disputes rather than repaired). Absent on other items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A charge at the provider that the ledger does not explain, and its repair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayCharge {
    pub payment_intent: String,
    pub charge_id: String,
    pub invoice_id: Option<i64>,
    pub user_id: Option<String>,
    pub amount: Money,
    /// The repair refund, once approved.
    pub refund_id: Option<i64>,
    pub refund_state: Option<RefundState>,
    pub repaired_by: Option<String>,
    /// Its invoice has an attempt whose outcome is not known yet: not repaired until it is
    /// ("waiting for an outcome").
    #[serde(default)]
    pub undecided: bool,
}

impl StrayCharge {
    /// Proposed for repair: not repaired yet, filed under an invoice, and no attempt of that
    /// invoice waiting for its outcome.
    pub fn repairable(&self) -> bool {
        self.refund_id.is_none() && self.invoice_id.is_some() && !self.undecided
    }
}

/// One reconciliation of a week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub id: i64,
    pub week: String,
    /// RFC 3339.
    pub ran_at: String,
    pub ran_by: String,
    pub matched: i64,
    pub unmatched: i64,
    pub items: Vec<ReconItem>,
    /// The week's stray charges: the repair proposed (not repaired yet) and those repaired.
    pub stray: Vec<StrayCharge>,
    pub acknowledged_by: Option<String>,
}

/// A reconciliation with mismatches nobody acknowledged yet, for the banner on every page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenMismatch {
    pub id: i64,
    pub week: String,
    pub unmatched: i64,
}

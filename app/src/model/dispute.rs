//! Disputes: a card issuer taking a charge back on its cardholder's word (a chargeback), as the
//! provider reports it, and what finance does about it.

use serde::{Deserialize, Serialize};

use super::money::Money;

/// Where a dispute stands, as the provider names it. Statuses only move forward: a `warning_*`
/// (an inquiry, no money taken yet) or `needs_response`, then `under_review` once evidence is
/// in, then `won`, `lost` or `warning_closed`.
pub const STATUSES: [&str; 7] = [
    "needs_response",
    "under_review",
    "warning_needs_response",
    "warning_under_review",
    "won",
    "lost",
    "warning_closed",
];

/// The order a status comes in: a later event never moves a dispute back.
pub fn status_rank(status: &str) -> u8 {
    match status {
        "warning_needs_response" | "needs_response" => 0,
        "warning_under_review" | "under_review" => 1,
        _ => 2,
    }
}

/// Whether a dispute in `status` is still open (the issuer has not decided).
pub fn is_open(status: &str) -> bool {
    status_rank(status) < 2
}

/// Whether the issuer still waits for evidence.
pub fn needs_response(status: &str) -> bool {
    status_rank(status) == 0
}

/// One dispute, for the invoice and customer pages and the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeView {
    pub id: i64,
    /// The provider's id (`dp_…`).
    pub provider_id: String,
    pub invoice_id: i64,
    pub week: String,
    pub user_id: String,
    /// The provider's charge (`ch_…`).
    pub charge_id: String,
    pub amount: Money,
    /// What the provider charged for the dispute (zero until it is known).
    pub fee: Money,
    /// The issuer's reason, as the provider names it (`duplicate`, `fraudulent`, …).
    pub reason: String,
    pub status: String,
    /// When the evidence is due (RFC 3339); none for an inquiry without a deadline.
    pub evidence_due_at: Option<String>,
    pub evidence_sent_at: Option<String>,
    pub evidence_by: Option<String>,
    pub evidence_note: Option<String>,
    pub opened_at: String,
    pub closed_at: Option<String>,
}

impl DisputeView {
    pub fn is_open(&self) -> bool {
        is_open(&self.status)
    }

    /// Whether evidence can be sent from the product: the issuer waits for it, and none was sent.
    pub fn can_send_evidence(&self) -> bool {
        needs_response(&self.status) && self.evidence_sent_at.is_none()
    }
}

/// The finance queue: disputes by due date (the soonest first, those without a date last).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputesPage {
    pub disputes: Vec<DisputeView>,
    /// How many disputes there are in each status (all of them, whatever the filter).
    pub counts: Vec<(String, i64)>,
    /// The status the list is filtered to, if any.
    pub status: Option<String>,
    /// The business time zone (IANA name) the moments are written in.
    #[serde(default)]
    pub time_zone: String,
}

/// Evidence to send for a dispute: what the product knows is gathered on the server; the note
/// is finance's own words.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequest {
    #[serde(default)]
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_only_move_forward_and_close() {
        assert!(status_rank("needs_response") < status_rank("under_review"));
        assert!(status_rank("under_review") < status_rank("won"));
        assert_eq!(status_rank("won"), status_rank("lost"));
        assert!(is_open("warning_under_review") && !is_open("lost") && !is_open("warning_closed"));
        assert!(needs_response("needs_response") && !needs_response("under_review"));
    }
}

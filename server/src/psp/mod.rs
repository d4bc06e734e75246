//! The payment provider: the interface the run sees (charge off-session, transfer, refund; each
//! mutating call with an idempotency key) and one implementation that speaks Stripe's HTTP API
//! ([`stripe::StripeClient`]). The client talks to Stripe, to `billing psp-sim`, or to the
//! simulator running inside the process: the `psp-sim` crate, a Stripe-shaped simulator that
//! keeps its own ledger, in builds with the `simulator` feature.

pub mod lookup;
pub mod pace;
pub mod stripe;

/// The webhook signature: the `psp-signature` crate, which the simulator signs with.
pub use psp_signature as signature;

use std::collections::BTreeMap;

/// What a charge call came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money moved: the payment intent and charge ids, and the amount the provider says it
    /// took (minor units), which the run checks against the invoice.
    Succeeded { intent: String, charge: String, amount_minor: i64 },
    /// The card was declined: final for this attempt.
    Declined { code: String, decline_code: Option<String>, message: String },
}

/// A call that did not come to a known result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer, or one that cannot be read: the money may or may not have moved. Resolved by
    /// asking again with the same idempotency key.
    #[error("unknown outcome: {0}")]
    Unknown(String),
    /// The provider asks us to slow down (429); nothing was done.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// The provider failed (5xx) before doing anything we can see; try again, same key.
    #[error("provider error: {0}")]
    Server(String),
    /// The request itself is wrong (4xx other than a decline): a bug or bad data, not retried.
    #[error("refused by the provider: {0}")]
    Refused(String),
    /// The platform's available balance cannot cover a transfer (`balance_insufficient`):
    /// nothing was done; it goes through once the funds are available.
    #[error("insufficient available funds: {0}")]
    Unfunded(String),
}

impl ProviderError {
    /// Whether asking again with the same key may help.
    pub fn retryable(&self) -> bool {
        !matches!(self, ProviderError::Refused(_))
    }
}

/// The longest object id accepted from outside (Stripe's ids are at most 255 characters).
pub const MAX_OBJECT_ID: usize = 255;

/// Checks an object id the carpool app made at the provider (`cus_…`, `pm_…`, `acct_…`): the
/// prefix, at most [`MAX_OBJECT_ID`] characters, and nothing but ASCII letters, digits and `_`
/// (what Stripe's ids are made of). The trimmed id, or why it is refused.
pub fn parse_object_id(raw: &str, prefix: &str) -> Result<String, String> {
    let id = raw.trim();
    if !id.starts_with(prefix) || id.len() == prefix.len() {
        return Err(format!("must be the provider's id, starting with {prefix}"));
    }
    if id.len() > MAX_OBJECT_ID {
        return Err(format!("at most {MAX_OBJECT_ID} characters"));
    }
    if let Some(bad) = id.chars().find(|c| !c.is_ascii_alphanumeric() && *c != '_') {
        return Err(format!("{bad:?} is not allowed: letters, digits and _ only"));
    }
    Ok(id.to_owned())
}

/// Metadata sent with a call (the contract names the keys).
pub type Metadata = BTreeMap<&'static str, String>;

/// One payment intent to create and confirm off-session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    pub amount_minor: i64,
    /// ISO 4217, any case (sent lowercase).
    pub currency: String,
    pub customer: String,
    pub payment_method: String,
    pub metadata: Metadata,
    pub idempotency_key: String,
}

/// One transfer to a driver's connected account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRequest {
    pub amount_minor: i64,
    pub currency: String,
    pub destination: String,
    /// Ties the transfer to the charges that fund it (the billing week).
    pub transfer_group: Option<String>,
    pub metadata: Metadata,
    pub idempotency_key: String,
}

/// A refund of (part of) a payment intent's charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    pub payment_intent: String,
    pub amount_minor: i64,
    /// One of Stripe's reasons, where ours has one.
    pub reason: Option<&'static str>,
    pub metadata: Metadata,
    pub idempotency_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_checked() {
        assert_eq!(parse_object_id(" cus_Nx12 ", "cus_").unwrap(), "cus_Nx12");
        assert!(parse_object_id("pm_1PqR", "pm_").is_ok());
        for (raw, prefix) in [
            ("cus_", "cus_"),
            ("pm_123", "cus_"),
            ("cus_12 3", "cus_"),
            ("acct_1;DROP", "acct_"),
            ("cus_\u{e9}", "cus_"),
            ("", "pm_"),
        ] {
            assert!(parse_object_id(raw, prefix).is_err(), "{raw:?}");
        }
        assert!(parse_object_id(&format!("cus_{}", "a".repeat(251)), "cus_").is_ok());
        assert!(parse_object_id(&format!("cus_{}", "a".repeat(252)), "cus_").is_err());
    }
}

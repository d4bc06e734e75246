//! The payment provider: the interface the run sees (charge off-session, transfer, refund; each
//! mutating call with an idempotency key), one implementation that speaks Stripe's HTTP API
//! ([`stripe::StripeClient`]), and `billing psp-sim` ([`sim`]), a Stripe-shaped simulator that keeps
//! its own ledger. The client talks to Stripe, to `billing psp-sim`, or to the simulator running
//! inside the process.

pub mod sim;
pub mod stripe;

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
}

impl ProviderError {
    /// Whether asking again with the same key may help.
    pub fn retryable(&self) -> bool {
        !matches!(self, ProviderError::Refused(_))
    }
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

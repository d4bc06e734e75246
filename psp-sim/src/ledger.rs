//! The simulator's record of every money movement, in the order it happened: the ground truth
//! that tests and audits compare the product's books against (`GET /sim/ledger`).
//!
//! Amounts are integer minor units, like the rest of the simulator's Stripe-shaped answers.
//! Declines are recorded too, although no money moved, so a test can tell "never charged"
//! from "charged and declined".
//!
//! Kinds (`kind`), every amount positive:
//! - `charge`, `decline`: a payment attempt; `id` is the charge, with `customer`,
//!   `payment_intent` and the payment's metadata.
//! - `refund`: money given back; `id` is the refund, `charge` the charge it comes from.
//! - `transfer`: money sent to a connected account; `destination` instead of `customer`.
//! - `dispute`: an issuer took the disputed `amount` back from the platform (a chargeback);
//!   `id` is the dispute (`dp_…`), with `charge`, `customer`, `payment_intent` and the charge's
//!   metadata.
//! - `dispute_fee`: the provider's fee for that dispute ([`DISPUTE_FEE_MINOR`], same
//!   references), taken with the withdrawal and kept whatever the outcome.
//! - `dispute_reversal`: a won dispute gives the disputed `amount` back (same references).
//!
//! Entries made by the simulator's test controls (`/sim/disputes`) have no idempotency key.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

use super::form::Metadata;
use super::objects::{Charge, Dispute, Refund, Transfer};

/// The provider's fee for a dispute, in minor units of the dispute's currency: Stripe's US fee
/// of $15.00, taken as 1500 minor units whatever the currency (a simplification: Stripe's fee
/// differs by country and currency).
pub(crate) const DISPUTE_FEE_MINOR: i64 = 1500;

/// One movement (or one declined attempt).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LedgerEntry {
    pub kind: LedgerKind,
    /// The charge id for charges and declines, the refund id, the transfer id, the dispute id.
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `customer` for charges, declines and refunds; `destination` for transfers.
    #[serde(flatten)]
    pub party: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    /// For a refund or a dispute's entries: the charge it concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_group: Option<String>,
    /// The `Idempotency-Key` of the request that made the movement (`null` without one).
    pub idempotency_key: Option<String>,
    #[serde(serialize_with = "rfc3339_millis")]
    pub created_at: DateTime<Utc>,
    pub metadata: Metadata,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LedgerKind {
    Charge,
    Decline,
    Refund,
    Transfer,
    Dispute,
    DisputeFee,
    DisputeReversal,
}

/// Who the money came from or went to.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Party {
    Customer { customer: Option<String> },
    Destination { destination: String },
}

impl LedgerEntry {
    /// A charge attempt: `Charge` when it succeeded, `Decline` when it failed.
    pub fn charge(
        charge: &Charge,
        decline_code: Option<&'static str>,
        key: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind: if decline_code.is_some() { LedgerKind::Decline } else { LedgerKind::Charge },
            id: charge.id.clone(),
            amount: charge.amount,
            currency: charge.currency.clone(),
            party: Party::Customer { customer: charge.customer.clone() },
            payment_intent: Some(charge.payment_intent.clone()),
            charge: None,
            decline_code,
            transfer_group: charge.transfer_group.clone(),
            idempotency_key: key.map(str::to_owned),
            created_at: at,
            metadata: charge.metadata.clone(),
        }
    }

    pub fn refund(refund: &Refund, customer: Option<String>, key: Option<&str>, at: DateTime<Utc>) -> Self {
        Self {
            kind: LedgerKind::Refund,
            id: refund.id.clone(),
            amount: refund.amount,
            currency: refund.currency.clone(),
            party: Party::Customer { customer },
            payment_intent: Some(refund.payment_intent.clone()),
            charge: Some(refund.charge.clone()),
            decline_code: None,
            transfer_group: None,
            idempotency_key: key.map(str::to_owned),
            created_at: at,
            metadata: refund.metadata.clone(),
        }
    }

    pub fn transfer(transfer: &Transfer, key: Option<&str>, at: DateTime<Utc>) -> Self {
        Self {
            kind: LedgerKind::Transfer,
            id: transfer.id.clone(),
            amount: transfer.amount,
            currency: transfer.currency.clone(),
            party: Party::Destination { destination: transfer.destination.clone() },
            payment_intent: None,
            charge: None,
            decline_code: None,
            transfer_group: transfer.transfer_group.clone(),
            idempotency_key: key.map(str::to_owned),
            created_at: at,
            metadata: transfer.metadata.clone(),
        }
    }

    /// One of a dispute's movements (`Dispute`, `DisputeFee` or `DisputeReversal`) of `amount`,
    /// about the charge it disputes (its customer and its metadata).
    pub fn dispute(
        kind: LedgerKind,
        dispute: &Dispute,
        amount: i64,
        charge: &Charge,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind,
            id: dispute.id.clone(),
            amount,
            currency: dispute.currency.clone(),
            party: Party::Customer { customer: charge.customer.clone() },
            payment_intent: Some(dispute.payment_intent.clone()),
            charge: Some(dispute.charge.clone()),
            decline_code: None,
            transfer_group: None,
            idempotency_key: None,
            created_at: at,
            metadata: charge.metadata.clone(),
        }
    }
}

/// RFC 3339 with milliseconds and an explicit offset, as every timestamp the product prints.
fn rfc3339_millis<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, false))
}

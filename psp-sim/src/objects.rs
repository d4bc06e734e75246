//! The objects the simulated provider keeps, serialised exactly in Stripe's shapes (the fields
//! the product reads, plus the ones a Stripe client library expects to find).

use serde::Serialize;

use super::form::Metadata;

/// An object kept in a table: what Stripe calls it in "No such …" messages, and its id.
pub(crate) trait Object: Serialize {
    /// The word Stripe's error messages use for this kind of object.
    const NOUN: &'static str;
    fn id(&self) -> &str;
    /// When it was made, in seconds since 1970 (list filters by it).
    fn created(&self) -> i64;
}

/// A new object id such as `ch_3MmlLrLkdIwHu7ix0snN0B15`: the prefix, then 22 characters of a
/// random UUID in base 62. Ids are unique across runs (not drawn from the fault seed), so two
/// simulator processes never hand out the same id to the product's database.
pub(crate) fn new_id(prefix: &str) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = uuid::Uuid::new_v4().as_u128();
    let mut id = String::with_capacity(prefix.len() + 23);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..22 {
        id.push(char::from(DIGITS[(n % 62) as usize]));
        n /= 62;
    }
    id
}

/// Stripe's test card tokens the simulator knows, and how each behaves when charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestCard {
    Visa,
    Mastercard,
    Amex,
    /// `tok_chargeDeclined`: attaches fine, declines (`generic_decline`) when charged.
    Declined,
    /// `tok_chargeDeclinedInsufficientFunds`: declines with `insufficient_funds`.
    InsufficientFunds,
}

impl TestCard {
    pub fn from_token(token: &str) -> Option<Self> {
        Some(match token {
            "tok_visa" => Self::Visa,
            "tok_mastercard" => Self::Mastercard,
            "tok_amex" => Self::Amex,
            "tok_chargeDeclined" => Self::Declined,
            "tok_chargeDeclinedInsufficientFunds" => Self::InsufficientFunds,
            _ => return None,
        })
    }

    fn details(self) -> Card {
        let (brand, last4) = match self {
            Self::Visa => ("visa", "4242"),
            Self::Mastercard => ("mastercard", "4444"),
            Self::Amex => ("amex", "0005"),
            Self::Declined => ("visa", "0002"),
            Self::InsufficientFunds => ("visa", "9995"),
        };
        Card { brand, last4, exp_month: 12, exp_year: 2034, country: "US", funding: "credit" }
    }

    /// `(decline_code, message)` when this card always declines.
    pub fn decline(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Declined => Some(("generic_decline", "Your card was declined.")),
            Self::InsufficientFunds => Some(("insufficient_funds", "Your card has insufficient funds.")),
            Self::Visa | Self::Mastercard | Self::Amex => None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Customer {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
}

impl Customer {
    pub fn new(
        created: i64,
        email: Option<String>,
        name: Option<String>,
        description: Option<String>,
        metadata: Metadata,
    ) -> Self {
        let id = new_id("cus");
        Self { id, object: "customer", created, email, name, description, metadata, livemode: false }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Card {
    pub brand: &'static str,
    pub last4: &'static str,
    pub exp_month: u8,
    pub exp_year: u16,
    pub country: &'static str,
    pub funding: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PaymentMethod {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub card: Card,
    pub customer: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
    #[serde(skip)]
    pub test_card: TestCard,
}

impl PaymentMethod {
    pub fn new(created: i64, test_card: TestCard, metadata: Metadata) -> Self {
        Self {
            id: new_id("pm"),
            object: "payment_method",
            created,
            kind: "card",
            card: test_card.details(),
            customer: None,
            metadata,
            livemode: false,
            test_card,
        }
    }
}

/// A connected account: where a driver's payouts are transferred to.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Account {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub email: Option<String>,
    pub country: String,
    pub capabilities: Metadata,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub metadata: Metadata,
    pub livemode: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub amount: i64,
    pub amount_received: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub payment_method_types: [&'static str; 1],
    pub capture_method: &'static str,
    pub confirmation_method: &'static str,
    pub status: &'static str,
    pub latest_charge: Option<String>,
    pub last_payment_error: Option<serde_json::Value>,
    pub description: Option<String>,
    pub transfer_group: Option<String>,
    pub client_secret: String,
    pub metadata: Metadata,
    pub livemode: bool,
}

/// Why a charge ended as it did, as Stripe's `outcome` reports it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Outcome {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub network_status: &'static str,
    pub reason: Option<&'static str>,
    pub seller_message: &'static str,
}

impl Outcome {
    pub fn authorized() -> Self {
        Self {
            kind: "authorized",
            network_status: "approved_by_network",
            reason: None,
            seller_message: "Payment complete.",
        }
    }

    pub fn declined(decline_code: &'static str) -> Self {
        Self {
            kind: "issuer_declined",
            network_status: "declined_by_network",
            reason: Some(decline_code),
            seller_message: "The bank did not return any further details with this decline.",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Charge {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub amount: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_intent: String,
    pub payment_method: String,
    /// `succeeded` or `failed`: Stripe lists declined charges too.
    pub status: &'static str,
    pub paid: bool,
    pub captured: bool,
    pub refunded: bool,
    /// Whether a dispute was ever opened on this charge (it stays `true` once closed).
    pub disputed: bool,
    pub failure_code: Option<&'static str>,
    pub failure_message: Option<&'static str>,
    pub outcome: Outcome,
    pub description: Option<String>,
    pub transfer_group: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Refund {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: String,
    pub reason: Option<String>,
    pub status: &'static str,
    pub metadata: Metadata,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Transfer {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub amount: i64,
    pub amount_reversed: i64,
    pub currency: String,
    pub destination: String,
    pub description: Option<String>,
    pub transfer_group: Option<String>,
    pub reversed: bool,
    pub metadata: Metadata,
    pub livemode: bool,
}

/// A card issuer's dispute (chargeback) of a charge, as Stripe's `dispute` object.
///
/// `metadata` starts as a copy of the charge's (which is its payment intent's), so the product
/// can find the invoice by `metadata[invoice_id]`. Real Stripe does not copy it: a dispute
/// starts with empty metadata, and a product must also match disputes by `payment_intent` or
/// `charge`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Dispute {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    /// Minor units disputed (and withdrawn from the platform's balance).
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: String,
    /// One of Stripe's dispute reasons, such as `fraudulent` or `product_not_received`.
    pub reason: &'static str,
    /// `needs_response`, then `under_review` once evidence is submitted, then `won` or `lost`.
    pub status: &'static str,
    /// Every evidence field Stripe has, `null` until given (the simulator takes text fields only).
    pub evidence: std::collections::BTreeMap<&'static str, Option<String>>,
    pub evidence_details: EvidenceDetails,
    pub is_charge_refundable: bool,
    /// The withdrawal, and on a win the reinstatement.
    pub balance_transactions: Vec<BalanceTransaction>,
    pub metadata: Metadata,
    pub livemode: bool,
}

/// Where a dispute's evidence stands.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct EvidenceDetails {
    /// The last moment to submit evidence, in unix seconds of the simulator's clock.
    pub due_by: i64,
    /// Whether any evidence is staged or submitted.
    pub has_evidence: bool,
    /// Whether the last submission came after `due_by` (never: the simulator refuses those).
    pub past_due: bool,
    pub submission_count: u32,
}

/// A movement of the platform's balance, as Stripe attaches them to a dispute.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BalanceTransaction {
    pub id: String,
    pub object: &'static str,
    pub created: i64,
    pub available_on: i64,
    /// Minor units: negative for the withdrawal, positive for the reinstatement.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    /// Minor units the provider keeps (the dispute fee on the withdrawal).
    pub fee: i64,
    pub fee_details: Vec<FeeDetail>,
    /// `amount - fee`.
    pub net: i64,
    /// `dispute` or `dispute_reversal`.
    pub reporting_category: &'static str,
    /// The dispute's id.
    pub source: String,
    pub status: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One fee inside a balance transaction's `fee`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FeeDetail {
    pub amount: i64,
    pub currency: String,
    pub description: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

macro_rules! object {
    ($type:ty, $noun:literal) => {
        impl Object for $type {
            const NOUN: &'static str = $noun;
            fn id(&self) -> &str {
                &self.id
            }
            fn created(&self) -> i64 {
                self.created
            }
        }
    };
}

object!(Customer, "customer");
object!(PaymentMethod, "PaymentMethod");
object!(Account, "account");
object!(PaymentIntent, "payment_intent");
object!(Charge, "charge");
object!(Refund, "refund");
object!(Transfer, "transfer");
object!(Dispute, "dispute");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_stripes_and_do_not_repeat() {
        let a = new_id("ch");
        let b = new_id("ch");
        assert!(a.starts_with("ch_") && a.len() == 25, "{a}");
        assert!(a[3..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}

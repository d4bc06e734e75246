//! What each POST asks for, parsed once from its form parameters into a typed request.
//!
//! Everything that can be judged from the parameters alone is judged here, before the
//! simulator reserves an idempotency key or draws a fault: such a refusal is a validation
//! failure, which Stripe does not save, so a corrected retry with the same key runs normally.

use super::disputes::DisputeUpdate;
use super::error::StripeError;
use super::form::{Metadata, Params};
use super::objects::TestCard;

/// The largest amount Stripe accepts in one payment, refund or transfer (eight digits).
pub(crate) const MAX_AMOUNT: i64 = 99_999_999;

/// Which endpoint a POST reached (with the object id from its path, when it has one).
#[derive(Clone, Debug)]
pub(crate) enum Endpoint {
    Customers,
    PaymentMethods,
    AttachPaymentMethod(String),
    Accounts,
    PaymentIntents,
    Refunds,
    Transfers,
    /// `POST /v1/disputes/:id`: evidence and metadata.
    UpdateDispute(String),
}

/// A parsed, well-formed POST; the references it makes (customers, cards, charges) are checked
/// against the store when it executes.
#[derive(Clone, Debug)]
pub(crate) enum Mutation {
    CreateCustomer(NewCustomer),
    CreatePaymentMethod(NewPaymentMethod),
    AttachPaymentMethod { id: String, customer: String },
    CreateAccount(NewAccount),
    CreatePaymentIntent(NewPaymentIntent),
    CreateRefund(NewRefund),
    CreateTransfer(NewTransfer),
    UpdateDispute(DisputeUpdate),
}

#[derive(Clone, Debug)]
pub(crate) struct NewCustomer {
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub metadata: Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct NewPaymentMethod {
    pub card: TestCard,
    pub metadata: Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct NewAccount {
    pub kind: String,
    pub email: Option<String>,
    pub country: String,
    /// Capabilities asked for (`capabilities[transfers][requested]=true`); granted at once.
    pub capabilities: Vec<String>,
    pub metadata: Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct NewPaymentIntent {
    pub amount: i64,
    pub currency: String,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    pub confirm: bool,
    pub off_session: bool,
    pub description: Option<String>,
    pub transfer_group: Option<String>,
    pub metadata: Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct NewRefund {
    pub payment_intent: Option<String>,
    pub charge: Option<String>,
    /// `None` refunds whatever of the charge is not refunded yet.
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: Metadata,
}

#[derive(Clone, Debug)]
pub(crate) struct NewTransfer {
    pub amount: i64,
    pub currency: String,
    pub destination: String,
    pub description: Option<String>,
    pub transfer_group: Option<String>,
    pub metadata: Metadata,
}

impl Mutation {
    /// Reads the request an endpoint was sent, refusing unknown or malformed parameters.
    pub fn parse(endpoint: Endpoint, p: &Params) -> Result<Self, StripeError> {
        Ok(match endpoint {
            Endpoint::Customers => {
                p.only(&["email", "name", "description", "metadata"])?;
                Self::CreateCustomer(NewCustomer {
                    email: p.optional("email")?,
                    name: p.optional("name")?,
                    description: p.optional("description")?,
                    metadata: p.metadata()?,
                })
            }
            Endpoint::PaymentMethods => {
                p.only(&["type", "card", "metadata"])?;
                Self::CreatePaymentMethod(NewPaymentMethod { card: card(p)?, metadata: p.metadata()? })
            }
            Endpoint::AttachPaymentMethod(id) => {
                p.only(&["customer"])?;
                Self::AttachPaymentMethod { id, customer: p.required("customer")?.to_owned() }
            }
            Endpoint::Accounts => Self::CreateAccount(account(p)?),
            Endpoint::PaymentIntents => Self::CreatePaymentIntent(payment_intent(p)?),
            Endpoint::Refunds => Self::CreateRefund(refund(p)?),
            Endpoint::UpdateDispute(id) => Self::UpdateDispute(DisputeUpdate::parse(id, p)?),
            Endpoint::Transfers => {
                p.only(&["amount", "currency", "destination", "description", "transfer_group", "metadata"])?;
                Self::CreateTransfer(NewTransfer {
                    amount: amount(p, "amount")?.ok_or_else(|| StripeError::missing("amount"))?,
                    currency: currency(p)?,
                    destination: p.required("destination")?.to_owned(),
                    description: p.optional("description")?,
                    transfer_group: p.optional("transfer_group")?,
                    metadata: p.metadata()?,
                })
            }
        })
    }
}

/// `type=card` with `card[token]=tok_…`: only Stripe's test tokens, never card numbers.
fn card(p: &Params) -> Result<TestCard, StripeError> {
    match p.required("type")? {
        "card" => {}
        other => {
            return Err(StripeError::invalid_param(
                "type",
                format!("Invalid type: {other}. This simulator makes only card payment methods."),
            ))
        }
    }
    let mut token = None;
    for (path, value) in p.under("card")? {
        match path {
            [field] if field == "token" => token = Some(value),
            _ => {
                return Err(StripeError::invalid_param(
                    format!("card[{}]", path.join("][")),
                    "Send a test card token (card[token]=tok_visa or tok_chargeDeclined), not card details.",
                ))
            }
        }
    }
    let token = token.filter(|t| !t.is_empty()).ok_or_else(|| StripeError::missing("card[token]"))?;
    TestCard::from_token(token).ok_or_else(|| StripeError::no_such("token", token, "card[token]"))
}

fn account(p: &Params) -> Result<NewAccount, StripeError> {
    p.only(&["type", "email", "country", "capabilities", "metadata"])?;
    let kind = p.required("type")?;
    if !["express", "custom", "standard"].contains(&kind) {
        return Err(StripeError::invalid_param(
            "type",
            format!("Invalid type: {kind}; must be one of express, custom or standard"),
        ));
    }
    let mut capabilities = Vec::new();
    for (path, value) in p.under("capabilities")? {
        let [capability, field] = path else {
            return Err(StripeError::invalid_param(
                "capabilities",
                "Invalid hash: use capabilities[NAME][requested]=true",
            ));
        };
        let param = format!("capabilities[{capability}][{field}]");
        match (field.as_str(), value) {
            ("requested", "true") => capabilities.push(capability.clone()),
            ("requested", "false") => {}
            _ => return Err(StripeError::invalid_param(param, format!("Invalid value: {value}"))),
        }
    }
    let country = p.optional("country")?.unwrap_or_else(|| "US".to_owned());
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(StripeError::invalid_param("country", format!("Invalid country: {country}")));
    }
    Ok(NewAccount {
        kind: kind.to_owned(),
        email: p.optional("email")?,
        country,
        capabilities,
        metadata: p.metadata()?,
    })
}

fn payment_intent(p: &Params) -> Result<NewPaymentIntent, StripeError> {
    p.only(&[
        "amount",
        "currency",
        "customer",
        "payment_method",
        "confirm",
        "off_session",
        "description",
        "transfer_group",
        "metadata",
    ])?;
    let confirm = p.boolean("confirm")?.unwrap_or(false);
    let off_session = p.boolean("off_session")?.unwrap_or(false);
    if off_session && !confirm {
        return Err(StripeError::invalid_param(
            "off_session",
            "You can only pass off_session when confirm=true.",
        ));
    }
    let payment_method = p.optional("payment_method")?;
    if confirm && payment_method.is_none() {
        return Err(StripeError::invalid_param(
            "payment_method",
            "You cannot confirm this PaymentIntent because it's missing a payment method.",
        ));
    }
    Ok(NewPaymentIntent {
        amount: amount(p, "amount")?.ok_or_else(|| StripeError::missing("amount"))?,
        currency: currency(p)?,
        customer: p.optional("customer")?,
        payment_method,
        confirm,
        off_session,
        description: p.optional("description")?,
        transfer_group: p.optional("transfer_group")?,
        metadata: p.metadata()?,
    })
}

fn refund(p: &Params) -> Result<NewRefund, StripeError> {
    p.only(&["payment_intent", "charge", "amount", "reason", "metadata"])?;
    let payment_intent = p.optional("payment_intent")?;
    let charge = p.optional("charge")?;
    if payment_intent.is_none() && charge.is_none() {
        return Err(StripeError::invalid(
            "One of the following params should be provided for this request: payment_intent or charge.",
        ));
    }
    let reason = p.optional("reason")?;
    if let Some(reason) = &reason {
        if !["duplicate", "fraudulent", "requested_by_customer"].contains(&reason.as_str()) {
            return Err(StripeError::invalid_param(
                "reason",
                format!(
                    "Invalid reason: {reason}; must be one of duplicate, fraudulent or requested_by_customer"
                ),
            ));
        }
    }
    Ok(NewRefund { payment_intent, charge, amount: amount(p, "amount")?, reason, metadata: p.metadata()? })
}

/// An amount in minor units: a positive integer of at most eight digits.
fn amount(p: &Params, name: &str) -> Result<Option<i64>, StripeError> {
    let Some(amount) = p.integer(name)? else { return Ok(None) };
    if amount < 1 {
        return Err(StripeError::invalid_param(name, "This value must be greater than or equal to 1.")
            .with_code("parameter_invalid_integer"));
    }
    if amount > MAX_AMOUNT {
        return Err(StripeError::invalid_param(name, format!("Amount must be no more than {MAX_AMOUNT}"))
            .with_code("amount_too_large"));
    }
    Ok(Some(amount))
}

/// A three-letter ISO currency code, answered in lowercase as Stripe does.
fn currency(p: &Params) -> Result<String, StripeError> {
    let raw = p.required("currency")?;
    if raw.len() != 3 || !raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(StripeError::invalid_param("currency", format!("Invalid currency: {raw}")));
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(endpoint: Endpoint, body: &str) -> Result<Mutation, StripeError> {
        Mutation::parse(endpoint, &Params::parse(body.as_bytes())?)
    }

    #[test]
    fn a_payment_intent_needs_a_positive_amount_and_a_currency() {
        for (body, param) in [
            ("currency=usd", "amount"),
            ("amount=0&currency=usd", "amount"),
            ("amount=-5&currency=usd", "amount"),
            ("amount=1.5&currency=usd", "amount"),
            ("amount=100000000&currency=usd", "amount"),
            ("amount=100", "currency"),
            ("amount=100&currency=dollars", "currency"),
            ("amount=100&currency=usd&confirm=true", "payment_method"),
            ("amount=100&currency=usd&off_session=true&payment_method=pm_1", "off_session"),
            ("amount=100&currency=usd&colour=red", "colour"),
        ] {
            let error = parse(Endpoint::PaymentIntents, body).expect_err(body);
            assert_eq!(error.param.as_deref(), Some(param), "{body}: {}", error.message);
        }
        let Ok(Mutation::CreatePaymentIntent(pi)) = parse(
            Endpoint::PaymentIntents,
            "amount=1230&currency=USD&confirm=true&off_session=true&payment_method=pm_1&metadata[week]=2026-W48",
        ) else {
            panic!("a valid payment intent")
        };
        assert_eq!((pi.amount, pi.currency.as_str(), pi.confirm, pi.off_session), (1230, "usd", true, true));
        assert_eq!(pi.metadata["week"], "2026-W48");
    }

    #[test]
    fn payment_methods_take_test_tokens_only() {
        assert!(parse(Endpoint::PaymentMethods, "type=card&card[token]=tok_visa").is_ok());
        let error =
            parse(Endpoint::PaymentMethods, "type=card&card[number]=4242424242424242").expect_err("raw card");
        assert_eq!(error.param.as_deref(), Some("card[number]"));
        let error =
            parse(Endpoint::PaymentMethods, "type=card&card[token]=tok_nope").expect_err("unknown token");
        assert_eq!(error.code, Some("resource_missing"));
    }

    #[test]
    fn a_refund_names_what_it_refunds() {
        assert!(parse(Endpoint::Refunds, "amount=100").is_err());
        assert!(parse(Endpoint::Refunds, "charge=ch_1&reason=because").is_err());
        assert!(parse(Endpoint::Refunds, "payment_intent=pi_1&reason=duplicate").is_ok());
    }
}

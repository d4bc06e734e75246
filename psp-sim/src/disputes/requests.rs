//! What the dispute routes are sent, read once: the JSON of the simulator's test controls
//! (`POST /sim/disputes`, `POST /sim/disputes/:id/close`) and the form of Stripe's "update a
//! dispute" (`POST /v1/disputes/:id`), each refused by the name of the field at fault.

use serde_json::{Map, Value};

use crate::error::StripeError;
use crate::form::{Metadata, Params};

/// Stripe's dispute reasons; `general` when the request names none.
pub(crate) const REASONS: [&str; 13] = [
    "bank_cannot_process",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
];

/// Stripe's evidence fields that take text: the ones the simulator accepts.
const TEXT_EVIDENCE: [&str; 18] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
];

/// Stripe's evidence fields that take an uploaded file's id: shown (always `null`), refused
/// when sent, since the simulator has no Files API.
const FILE_EVIDENCE: [&str; 9] = [
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
];

/// The body of `POST /sim/disputes`: `{"charge": "ch_…", "reason"?: "fraudulent", "amount"?: N}`.
#[derive(Clone, Debug)]
pub(crate) struct NewDispute {
    pub charge: String,
    pub reason: &'static str,
    /// Minor units; `None` disputes all that is left of the charge.
    pub amount: Option<i64>,
}

impl NewDispute {
    /// Reads the JSON body, naming the field at fault.
    pub fn parse(body: &[u8]) -> Result<Self, StripeError> {
        let map = json_object(body, &["charge", "reason", "amount"])?;
        let charge = match map.get("charge") {
            None | Some(Value::Null) => return Err(StripeError::missing("charge")),
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            Some(other) => {
                return Err(StripeError::invalid_param("charge", format!("Invalid charge id: {other}")))
            }
        };
        let reason = match map.get("reason") {
            None | Some(Value::Null) => "general",
            Some(Value::String(reason)) => REASONS.into_iter().find(|r| r == reason).ok_or_else(|| {
                StripeError::invalid_param(
                    "reason",
                    format!("Invalid reason: {reason}; must be one of {}", REASONS.join(", ")),
                )
            })?,
            Some(other) => {
                return Err(StripeError::invalid_param("reason", format!("Invalid reason: {other}")))
            }
        };
        let amount = match map.get("amount") {
            None | Some(Value::Null) => None,
            Some(value) => {
                let amount = value.as_i64().ok_or_else(|| {
                    StripeError::invalid_param("amount", format!("Invalid integer: {value}"))
                })?;
                if amount < 1 {
                    return Err(StripeError::invalid_param(
                        "amount",
                        "This value must be greater than or equal to 1.",
                    )
                    .with_code("parameter_invalid_integer"));
                }
                Some(amount)
            }
        };
        Ok(Self { charge, reason, amount })
    }
}

/// The issuer's decision: the body of `POST /sim/disputes/:id/close`, `{"outcome": "won"|"lost"}`
/// (won or lost by the platform).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Won,
    Lost,
}

impl Verdict {
    pub fn parse(body: &[u8]) -> Result<Self, StripeError> {
        let map = json_object(body, &["outcome"])?;
        match map.get("outcome") {
            None | Some(Value::Null) => Err(StripeError::missing("outcome")),
            Some(Value::String(outcome)) if outcome == "won" => Ok(Self::Won),
            Some(Value::String(outcome)) if outcome == "lost" => Ok(Self::Lost),
            Some(other) => Err(StripeError::invalid_param(
                "outcome",
                format!("Invalid outcome: {other}; must be won or lost"),
            )),
        }
    }
}

/// `POST /v1/disputes/:id`, Stripe's "update a dispute".
#[derive(Clone, Debug)]
pub(crate) struct DisputeUpdate {
    pub id: String,
    /// `evidence[field]=text`, in the order sent; an empty text unsets the field.
    pub evidence: Vec<(&'static str, String)>,
    /// `submit`; Stripe's default is `true`, so evidence sent without it is submitted.
    pub submit: Option<bool>,
    /// `metadata[key]=value`; an empty value unsets the key.
    pub metadata: Metadata,
    /// A bare `metadata=`: unset every key first.
    pub clear_metadata: bool,
}

impl DisputeUpdate {
    /// Reads the form parameters, refusing unknown ones (and file evidence) by name.
    pub fn parse(id: String, p: &Params) -> Result<Self, StripeError> {
        p.only(&["evidence", "metadata", "submit"])?;
        let mut evidence = Vec::new();
        for (path, value) in p.under("evidence")? {
            let param = format!("evidence[{}]", path.join("]["));
            let field = match path {
                [field] => TEXT_EVIDENCE.into_iter().find(|f| f == field),
                _ => None,
            };
            match field {
                Some(field) => evidence.push((field, value.to_owned())),
                None if matches!(path, [field] if FILE_EVIDENCE.contains(&field.as_str())) => {
                    return Err(StripeError::invalid_param(
                        &param,
                        format!(
                            "{param} takes the id of an uploaded file; this simulator has no Files API \
                             and keeps text evidence only."
                        ),
                    ))
                }
                None => {
                    return Err(StripeError::invalid_param(
                        &param,
                        format!("Received unknown parameter: {param}"),
                    ))
                }
            }
        }
        let metadata = p.metadata()?;
        let clear_metadata = metadata.is_empty() && p.text("metadata")? == Some("");
        Ok(Self { id, evidence, submit: p.boolean("submit")?, metadata, clear_metadata })
    }
}

/// A JSON object body whose keys are all in `known`.
fn json_object(body: &[u8], known: &[&str]) -> Result<Map<String, Value>, StripeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| StripeError::invalid(format!("Invalid JSON body: {error}")))?;
    let Value::Object(map) = value else {
        return Err(StripeError::invalid("The body must be a JSON object."));
    };
    if let Some(unknown) = map.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(StripeError::invalid_param(unknown, format!("Received unknown parameter: {unknown}")));
    }
    Ok(map)
}

/// Every evidence field, none given.
pub(super) fn no_evidence() -> std::collections::BTreeMap<&'static str, Option<String>> {
    TEXT_EVIDENCE.into_iter().chain(FILE_EVIDENCE).map(|field| (field, None)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(error: StripeError) -> Option<String> {
        error.param
    }

    #[test]
    fn a_new_dispute_names_the_field_at_fault() {
        let ok = NewDispute::parse(br#"{"charge":"ch_1"}"#).expect("charge alone");
        assert_eq!((ok.charge.as_str(), ok.reason, ok.amount), ("ch_1", "general", None));
        let ok = NewDispute::parse(br#"{"charge":"ch_1","reason":"fraudulent","amount":500}"#).expect("all");
        assert_eq!((ok.reason, ok.amount), ("fraudulent", Some(500)));
        for (body, param) in [
            (r#"{}"#, Some("charge")),
            (r#"{"charge":7}"#, Some("charge")),
            (r#"{"charge":"ch_1","reason":"angry"}"#, Some("reason")),
            (r#"{"charge":"ch_1","amount":0}"#, Some("amount")),
            (r#"{"charge":"ch_1","amount":"12.30"}"#, Some("amount")),
            (r#"{"charge":"ch_1","colour":"red"}"#, Some("colour")),
            (r#"not json"#, None),
        ] {
            let error = NewDispute::parse(body.as_bytes()).expect_err(body);
            assert_eq!(param_of(error).as_deref(), param, "{body}");
        }
    }

    #[test]
    fn an_outcome_is_won_or_lost() {
        assert_eq!(Verdict::parse(br#"{"outcome":"won"}"#).expect("won"), Verdict::Won);
        assert_eq!(Verdict::parse(br#"{"outcome":"lost"}"#).expect("lost"), Verdict::Lost);
        for body in [r#"{}"#, r#"{"outcome":"draw"}"#] {
            let error = Verdict::parse(body.as_bytes()).expect_err(body);
            assert_eq!(param_of(error).as_deref(), Some("outcome"), "{body}");
        }
    }

    #[test]
    fn an_update_takes_text_evidence_metadata_and_submit() {
        let parse = |body: &str| DisputeUpdate::parse("dp_1".into(), &Params::parse(body.as_bytes())?);
        let update = parse("evidence[uncategorized_text]=late&metadata[case]=7&submit=false").expect("valid");
        assert_eq!(update.evidence, [("uncategorized_text", "late".to_owned())]);
        assert_eq!((update.submit, update.metadata["case"].as_str()), (Some(false), "7"));
        assert!(parse("metadata=").expect("clears").clear_metadata);
        for (body, param) in [
            ("evidence[receipt]=file_1", "evidence[receipt]"),
            ("evidence[mood]=calm", "evidence[mood]"),
            ("evidence[customer_name][first]=Ann", "evidence[customer_name][first]"),
            ("submit=yes", "submit"),
            ("amount=5", "amount"),
        ] {
            let error = parse(body).expect_err(body);
            assert_eq!(param_of(error).as_deref(), Some(param), "{body}");
        }
    }
}

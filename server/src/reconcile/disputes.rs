//! Disputes in reconciliation: the provider's disputes of a week's payments matched one to one
//! with the disputes the product recorded and their money in the ledger. A dispute at the
//! provider that the product never recorded (its events did not arrive) is at the provider, not
//! in the ledger; one recorded that the provider does not have is in the ledger, not at the
//! provider; a status, amount, withdrawal, fee or decision that differs is a mismatch. Nothing is
//! repaired: each item says so, and that the dispute is answered on /disputes.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::db::disputes::DisputeEvent;
use crate::db::reconcile::LedgerDispute;
use crate::db::Db;
use app::model::money::{BillingCurrency, Money};
use app::model::reconcile::{MatchClass, ReconItem};

/// What every dispute item ends with.
const NO_REPAIR: &str = "no repair: answer it on /disputes";

/// One dispute as the provider lists it.
pub(super) struct Listed {
    event: DisputeEvent,
    /// `metadata[week]` and `metadata[user_id]`, when the provider copied the payment's metadata.
    week: Option<String>,
    user_hint: Option<String>,
}

impl Listed {
    /// Its payment intent, when the provider names one.
    pub(super) fn payment_intent(&self) -> Option<&str> {
        self.event.payment_intent.as_deref()
    }

    /// Whether its metadata names `week`.
    pub(super) fn names_week(&self, week: &str) -> bool {
        self.week.as_deref() == Some(week)
    }
}

/// A dispute object of the provider's list, read as its events are read.
pub(super) fn listed(object: &Value) -> Option<Listed> {
    Some(Listed {
        event: crate::disputes::event_of(object)?,
        week: object["metadata"]["week"].as_str().map(str::to_owned),
        user_hint: object["metadata"]["user_id"].as_str().map(str::to_owned),
    })
}

/// How many of the week's disputes match, and the items of those that do not. `listed` are the
/// provider's disputes of the week's payments; the product's side is read here.
pub(super) async fn reconcile(
    db: &Db,
    week: &str,
    listed: &[Listed],
    currency: BillingCurrency,
) -> Result<(i64, Vec<ReconItem>), sqlx::Error> {
    let ours = db.ledger_disputes(week).await?;
    let known: HashSet<&str> = ours.iter().map(|d| d.provider_id.as_str()).collect();
    // The invoice of each dispute the product does not know, for its item: the provider's copy
    // of the payment's metadata, else the product's charge attempts.
    let mut invoices = HashMap::new();
    for l in listed.iter().filter(|l| !known.contains(l.event.provider_id.as_str())) {
        let found = match (l.event.invoice_hint, l.payment_intent()) {
            (Some(invoice), _) => Some((invoice, l.user_hint.clone())),
            (None, Some(intent)) => db.invoice_of_payment(intent).await?.map(|(i, u)| (i, Some(u))),
            (None, None) => None,
        };
        if let Some(found) = found {
            invoices.insert(l.event.provider_id.clone(), found);
        }
    }
    Ok(items(listed, &ours, &invoices, currency))
}

/// The matching itself: `listed` against `ours`, with the invoices of the disputes the product
/// does not know.
fn items(
    listed: &[Listed],
    ours: &[LedgerDispute],
    invoices: &HashMap<String, (i64, Option<String>)>,
    currency: BillingCurrency,
) -> (i64, Vec<ReconItem>) {
    let text = |minor: i64| format!("{} {}", Money::from_minor(minor, currency), currency.code());
    let item =
        |class: MatchClass, id: &str, provider: Option<i64>, ledger: Option<i64>, note: String| ReconItem {
            class,
            kind: "dispute".into(),
            provider_id: id.to_owned(),
            provider_amount: provider.map(|m| Money::from_minor(m, currency)),
            ledger_amount: ledger.map(|m| Money::from_minor(m, currency)),
            user_id: None,
            invoice_id: None,
            payout_id: None,
            attempt_key: None,
            note: Some(note),
        };
    let by_id: HashMap<&str, &LedgerDispute> = ours.iter().map(|d| (d.provider_id.as_str(), d)).collect();
    let (mut matched, mut found) = (0, Vec::new());
    for l in listed {
        let p = &l.event;
        let Some(d) = by_id.get(p.provider_id.as_str()) else {
            let invoice = invoices.get(&p.provider_id);
            let of_invoice = invoice.map(|(i, _)| format!(" of invoice {i}")).unwrap_or_default();
            let mut unknown = item(
                MatchClass::ProviderOnly,
                &p.provider_id,
                Some(p.amount_minor),
                None,
                format!(
                    "dispute {}{of_invoice} ({}, {}, {}) is at the provider but the product never recorded it: its events did not arrive; {NO_REPAIR}",
                    p.provider_id,
                    p.reason,
                    p.status,
                    text(p.amount_minor)
                ),
            );
            unknown.invoice_id = invoice.map(|(i, _)| *i);
            unknown.user_id = invoice.and_then(|(_, u)| u.clone());
            found.push(unknown);
            continue;
        };
        let differences = differences(p, d, &text);
        if differences.is_empty() {
            matched += 1;
            continue;
        }
        let mut differs = item(
            MatchClass::AmountMismatch,
            &p.provider_id,
            Some(p.amount_minor),
            d.withdrawn_minor,
            format!("dispute {}: {}; {NO_REPAIR}", p.provider_id, differences.join("; ")),
        );
        (differs.invoice_id, differs.user_id) = (d.invoice_id, d.user_id.clone());
        found.push(differs);
    }
    let at_provider: HashSet<&str> = listed.iter().map(|l| l.event.provider_id.as_str()).collect();
    for d in ours.iter().filter(|d| !at_provider.contains(d.provider_id.as_str())) {
        let note = match (&d.status, d.invoice_id) {
            (Some(status), Some(invoice)) => format!(
                "dispute {} of invoice {invoice} ({status}) was recorded by the product{}, but the provider does not list it; {NO_REPAIR}",
                d.provider_id,
                d.withdrawn_minor.map(|m| format!(" with a withdrawal of {} in the ledger", text(m))).unwrap_or_default()
            ),
            _ => format!(
                "the ledger holds a withdrawal of dispute {} that neither the product's disputes nor the provider have; {NO_REPAIR}",
                d.provider_id
            ),
        };
        let mut missing = item(MatchClass::LedgerOnly, &d.provider_id, None, d.withdrawn_minor, note);
        (missing.invoice_id, missing.user_id) = (d.invoice_id, d.user_id.clone());
        found.push(missing);
    }
    (matched, found)
}

/// What differs between the provider's dispute and the product's, each said in words; none when
/// they match.
fn differences(p: &DisputeEvent, d: &LedgerDispute, text: &impl Fn(i64) -> String) -> Vec<String> {
    let mut found = Vec::new();
    let ours = |minor: Option<i64>| minor.map(text).unwrap_or_else(|| "none".into());
    if d.status.as_deref() != Some(p.status.as_str()) {
        found.push(format!(
            "the provider says {}, the product {}",
            p.status,
            d.status.as_deref().unwrap_or("has no record of it")
        ));
    }
    if d.amount_minor != Some(p.amount_minor) {
        found.push(format!(
            "the provider disputes {}, the product recorded {}",
            text(p.amount_minor),
            ours(d.amount_minor)
        ));
    }
    // The money as the product books it from the same object (`Db::record_dispute`).
    let decided = matches!(p.status.as_str(), "won" | "lost");
    let withdrawn = (p.withdrawn || decided).then_some(p.amount_minor);
    if d.withdrawn_minor != withdrawn {
        found.push(format!(
            "the provider withdrew {}, the ledger booked {}",
            ours(withdrawn),
            ours(d.withdrawn_minor)
        ));
    }
    if let Some(fee) = p.fee_minor.filter(|_| withdrawn.is_some()) {
        if d.fee_minor.unwrap_or(0) != fee {
            found.push(format!(
                "the provider's fee is {}, the ledger booked {}",
                text(fee),
                ours(d.fee_minor)
            ));
        }
    }
    let decision = match p.status.as_str() {
        "won" => Some("dispute.won"),
        "lost" => Some("dispute.lost"),
        _ => None,
    };
    if d.decided.as_deref() != decision {
        found.push(format!(
            "the ledger has {} for a dispute the provider says is {}",
            d.decided.as_deref().unwrap_or("no decision"),
            p.status
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usd() -> BillingCurrency {
        BillingCurrency::from_code("USD").unwrap()
    }

    fn at_provider(id: &str, status: &str, amount: i64) -> Listed {
        listed(&json!({
            "id": id, "object": "dispute", "amount": amount, "currency": "usd", "charge": "ch_1",
            "payment_intent": format!("pi_{id}"), "reason": "fraudulent", "status": status,
            "balance_transactions": [{ "amount": -amount, "fee": 1500 }],
            "metadata": { "invoice_id": "7", "user_id": "p7", "week": "2026-W10" },
        }))
        .unwrap()
    }

    fn recorded(id: &str, status: &str, amount: i64, decided: Option<&str>) -> LedgerDispute {
        LedgerDispute {
            provider_id: id.into(),
            invoice_id: Some(3),
            user_id: Some("p3".into()),
            status: Some(status.into()),
            amount_minor: Some(amount),
            withdrawn_minor: Some(amount),
            fee_minor: Some(1500),
            decided: decided.map(str::to_owned),
        }
    }

    #[test]
    fn disputes_match_or_name_what_differs_and_are_never_repaired() {
        let listed = [
            at_provider("dp_won", "won", 4250),
            at_provider("dp_lost", "lost", 1000),
            at_provider("dp_unknown", "needs_response", 900),
            at_provider("dp_behind", "lost", 2000),
        ];
        assert!(listed[0].names_week("2026-W10") && listed[0].payment_intent() == Some("pi_dp_won"));
        let ours = [
            recorded("dp_won", "won", 4250, Some("dispute.won")),
            recorded("dp_lost", "lost", 1000, Some("dispute.lost")),
            recorded("dp_behind", "under_review", 2000, None),
            recorded("dp_gone", "needs_response", 500, None),
        ];
        let invoices = HashMap::from([("dp_unknown".to_owned(), (7, Some("p7".to_owned())))]);
        let (matched, items) = items(&listed, &ours, &invoices, usd());
        assert_eq!(matched, 2);
        let classes: Vec<(&str, MatchClass, Option<i64>)> =
            items.iter().map(|i| (i.provider_id.as_str(), i.class, i.invoice_id)).collect();
        assert_eq!(
            classes,
            [
                ("dp_unknown", MatchClass::ProviderOnly, Some(7)),
                ("dp_behind", MatchClass::AmountMismatch, Some(3)),
                ("dp_gone", MatchClass::LedgerOnly, Some(3)),
            ]
        );
        let note = |i: usize| items[i].note.as_deref().unwrap();
        assert!(
            note(0).contains("dp_unknown of invoice 7") && note(0).contains("never recorded"),
            "{}",
            note(0)
        );
        assert!(note(1).contains("the provider says lost, the product under_review"), "{}", note(1));
        assert!(note(1).contains("no decision"), "{}", note(1));
        assert!(items
            .iter()
            .all(|i| i.kind == "dispute" && i.note.as_deref().unwrap().ends_with("answer it on /disputes")));
    }

    #[test]
    fn a_withdrawal_or_fee_the_ledger_booked_otherwise_is_a_mismatch() {
        let listed = [at_provider("dp_1", "needs_response", 4250)];
        let mut ours = recorded("dp_1", "needs_response", 4250, None);
        assert_eq!(items(&listed, std::slice::from_ref(&ours), &HashMap::new(), usd()).0, 1);
        ours.fee_minor = None;
        let (matched, found) = items(&listed, std::slice::from_ref(&ours), &HashMap::new(), usd());
        assert_eq!(matched, 0);
        assert!(
            found[0].note.as_deref().unwrap().contains("fee is 15.00 USD, the ledger booked none"),
            "{found:?}"
        );
        ours.fee_minor = Some(1500);
        ours.withdrawn_minor = None;
        let (_, found) = items(&listed, &[ours], &HashMap::new(), usd());
        assert!(
            found[0].note.as_deref().unwrap().contains("withdrew 42.50 USD, the ledger booked none"),
            "{found:?}"
        );
        // A withdrawal in the ledger that no recorded dispute explains, and the provider lacks.
        let stray = LedgerDispute {
            provider_id: "dp_x".into(),
            invoice_id: None,
            user_id: None,
            status: None,
            amount_minor: None,
            withdrawn_minor: Some(100),
            fee_minor: None,
            decided: None,
        };
        let (_, found) = items(&[], &[stray], &HashMap::new(), usd());
        assert_eq!(
            (found[0].class, found[0].ledger_amount.map(|m| m.minor())),
            (MatchClass::LedgerOnly, Some(100))
        );
    }
}

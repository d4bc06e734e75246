//! Disputes (chargebacks), as Stripe models them: a card issuer takes a payment back from the
//! platform, the platform answers with evidence before a due date, and the issuer decides.
//!
//! The issuer's side is the simulator's test controls (`POST /sim/disputes` opens a dispute,
//! `POST /sim/disputes/:id/close` decides it); the platform's side is Stripe's API (`GET
//! /v1/disputes[/:id]`, `POST /v1/disputes/:id` with evidence). Money moves as Stripe moves it:
//! opening a dispute withdraws its amount and a fee ([`DISPUTE_FEE_MINOR`]) from the balance; a
//! win gives the amount back (not the fee); a loss keeps it. Each movement is in the ledger.

mod requests;

use chrono::{DateTime, Utc};

use self::requests::no_evidence;
pub(crate) use self::requests::{DisputeUpdate, NewDispute, Verdict};
use super::error::StripeError;
use super::ledger::{LedgerEntry, LedgerKind, DISPUTE_FEE_MINOR};
use super::objects::{new_id, BalanceTransaction, Charge, Dispute, EvidenceDetails, FeeDetail, Object};
use super::store::{json_of, Context, Executed, Store};

/// Stripe's limit on the characters of all evidence fields together.
pub(crate) const MAX_EVIDENCE_CHARS: usize = 150_000;

/// How long the platform has to answer a dispute, from its creation (simulator's clock).
pub(crate) const RESPONSE_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// The statuses of a dispute the issuer has not decided yet.
const OPEN: [&str; 4] = ["warning_needs_response", "warning_under_review", "needs_response", "under_review"];

fn is_open(status: &str) -> bool {
    OPEN.contains(&status)
}

/// A balance transaction of a dispute: `amount` (negative: withdrawn) and `fee`.
fn balance_transaction(dispute: &Dispute, amount: i64, fee: i64, at: i64) -> BalanceTransaction {
    let (description, category) = if amount < 0 {
        (format!("Chargeback withdrawal for {}", dispute.charge), "dispute")
    } else {
        (format!("Chargeback reversal for {}", dispute.charge), "dispute_reversal")
    };
    let fee_details = if fee == 0 {
        Vec::new()
    } else {
        vec![FeeDetail {
            amount: fee,
            currency: dispute.currency.clone(),
            description: "Dispute fee",
            kind: "stripe_fee",
        }]
    };
    BalanceTransaction {
        id: new_id("txn"),
        object: "balance_transaction",
        created: at,
        available_on: at,
        amount,
        currency: dispute.currency.clone(),
        description,
        fee,
        fee_details,
        net: amount - fee,
        reporting_category: category,
        source: dispute.id.clone(),
        status: "available",
        kind: "adjustment",
    }
}

impl Store {
    /// The dispute that keeps a charge from being refunded: an open one, or a lost one (the
    /// money already went back to the cardholder through the issuer).
    pub(crate) fn dispute_blocking_refund(&self, charge: &str) -> Option<&Dispute> {
        self.disputes
            .rows()
            .iter()
            .rev()
            .find(|d| d.charge == charge && (is_open(d.status) || d.status == "lost"))
    }

    /// Opens a dispute (the issuer's move): withdraws its amount and the fee, records both in
    /// the ledger, and answers `charge.dispute.created` then `charge.dispute.funds_withdrawn`.
    pub(crate) fn open_dispute(
        &mut self,
        req: NewDispute,
        now: DateTime<Utc>,
    ) -> Result<Executed, StripeError> {
        let charge = self
            .charges
            .get(&req.charge)
            .ok_or_else(|| StripeError::no_such(Charge::NOUN, &req.charge, "charge"))?;
        if charge.status != "succeeded" {
            return Err(StripeError::invalid_param(
                "charge",
                format!("Charge {} did not succeed, so there is nothing to dispute.", charge.id),
            ));
        }
        let on_charge = || self.disputes.rows().iter().filter(|d| d.charge == charge.id);
        if let Some(open) = on_charge().find(|d| is_open(d.status)) {
            return Err(StripeError::invalid_param(
                "charge",
                format!("Charge {} already has an open dispute ({}).", charge.id, open.id),
            )
            .with_code("charge_disputed"));
        }
        let lost: i64 = on_charge().filter(|d| d.status == "lost").map(|d| d.amount).sum();
        let disputable = charge.amount - charge.amount_refunded - lost;
        let amount = match req.amount {
            Some(amount) if amount > disputable => {
                return Err(StripeError::invalid_param(
                    "amount",
                    format!(
                        "Dispute amount ({amount}) is greater than what is left of charge {} to dispute \
                         ({disputable}: {} charged, {} refunded, {lost} lost in disputes).",
                        charge.id, charge.amount, charge.amount_refunded
                    ),
                )
                .with_code("amount_too_large"))
            }
            Some(amount) => amount,
            None if disputable < 1 => {
                return Err(StripeError::invalid_param(
                    "charge",
                    format!("Charge {} has nothing left to dispute: it was refunded or lost.", charge.id),
                ))
            }
            None => disputable,
        };
        let created = now.timestamp();
        let mut dispute = Dispute {
            id: new_id("dp"),
            object: "dispute",
            created,
            amount,
            currency: charge.currency.clone(),
            charge: charge.id.clone(),
            payment_intent: charge.payment_intent.clone(),
            reason: req.reason,
            status: "needs_response",
            evidence: no_evidence(),
            evidence_details: EvidenceDetails {
                due_by: (now + RESPONSE_WINDOW).timestamp(),
                has_evidence: false,
                past_due: false,
                submission_count: 0,
            },
            is_charge_refundable: false,
            balance_transactions: Vec::new(),
            metadata: charge.metadata.clone(),
            livemode: false,
        };
        let withdrawal = balance_transaction(&dispute, -amount, DISPUTE_FEE_MINOR, created);
        dispute.balance_transactions.push(withdrawal);
        self.ledger.push(LedgerEntry::dispute(LedgerKind::Dispute, &dispute, amount, charge, now));
        self.ledger.push(LedgerEntry::dispute(
            LedgerKind::DisputeFee,
            &dispute,
            DISPUTE_FEE_MINOR,
            charge,
            now,
        ));
        self.balance.adjust(&dispute.currency, -(amount + DISPUTE_FEE_MINOR), now);
        if let Some(charge) = self.charges.get_mut(&req.charge) {
            charge.disputed = true;
        }
        let body = json_of(&dispute);
        self.disputes.insert(dispute);
        Ok(Executed::ok(body, true)
            .with_events(&["charge.dispute.created", "charge.dispute.funds_withdrawn"]))
    }

    /// Closes a dispute (the issuer's decision): a win gives the amount back (ledger
    /// `dispute_reversal`); a loss keeps it. Answers `charge.dispute.closed`, then on a win
    /// `charge.dispute.funds_reinstated`. A dispute closes once.
    pub(crate) fn close_dispute(
        &mut self,
        id: &str,
        verdict: Verdict,
        now: DateTime<Utc>,
    ) -> Result<Executed, StripeError> {
        let dispute = self.disputes.get_mut(id).ok_or_else(|| StripeError::not_found(Dispute::NOUN, id))?;
        if !is_open(dispute.status) {
            return Err(StripeError::invalid(format!(
                "Dispute {id} is already closed ({}): a dispute is closed once.",
                dispute.status
            )));
        }
        let charge = self
            .charges
            .get(&dispute.charge)
            .ok_or_else(|| StripeError::no_such(Charge::NOUN, &dispute.charge, "charge"))?;
        let mut events = vec!["charge.dispute.closed"];
        match verdict {
            Verdict::Lost => dispute.status = "lost",
            Verdict::Won => {
                dispute.status = "won";
                let reinstated = balance_transaction(dispute, dispute.amount, 0, now.timestamp());
                dispute.balance_transactions.push(reinstated);
                self.ledger.push(LedgerEntry::dispute(
                    LedgerKind::DisputeReversal,
                    dispute,
                    dispute.amount,
                    charge,
                    now,
                ));
                self.balance.adjust(&dispute.currency, dispute.amount, now);
                events.push("charge.dispute.funds_reinstated");
            }
        }
        Ok(Executed::ok(json_of(dispute), true).with_events(&events))
    }

    /// Stripe's "update a dispute": stages or submits evidence, and changes metadata. Evidence
    /// is refused once submitted, once closed, and after `due_by`; metadata always changes.
    pub(crate) fn update_dispute(
        &mut self,
        req: DisputeUpdate,
        ctx: &Context,
    ) -> Result<Executed, StripeError> {
        let dispute =
            self.disputes.get_mut(&req.id).ok_or_else(|| StripeError::not_found(Dispute::NOUN, &req.id))?;
        let submit = req.submit.unwrap_or(true) && (!req.evidence.is_empty() || req.submit == Some(true));
        if !req.evidence.is_empty() || submit {
            let evidence = merged_evidence(dispute, &req.evidence, ctx.now)?;
            if submit && evidence.values().all(Option::is_none) {
                return Err(StripeError::invalid_param(
                    "submit",
                    "There is no evidence to submit: send evidence[…] fields first or with it.",
                ));
            }
            dispute.evidence_details.has_evidence = evidence.values().any(Option::is_some);
            dispute.evidence = evidence;
            if submit {
                dispute.status = "under_review";
                dispute.evidence_details.submission_count += 1;
            }
        }
        if req.clear_metadata {
            dispute.metadata.clear();
        }
        for (key, value) in req.metadata {
            if value.is_empty() {
                dispute.metadata.remove(&key);
            } else {
                dispute.metadata.insert(key, value);
            }
        }
        Ok(Executed::ok(json_of(dispute), false).with_events(&["charge.dispute.updated"]))
    }
}

/// The dispute's evidence with `sent` applied, if the dispute still takes evidence at `now`
/// and the whole stays within [`MAX_EVIDENCE_CHARS`].
fn merged_evidence(
    dispute: &Dispute,
    sent: &[(&'static str, String)],
    now: DateTime<Utc>,
) -> Result<std::collections::BTreeMap<&'static str, Option<String>>, StripeError> {
    if !is_open(dispute.status) {
        return Err(StripeError::invalid_param(
            "evidence",
            format!(
                "This dispute is closed ({}): its evidence can no longer be changed or submitted.",
                dispute.status
            ),
        ));
    }
    if dispute.status.ends_with("under_review") {
        return Err(StripeError::invalid_param(
            "evidence",
            "This dispute's evidence was already submitted: it is under review and can no longer be changed.",
        ));
    }
    let due_by = dispute.evidence_details.due_by;
    if now.timestamp() > due_by {
        return Err(StripeError::invalid_param(
            "evidence",
            format!("The due date for this dispute's evidence has passed (due_by {due_by}): it can no longer be submitted."),
        ));
    }
    let chars = |text: &Option<String>| text.as_deref().map_or(0, |t| t.chars().count());
    let mut evidence = dispute.evidence.clone();
    for (field, _) in sent {
        evidence.insert(field, None);
    }
    let mut total: usize = evidence.values().map(chars).sum();
    for (field, text) in sent {
        let text = Some(text.clone()).filter(|t| !t.is_empty());
        total += chars(&text);
        total -= evidence.insert(field, text).as_ref().map_or(0, chars);
        if total > MAX_EVIDENCE_CHARS {
            return Err(StripeError::invalid_param(
                format!("evidence[{field}]"),
                format!(
                    "The combined character count of all evidence fields is limited to {MAX_EVIDENCE_CHARS}; \
                     with evidence[{field}] it would be {total}."
                ),
            ));
        }
    }
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{Metadata, Params};
    use crate::objects::{PaymentMethod, TestCard};
    use crate::requests::{Mutation, NewPaymentIntent, NewRefund};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::seconds(1_800_000_000 + seconds)
    }

    fn ctx(now: DateTime<Utc>) -> Context<'static> {
        Context { now, idempotency_key: None, force_decline: false, overcharge_minor: 0, funds_delay: None }
    }

    /// A store with one successful charge of `amount`; its id.
    fn charged(store: &mut Store, amount: i64) -> String {
        let method = PaymentMethod::new(at(0).timestamp(), TestCard::Visa, Metadata::new());
        let payment_method = Some(method.id.clone());
        store.payment_methods.insert(method);
        let metadata = Metadata::from([("invoice_id".to_owned(), "2026-W48/u1".to_owned())]);
        let intent = NewPaymentIntent {
            amount,
            currency: "usd".into(),
            customer: None,
            payment_method,
            confirm: true,
            off_session: false,
            description: None,
            transfer_group: None,
            metadata,
        };
        let done = store.execute(Mutation::CreatePaymentIntent(intent), &ctx(at(0))).expect("charged");
        done.body["latest_charge"].as_str().expect("a charge").to_owned()
    }

    fn open(store: &mut Store, charge: &str, amount: Option<i64>) -> Result<Executed, StripeError> {
        store.open_dispute(NewDispute { charge: charge.into(), reason: "fraudulent", amount }, at(10))
    }

    fn refund(store: &mut Store, charge: &str, amount: i64) -> Result<Executed, StripeError> {
        let req = NewRefund {
            payment_intent: None,
            charge: Some(charge.into()),
            amount: Some(amount),
            reason: None,
            metadata: Metadata::new(),
        };
        store.execute(Mutation::CreateRefund(req), &ctx(at(5)))
    }

    fn update(store: &mut Store, id: &str, body: &str, now: DateTime<Utc>) -> Result<Executed, StripeError> {
        let req = DisputeUpdate::parse(id.into(), &Params::parse(body.as_bytes())?)?;
        store.update_dispute(req, &ctx(now))
    }

    fn kinds(store: &Store) -> Vec<LedgerKind> {
        store.ledger.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn opening_withdraws_the_amount_and_the_fee() {
        let mut store = Store::default();
        let charge = charged(&mut store, 1000);
        refund(&mut store, &charge, 200).expect("a partial refund");
        let error = open(&mut store, &charge, Some(801)).expect_err("more than is left");
        assert_eq!((error.param.as_deref(), error.code), (Some("amount"), Some("amount_too_large")));
        let done = open(&mut store, &charge, None).expect("opened");
        assert_eq!(done.events, ["charge.dispute.created", "charge.dispute.funds_withdrawn"]);
        let dispute = &done.body;
        assert_eq!(
            (dispute["amount"].as_i64(), dispute["status"].as_str()),
            (Some(800), Some("needs_response"))
        );
        assert_eq!(dispute["evidence_details"]["due_by"], (at(10) + RESPONSE_WINDOW).timestamp());
        assert_eq!(dispute["metadata"]["invoice_id"], "2026-W48/u1");
        let withdrawal = &dispute["balance_transactions"][0];
        assert_eq!((withdrawal["amount"].as_i64(), withdrawal["net"].as_i64()), (Some(-800), Some(-2300)));
        assert_eq!(
            kinds(&store),
            [LedgerKind::Charge, LedgerKind::Refund, LedgerKind::Dispute, LedgerKind::DisputeFee]
        );
        assert_eq!(store.balance.available["usd"], 1000 - 200 - 800 - DISPUTE_FEE_MINOR);
        let again = open(&mut store, &charge, Some(1)).expect_err("one open dispute per charge");
        assert_eq!(again.code, Some("charge_disputed"));
        let refused = refund(&mut store, &charge, 1).expect_err("a disputed charge is not refunded");
        assert_eq!(refused.code, Some("charge_disputed"));
        assert!(store.charges.get(&charge).expect("charge").disputed);
    }

    #[test]
    fn a_win_gives_the_amount_back_and_a_loss_keeps_it() {
        let mut store = Store::default();
        let won = charged(&mut store, 1000);
        let id = open(&mut store, &won, None).expect("opened").body["id"].as_str().expect("id").to_owned();
        let done = store.close_dispute(&id, Verdict::Won, at(20)).expect("closed");
        assert_eq!(done.events, ["charge.dispute.closed", "charge.dispute.funds_reinstated"]);
        assert_eq!(done.body["status"], "won");
        assert_eq!(done.body["balance_transactions"][1]["reporting_category"], "dispute_reversal");
        assert!(store.close_dispute(&id, Verdict::Lost, at(21)).is_err(), "closed once");
        assert_eq!(store.balance.available["usd"], 1000 - DISPUTE_FEE_MINOR, "the fee is kept");
        refund(&mut store, &won, 100).expect("a won dispute leaves the charge refundable");

        let lost = charged(&mut store, 500);
        let id = open(&mut store, &lost, None).expect("opened").body["id"].as_str().expect("id").to_owned();
        let done = store.close_dispute(&id, Verdict::Lost, at(20)).expect("closed");
        assert_eq!(
            (done.events.as_slice(), done.body["status"].as_str()),
            (&["charge.dispute.closed"][..], Some("lost"))
        );
        assert_eq!(refund(&mut store, &lost, 1).expect_err("lost").code, Some("charge_disputed"));
        assert!(open(&mut store, &lost, None).is_err(), "nothing left to dispute");
        let reversals = store.ledger.iter().filter(|e| e.kind == LedgerKind::DisputeReversal).count();
        assert_eq!(reversals, 1);
    }

    #[test]
    fn evidence_is_staged_submitted_once_and_refused_late() {
        let mut store = Store::default();
        let charge = charged(&mut store, 1000);
        let id = open(&mut store, &charge, None).expect("opened").body["id"].as_str().expect("id").to_owned();
        let staged =
            update(&mut store, &id, "evidence[customer_name]=Ann&submit=false", at(30)).expect("staged");
        assert_eq!(staged.body["status"], "needs_response");
        assert_eq!(staged.body["evidence_details"]["has_evidence"], true);
        assert_eq!(staged.events, ["charge.dispute.updated"]);
        let too_long = format!("evidence[uncategorized_text]={}", "x".repeat(MAX_EVIDENCE_CHARS - 2));
        let error = update(&mut store, &id, &too_long, at(30)).expect_err("over the limit with Ann");
        assert_eq!(error.param.as_deref(), Some("evidence[uncategorized_text]"));
        let submitted =
            update(&mut store, &id, "evidence[product_description]=rides", at(40)).expect("submitted");
        assert_eq!(submitted.body["status"], "under_review", "submit defaults to true, as Stripe's");
        assert_eq!(submitted.body["evidence"]["customer_name"], "Ann", "staged evidence is kept");
        assert_eq!(submitted.body["evidence_details"]["submission_count"], 1);
        assert!(update(&mut store, &id, "evidence[customer_name]=Bob", at(50)).is_err(), "submitted once");
        update(&mut store, &id, "metadata[case]=7", at(50)).expect("metadata changes any time");

        let late = charged(&mut store, 300);
        let id = open(&mut store, &late, None).expect("opened").body["id"].as_str().expect("id").to_owned();
        let after = at(10) + RESPONSE_WINDOW + chrono::Duration::seconds(1);
        let error = update(&mut store, &id, "evidence[customer_name]=Ann", after).expect_err("past due_by");
        assert!(error.message.contains("due date"), "{}", error.message);
        assert!(update(&mut store, &id, "submit=true", at(20)).is_err(), "no evidence to submit");
    }
}

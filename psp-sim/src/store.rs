//! The simulated provider's books: its objects and its ledger, in memory, and what each POST
//! does to them.
//!
//! Nothing here knows about HTTP, idempotency keys or faults: the caller decides whether a
//! request runs at all and whether the card is forced to decline, and executes it with the
//! store locked, so every request is applied whole or not at all.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::StripeError;
use super::ledger::LedgerEntry;
use super::objects::{
    new_id, Account, Charge, Customer, Dispute, Object, Outcome, PaymentIntent, PaymentMethod, Refund,
    Transfer,
};
use super::requests::{Mutation, NewAccount, NewPaymentIntent, NewRefund, NewTransfer};

/// Objects of one kind, in the order they were made (Stripe lists them newest first).
pub(crate) struct Table<T> {
    rows: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self { rows: Vec::new(), index: HashMap::new() }
    }
}

impl<T: Object> Table<T> {
    pub fn insert(&mut self, row: T) {
        self.index.insert(row.id().to_owned(), self.rows.len());
        self.rows.push(row);
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&at| &self.rows[at])
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.index.get(id).map(|&at| &mut self.rows[at])
    }

    /// Where the object is in creation order.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Oldest first.
    pub fn rows(&self) -> &[T] {
        &self.rows
    }
}

/// Everything the simulated provider knows.
#[derive(Default)]
pub(crate) struct Store {
    pub customers: Table<Customer>,
    pub payment_methods: Table<PaymentMethod>,
    pub accounts: Table<Account>,
    pub payment_intents: Table<PaymentIntent>,
    pub charges: Table<Charge>,
    pub refunds: Table<Refund>,
    pub transfers: Table<Transfer>,
    pub disputes: Table<Dispute>,
    pub ledger: Vec<LedgerEntry>,
    pub balance: Balance,
}

/// The platform's balance per currency, as Stripe keeps it: a payment's funds are pending until
/// they become available; refunds and transfers take from what is available.
#[derive(Default)]
pub(crate) struct Balance {
    /// Minor units available to transfer, by currency.
    pub available: BTreeMap<String, i64>,
    /// Funds not available yet: when they will be, the currency, the amount (in order of time,
    /// since the delay is the same for every payment made in a row).
    pub pending: std::collections::VecDeque<(DateTime<Utc>, String, i64)>,
}

impl Balance {
    /// Moves every pending amount whose time has come to the available balance.
    fn settle(&mut self, now: DateTime<Utc>) {
        while self.pending.front().is_some_and(|(at, _, _)| *at <= now) {
            let (_, currency, amount) = self.pending.pop_front().expect("a front");
            *self.available.entry(currency).or_default() += amount;
        }
    }

    /// Adds `delta` (negative: takes) to the available balance, whatever is there (it may go
    /// below zero, as refunds and disputes take from a Stripe balance).
    pub fn adjust(&mut self, currency: &str, delta: i64, now: DateTime<Utc>) {
        self.settle(now);
        *self.available.entry(currency.to_owned()).or_default() += delta;
    }

    fn receive(&mut self, currency: &str, amount: i64, available_on: DateTime<Utc>) {
        // A delay shortened meanwhile: keep the queue in time order.
        let at = self.pending.back().map_or(available_on, |(last, _, _)| available_on.max(*last));
        self.pending.push_back((at, currency.to_owned(), amount));
    }

    /// Takes `amount` from the available balance; false (nothing taken) when it is not there
    /// and the balance is `enforced`.
    fn take(&mut self, currency: &str, amount: i64, now: DateTime<Utc>, enforced: bool) -> bool {
        self.settle(now);
        let available = self.available.entry(currency.to_owned()).or_default();
        if enforced && *available < amount {
            return false;
        }
        *available -= amount;
        true
    }

    /// `GET /v1/balance`'s body.
    pub fn settled_json(&mut self, now: DateTime<Utc>) -> Value {
        self.settle(now);
        let mut pending: BTreeMap<&str, i64> = BTreeMap::new();
        for (_, currency, amount) in &self.pending {
            *pending.entry(currency).or_default() += amount;
        }
        let list = |m: Vec<(&str, i64)>| {
            m.into_iter().map(|(c, a)| json!({ "amount": a, "currency": c })).collect::<Vec<_>>()
        };
        json!({
            "object": "balance",
            "available": list(self.available.iter().map(|(c, a)| (c.as_str(), *a)).collect()),
            "pending": list(pending.into_iter().collect()),
            "livemode": false,
        })
    }
}

/// The circumstances one request executes in.
pub(crate) struct Context<'a> {
    pub now: DateTime<Utc>,
    /// Recorded in the ledger beside each movement the request makes.
    pub idempotency_key: Option<&'a str>,
    /// The fault `decline_rate` fell on this request: a good card declines anyway.
    pub force_decline: bool,
    /// The fault `overcharge_minor`: a successful payment takes this much more than asked.
    pub overcharge_minor: i64,
    /// How long a payment's funds stay pending (`funds_delay_seconds`); `None`: the balance is
    /// not enforced (funds at once, and transfers are never refused for funds).
    pub funds_delay: Option<chrono::Duration>,
}

/// A request that executed: its answer (saved under its idempotency key), whether it
/// attempted to move money, which is when the dangerous timeout fault can strike, and the
/// webhook events it causes.
#[derive(Debug)]
pub(crate) struct Executed {
    pub status: StatusCode,
    pub body: Value,
    pub moved_money: bool,
    /// The types of the events to send about `body`, in order (`payment_intent.succeeded`).
    pub events: Vec<&'static str>,
}

impl Executed {
    pub fn ok(body: Value, moved_money: bool) -> Self {
        Self { status: StatusCode::OK, body, moved_money, events: Vec::new() }
    }

    pub fn with_events(mut self, events: &[&'static str]) -> Self {
        self.events.extend_from_slice(events);
        self
    }
}

/// An object as JSON. Our objects are plain structs with string keys, which serde_json always
/// encodes; the fallback exists only so no request can panic.
pub(crate) fn json_of<T: Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or_else(|error| {
        tracing::error!(%error, "psp-sim could not encode an object");
        Value::Null
    })
}

impl Store {
    /// Applies one request. `Err` means it was refused before anything changed (and is not
    /// saved under its idempotency key); a declined card is an `Ok` answer with status 402.
    pub fn execute(&mut self, mutation: Mutation, ctx: &Context) -> Result<Executed, StripeError> {
        let created = ctx.now.timestamp();
        match mutation {
            Mutation::CreateCustomer(c) => {
                let customer = Customer::new(created, c.email, c.name, c.description, c.metadata);
                let body = json_of(&customer);
                self.customers.insert(customer);
                Ok(Executed::ok(body, false))
            }
            Mutation::CreatePaymentMethod(p) => {
                let method = PaymentMethod::new(created, p.card, p.metadata);
                let body = json_of(&method);
                self.payment_methods.insert(method);
                Ok(Executed::ok(body, false))
            }
            Mutation::AttachPaymentMethod { id, customer } => self.attach(&id, customer),
            Mutation::CreateAccount(a) => Ok(self.create_account(a, created)),
            Mutation::CreatePaymentIntent(pi) => self.create_payment_intent(pi, ctx),
            Mutation::CreateRefund(r) => self.create_refund(r, ctx),
            Mutation::CreateTransfer(t) => self.create_transfer(t, ctx),
            Mutation::UpdateDispute(d) => self.update_dispute(d, ctx),
        }
    }

    fn attach(&mut self, id: &str, customer: String) -> Result<Executed, StripeError> {
        if self.customers.get(&customer).is_none() {
            return Err(StripeError::no_such(Customer::NOUN, &customer, "customer"));
        }
        let method = self
            .payment_methods
            .get_mut(id)
            .ok_or_else(|| StripeError::not_found(PaymentMethod::NOUN, id))?;
        match &method.customer {
            Some(owner) if *owner != customer => {
                return Err(StripeError::invalid_param(
                    "customer",
                    "The payment method you provided has already been attached to a customer.",
                ))
            }
            _ => method.customer = Some(customer),
        }
        Ok(Executed::ok(json_of(method), false))
    }

    fn create_account(&mut self, a: NewAccount, created: i64) -> Executed {
        let capabilities: BTreeMap<String, String> =
            a.capabilities.into_iter().map(|name| (name, "active".to_owned())).collect();
        let account = Account {
            id: new_id("acct"),
            object: "account",
            created,
            kind: a.kind,
            email: a.email,
            country: a.country,
            capabilities,
            charges_enabled: true,
            payouts_enabled: true,
            details_submitted: true,
            metadata: a.metadata,
            livemode: false,
        };
        let body = json_of(&account);
        self.accounts.insert(account);
        Executed::ok(body, false)
    }

    /// Checks that the customer and payment method exist and belong together.
    fn payment_method_for(&self, req: &NewPaymentIntent) -> Result<Option<PaymentMethod>, StripeError> {
        if let Some(customer) = &req.customer {
            if self.customers.get(customer).is_none() {
                return Err(StripeError::no_such(Customer::NOUN, customer, "customer"));
            }
        }
        let Some(id) = &req.payment_method else { return Ok(None) };
        let method = self
            .payment_methods
            .get(id)
            .ok_or_else(|| StripeError::no_such(PaymentMethod::NOUN, id, "payment_method"))?;
        match (&method.customer, &req.customer) {
            (Some(owner), Some(customer)) if owner != customer => Err(StripeError::invalid_param(
                "payment_method",
                format!("The PaymentMethod provided ({id}) does not belong to the Customer ({customer})."),
            )),
            (Some(owner), None) => Err(StripeError::invalid_param(
                "customer",
                format!("The PaymentMethod {id} is attached to Customer {owner}: pass that customer."),
            )),
            (None, Some(customer)) if req.off_session => Err(StripeError::invalid_param(
                "payment_method",
                format!("The PaymentMethod {id} is not attached to Customer {customer}: attach it before charging off-session."),
            )),
            _ => Ok(Some(method.clone())),
        }
    }

    fn create_payment_intent(
        &mut self,
        req: NewPaymentIntent,
        ctx: &Context,
    ) -> Result<Executed, StripeError> {
        let method = self.payment_method_for(&req)?;
        let created = ctx.now.timestamp();
        let id = new_id("pi");
        let mut intent = PaymentIntent {
            client_secret: format!("{id}_secret_{}", &new_id("s")[2..]),
            id,
            object: "payment_intent",
            created,
            amount: req.amount,
            amount_received: 0,
            currency: req.currency,
            customer: req.customer,
            payment_method: req.payment_method,
            payment_method_types: ["card"],
            capture_method: "automatic",
            confirmation_method: "automatic",
            status: if method.is_some() { "requires_confirmation" } else { "requires_payment_method" },
            latest_charge: None,
            last_payment_error: None,
            description: req.description,
            transfer_group: req.transfer_group,
            metadata: req.metadata,
            livemode: false,
        };
        let Some(method) = method.filter(|_| req.confirm) else {
            let body = json_of(&intent);
            self.payment_intents.insert(intent);
            return Ok(Executed::ok(body, false));
        };

        let decline = method
            .test_card
            .decline()
            .or_else(|| ctx.force_decline.then_some(("generic_decline", "Your card was declined.")));
        let charge = Charge {
            id: new_id("ch"),
            object: "charge",
            created,
            amount: intent.amount + if decline.is_some() { 0 } else { ctx.overcharge_minor },
            amount_captured: if decline.is_some() { 0 } else { intent.amount + ctx.overcharge_minor },
            amount_refunded: 0,
            currency: intent.currency.clone(),
            customer: intent.customer.clone(),
            payment_intent: intent.id.clone(),
            payment_method: method.id.clone(),
            status: if decline.is_some() { "failed" } else { "succeeded" },
            paid: decline.is_none(),
            captured: decline.is_none(),
            refunded: false,
            disputed: false,
            failure_code: decline.map(|_| "card_declined"),
            failure_message: decline.map(|(_, message)| message),
            outcome: match decline {
                Some((code, _)) => Outcome::declined(code),
                None => Outcome::authorized(),
            },
            description: intent.description.clone(),
            transfer_group: intent.transfer_group.clone(),
            metadata: intent.metadata.clone(),
            livemode: false,
        };
        intent.latest_charge = Some(charge.id.clone());
        self.ledger.push(LedgerEntry::charge(
            &charge,
            decline.map(|(code, _)| code),
            ctx.idempotency_key,
            ctx.now,
        ));

        let executed = match decline {
            None => {
                intent.status = "succeeded";
                intent.amount_received = intent.amount + ctx.overcharge_minor;
                let available_on = ctx.now + ctx.funds_delay.unwrap_or_default();
                self.balance.receive(&intent.currency, intent.amount_received, available_on);
                Executed::ok(json_of(&intent), true).with_events(&["payment_intent.succeeded"])
            }
            Some((code, message)) => {
                let error = StripeError::card_declined(code, message)
                    .with_extra("charge", json!(charge.id))
                    .with_extra("payment_method", json_of(&method));
                // As Stripe does: the failed method is detached from the intent, which waits
                // for a new one, and the error is kept on it.
                intent.status = "requires_payment_method";
                intent.payment_method = None;
                intent.last_payment_error = Some(error.object());
                let error = error.with_extra("payment_intent", json_of(&intent));
                Executed { status: error.status, body: error.body(), moved_money: true, events: Vec::new() }
            }
        };
        self.charges.insert(charge);
        self.payment_intents.insert(intent);
        Ok(executed)
    }

    /// The charge a refund request points at, given as `charge` or as `payment_intent`.
    fn charge_to_refund(&self, req: &NewRefund) -> Result<(String, &'static str), StripeError> {
        match (&req.charge, &req.payment_intent) {
            (Some(id), payment_intent) => {
                let charge =
                    self.charges.get(id).ok_or_else(|| StripeError::no_such(Charge::NOUN, id, "charge"))?;
                if let Some(pi) = payment_intent.as_ref().filter(|pi| **pi != charge.payment_intent) {
                    return Err(StripeError::invalid_param(
                        "payment_intent",
                        format!("The charge {id} does not belong to PaymentIntent {pi}."),
                    ));
                }
                Ok((id.clone(), "charge"))
            }
            (None, Some(pi)) => {
                let intent = self
                    .payment_intents
                    .get(pi)
                    .ok_or_else(|| StripeError::no_such(PaymentIntent::NOUN, pi, "payment_intent"))?;
                match (&intent.latest_charge, intent.status) {
                    (Some(charge), "succeeded") => Ok((charge.clone(), "payment_intent")),
                    _ => Err(StripeError::invalid_param(
                        "payment_intent",
                        format!("This PaymentIntent ({pi}) does not have a successful charge to refund."),
                    )),
                }
            }
            (None, None) => Err(StripeError::missing("payment_intent")),
        }
    }

    fn create_refund(&mut self, req: NewRefund, ctx: &Context) -> Result<Executed, StripeError> {
        let (charge_id, param) = self.charge_to_refund(&req)?;
        if let Some(dispute) = self.dispute_blocking_refund(&charge_id) {
            return Err(StripeError::invalid_param(
                param,
                format!(
                    "Charge {charge_id} has a dispute ({}, {}): it has been charged back, so it cannot be \
                     refunded.",
                    dispute.id, dispute.status
                ),
            )
            .with_code("charge_disputed"));
        }
        let charge = self
            .charges
            .get_mut(&charge_id)
            .ok_or_else(|| StripeError::no_such(Charge::NOUN, &charge_id, param))?;
        if charge.status != "succeeded" {
            return Err(StripeError::invalid_param(
                param,
                format!("Charge {charge_id} did not succeed, so there is nothing to refund."),
            ));
        }
        let remaining = charge.amount - charge.amount_refunded;
        if remaining <= 0 {
            return Err(StripeError::invalid_param(
                param,
                format!("Charge {charge_id} has already been refunded."),
            )
            .with_code("charge_already_refunded"));
        }
        let amount = req.amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(StripeError::invalid_param(
                "amount",
                format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"),
            )
            .with_code("amount_too_large"));
        }
        charge.amount_refunded += amount;
        charge.refunded = charge.amount_refunded == charge.amount;
        // Refunds come out of the balance whatever is available (it may go below zero).
        self.balance.adjust(&charge.currency, -amount, ctx.now);
        let refund = Refund {
            id: new_id("re"),
            object: "refund",
            created: ctx.now.timestamp(),
            amount,
            currency: charge.currency.clone(),
            charge: charge_id,
            payment_intent: charge.payment_intent.clone(),
            reason: req.reason,
            status: "succeeded",
            metadata: req.metadata,
        };
        self.ledger.push(LedgerEntry::refund(&refund, charge.customer.clone(), ctx.idempotency_key, ctx.now));
        let body = json_of(&refund);
        self.refunds.insert(refund);
        Ok(Executed::ok(body, true).with_events(&["refund.created"]))
    }

    fn create_transfer(&mut self, req: NewTransfer, ctx: &Context) -> Result<Executed, StripeError> {
        if self.accounts.get(&req.destination).is_none() {
            return Err(StripeError::no_such("destination", &req.destination, "destination"));
        }
        let enforced = ctx.funds_delay.is_some();
        if !self.balance.take(&req.currency, req.amount, ctx.now, enforced) {
            return Err(StripeError::invalid(
                "You have insufficient available funds in your Stripe account. Try adding funds directly to \
                 your available balance by creating Top-ups.",
            )
            .with_code("balance_insufficient"));
        }
        let transfer = Transfer {
            id: new_id("tr"),
            object: "transfer",
            created: ctx.now.timestamp(),
            amount: req.amount,
            amount_reversed: 0,
            currency: req.currency,
            destination: req.destination,
            description: req.description,
            transfer_group: req.transfer_group,
            reversed: false,
            metadata: req.metadata,
            livemode: false,
        };
        self.ledger.push(LedgerEntry::transfer(&transfer, ctx.idempotency_key, ctx.now));
        let body = json_of(&transfer);
        self.transfers.insert(transfer);
        Ok(Executed::ok(body, true).with_events(&["transfer.created"]))
    }
}

//! Reconciliation with the provider: the provider's charges, refunds and transfers of a week,
//! listed through the provider's API page by page, matched one to one with what the ledger
//! records, and its disputes of the week's payments with the disputes the product recorded
//! ([`disputes`]). Charges at the provider that the ledger does not explain become stray charges,
//! and a finance member's approval repairs them: each is recorded in the ledger and refunded
//! through the same idempotent refund path as every refund. Disputes are not repaired: they are
//! answered on /disputes. Runs after every completed run as well.

mod disputes;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::billing::ledger::{Account, Transaction};
use crate::db::audit::{Actor, NewAuditEntry};
use crate::db::reconcile::{LedgerItem, NewStray, ReconciliationRow};
use crate::db::Db;
use crate::error::Error;
use crate::psp::stripe::StripeClient;
use crate::psp::ProviderError;
use app::model::money::{BillingCurrency, Money};
use app::model::reconcile::{MatchClass, ReconItem, Reconciliation, StrayCharge};
use app::model::refund::RefundState;
use app::model::week::BillingWeek;

/// One movement at the provider: id, amount, user, invoice or payout, and (charges) the charge id.
struct ProviderItem {
    id: String,
    amount: i64,
    user_id: Option<String>,
    reference: Option<i64>,
    charge_id: Option<String>,
}

/// The ledger's side of one kind of movement while the provider's is listed: the amount booked
/// under each provider id (`None`: the attempt succeeded but the ledger has no transaction for
/// it) and whether the provider listed it. Only ids and amounts are held, and of the provider's
/// objects only those that do not match (at a million invoices, whole records of both sides made
/// most of a run's peak memory); the ledger's records of the few that do not match are read
/// again, in full, after the listing.
#[derive(Default)]
struct LedgerSide {
    booked: Mutex<HashMap<Box<str>, Booked>>,
    /// How many listed movements matched.
    matched: AtomicI64,
}

/// What the ledger booked under one provider id, and whether the provider listed it.
#[derive(Default)]
struct Booked {
    amount: Option<i64>,
    listed: bool,
}

impl LedgerSide {
    fn add(&self, item: &LedgerItem) {
        let mut booked = self.booked.lock().expect("not poisoned");
        let entry = booked.entry(item.0.as_str().into()).or_default();
        // Where two rows name one provider id, the one with an amount counts.
        if item.4.is_some() {
            entry.amount = item.4;
        }
    }

    /// Notes that the provider listed `id` for `amount`; whether that matches what was booked.
    fn listed(&self, id: &str, amount: i64) -> bool {
        let mut booked = self.booked.lock().expect("not poisoned");
        let matched = booked.get_mut(id).is_some_and(|b| {
            b.listed = true;
            b.amount == Some(amount)
        });
        if matched {
            self.matched.fetch_add(1, Ordering::Relaxed);
        }
        matched
    }

    /// Whether the provider listed `id` (as a movement of the week).
    fn was_listed(&self, id: &str) -> bool {
        self.booked.lock().expect("not poisoned").get(id).is_some_and(|b| b.listed)
    }

    /// The ids booked with an amount that the provider did not list.
    fn not_listed(&self) -> HashSet<Box<str>> {
        let booked = self.booked.lock().expect("not poisoned");
        booked.iter().filter(|(_, b)| b.amount.is_some() && !b.listed).map(|(id, _)| id.clone()).collect()
    }
}

/// The provider's `object` of `amount` as an item, unless it matches what the ledger booked.
fn unmatched(
    ledger: &LedgerSide,
    object: &Value,
    amount: i64,
    item: impl FnOnce() -> ProviderItem,
) -> Option<ProviderItem> {
    let id = object["id"].as_str().unwrap_or_default();
    (!ledger.listed(id, amount)).then(item)
}

fn metadata_id(object: &Value, key: &str) -> Option<i64> {
    object["metadata"][key].as_str().and_then(|v| v.parse().ok())
}

/// Objects per slice of a provider list: reconciliation lists the week's movements in slices
/// of creation time holding about this many each (a page; a second's movements at least, the
/// resolution of Stripe's `created`), side by side.
const SLICE: i64 = 100;

/// Slices of a list listed at once: enough to keep `rate_per_second` requests a second going to
/// a provider that answers within a quarter of a second, each within the rate; 16 to 256.
fn slices_in_flight(rate_per_second: u32) -> usize {
    (rate_per_second as usize / 4).clamp(16, 256)
}

/// How much earlier than the week's first attempt a movement of the week may be dated at the
/// provider, in seconds: an attempt is written before its call, so only a clock ahead of the
/// provider's dates a payment before it. A clock further ahead than this would leave the
/// earliest payments out of the listing and report them missing at the provider (a false alarm,
/// never a silent miss).
const CLOCK_MARGIN_SECONDS: i64 = 60;

/// Creation-time slices `[from, until)` (seconds; `None` is open) cut at `marks`, the starts of
/// every [`SLICE`]-th attempt, the last open-ended; before them [`CLOCK_MARGIN_SECONDS`] in
/// slices of one second (the week before's run may have ended just before this one started:
/// its payments are skipped a second at a time, not paged through). No attempt, one open slice:
/// everything is listed.
fn slices(marks: &[i64]) -> Vec<(Option<i64>, Option<i64>)> {
    let mut cuts: Vec<i64> = marks.to_vec();
    cuts.dedup();
    let Some(&first) = cuts.first() else {
        return vec![(None, None)];
    };
    let margin = (first - CLOCK_MARGIN_SECONDS..first).map(|second| (Some(second), Some(second + 1)));
    let ends = cuts.iter().skip(1).map(|c| Some(*c)).chain([None]);
    margin.chain(cuts.iter().map(|c| Some(*c)).zip(ends)).collect()
}

/// The objects of list `path` created in `slices`, listed side by side, the pages of each in
/// turn, every request within `limiter`, `in_flight` slices at once; `keep` picks what is
/// needed of each object.
pub(crate) async fn list_slices<T>(
    client: &StripeClient,
    path: &str,
    slices: &[(Option<i64>, Option<i64>)],
    (limiter, in_flight): (&crate::psp::pace::Pace, usize),
    keep: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, ProviderError> {
    use futures::{StreamExt, TryStreamExt};
    let mut paths = Vec::with_capacity(slices.len());
    for (from, until) in slices {
        let bounds: Vec<String> =
            [from.map(|t| format!("created%5Bgte%5D={t}")), until.map(|t| format!("created%5Blt%5D={t}"))]
                .into_iter()
                .flatten()
                .collect();
        paths.push(if bounds.is_empty() { path.to_owned() } else { format!("{path}?{}", bounds.join("&")) });
    }
    // Side by side as each ends (a slice of many pages does not hold up the next ones), then
    // put back in order.
    let lists: Vec<_> = paths
        .into_iter()
        .enumerate()
        .map(|(at, path)| {
            let keep = &keep;
            async move { list_kept(client, path, limiter, keep).await.map(|kept| (at, kept)) }
        })
        .collect();
    let mut listed: Vec<(usize, Vec<T>)> =
        futures::stream::iter(lists).buffer_unordered(in_flight).try_collect().await?;
    listed.sort_by_key(|(at, _)| *at);
    Ok(listed.into_iter().flat_map(|(_, kept)| kept).collect())
}

/// Whether the provider lists by creation time (Stripe does; localstripe refuses it): one
/// request of one object.
async fn lists_by_creation_time(
    client: &StripeClient,
    limiter: &crate::psp::pace::Pace,
) -> Result<bool, ProviderError> {
    limiter.until_ready().await;
    match client.list_page("/v1/payment_intents?created%5Bgte%5D=0&limit=1").await {
        Ok(_) => Ok(true),
        Err(ProviderError::Refused(message)) if message.contains(": 400 ") => {
            tracing::warn!(%message, "the provider refuses the created filter; listing everything");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// What `keep` picks of every object of list `path`, page after page within `limiter`.
async fn list_kept<T>(
    client: &StripeClient,
    path: String,
    limiter: &crate::psp::pace::Pace,
    keep: &impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, ProviderError> {
    let mut kept = Vec::new();
    client.list_each(&path, Some(limiter), |page| kept.extend(page.iter().filter_map(keep))).await?;
    Ok(kept)
}

/// The ledger's charges, refunds and transfers of a week, matched as the provider's are listed.
#[derive(Default)]
struct Ledger {
    charges: LedgerSide,
    refunds: LedgerSide,
    transfers: LedgerSide,
}

/// The provider's side of a week: its charges, refunds and transfers that do not match the
/// ledger, and its disputes of the week's payments.
struct ProviderSide {
    charges: Vec<ProviderItem>,
    refunds: Vec<ProviderItem>,
    transfers: Vec<ProviderItem>,
    disputes: Vec<disputes::Listed>,
}

/// The provider's charges, refunds and transfers of `week` that do not match `ledger` (every
/// object listed is noted in it), and its disputes of the week's payments. Listed in slices of
/// creation time from the week's first attempt on (not the provider's whole history), side by
/// side, each object matched as its page comes and kept only when it does not match. A provider
/// that does not list by creation time (localstripe) is listed whole.
async fn provider_side(
    db: &Db,
    client: &StripeClient,
    week: &str,
    ledger: &Ledger,
) -> Result<ProviderSide, Error> {
    let failed = |e: ProviderError| Error::internal("listing the provider's records", e);
    let stored = |e: sqlx::Error| Error::internal("reconciling", e);
    let settings = crate::run::load_settings(db).await.map_err(stored)?;
    let limiter = crate::run::pace(&settings, db);
    let pace = (&limiter, slices_in_flight(settings.rate_per_second));
    let (mut charge_marks, mut transfer_marks) = db.attempt_marks(week, SLICE).await.map_err(stored)?;
    let anything = !(charge_marks.is_empty() && transfer_marks.is_empty());
    if anything && !lists_by_creation_time(client, &limiter).await.map_err(failed)? {
        (charge_marks, transfer_marks) = (Vec::new(), Vec::new());
    }
    let of_week = |o: &Value| o["metadata"]["week"].as_str() == Some(week);
    // Payments are listed as payment intents, whose metadata the product sets (a charge carries
    // its payment intent's metadata at Stripe, but not at every Stripe-shaped server).
    let charge_slices = slices(&charge_marks);
    let charges = list_slices(client, "/v1/payment_intents", &charge_slices, pace, |pi| {
        if pi["status"] != "succeeded" || !of_week(pi) {
            return None;
        }
        let amount = pi["amount_received"].as_i64().or_else(|| pi["amount"].as_i64()).unwrap_or_default();
        unmatched(&ledger.charges, pi, amount, || ProviderItem {
            id: pi["id"].as_str().unwrap_or_default().to_owned(),
            amount,
            user_id: pi["metadata"]["user_id"].as_str().map(str::to_owned),
            reference: metadata_id(pi, "invoice_id"),
            charge_id: match &pi["latest_charge"] {
                Value::String(id) => Some(id.clone()),
                Value::Object(charge) => charge.get("id").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            },
        })
    });
    // A refund is made after its payment: from the first slice's start on, in one listing. One
    // the ledger does not match is kept with its payment intent until the week's are known.
    let refund_slices = [(charge_slices[0].0, None)];
    let refunds = list_slices(client, "/v1/refunds", &refund_slices, pace, |r| {
        let intent = r["payment_intent"].as_str().filter(|_| r["status"] == "succeeded")?;
        let amount = r["amount"].as_i64().unwrap_or_default();
        let refund = unmatched(&ledger.refunds, r, amount, || ProviderItem {
            id: r["id"].as_str().unwrap_or_default().to_owned(),
            amount,
            user_id: None,
            reference: metadata_id(r, "invoice_id"),
            charge_id: None,
        })?;
        Some((intent.to_owned(), refund))
    });
    let transfers = async {
        let listed = list_slices(client, "/v1/transfers", &slices(&transfer_marks), pace, |t| {
            let amount = t["amount"].as_i64().unwrap_or_default();
            of_week(t).then_some(())?;
            unmatched(&ledger.transfers, t, amount, || ProviderItem {
                id: t["id"].as_str().unwrap_or_default().to_owned(),
                amount,
                user_id: t["metadata"]["driver_id"].as_str().map(str::to_owned),
                reference: metadata_id(t, "payout_id"),
                charge_id: None,
            })
        })
        .await;
        match listed {
            // A Stripe-shaped server without transfers (localstripe): none were made there.
            Err(ProviderError::Refused(message)) if message.contains(": 404 ") => {
                tracing::warn!(%message, "the provider lists no transfers; reconciling charges and refunds only");
                Ok(Vec::new())
            }
            listed => listed,
        }
    };
    // A dispute is opened after its payment: from the first slice's start on, in one listing,
    // kept until the week's payments are known. Disputes are few; each is kept.
    let disputes = async {
        match list_slices(client, "/v1/disputes", &refund_slices, pace, disputes::listed).await {
            // A Stripe-shaped server without disputes (localstripe): none were opened there.
            Err(ProviderError::Refused(message)) if message.contains(": 404 ") => {
                tracing::warn!(%message, "the provider lists no disputes; reconciling without them");
                Ok(Vec::new())
            }
            listed => listed,
        }
    };
    // The four lists side by side.
    let (charges, refunds, transfers, disputes) =
        futures::try_join!(charges, refunds, transfers, disputes).map_err(failed)?;
    // The refunds of the week's payments: those the ledger matched, and those of a payment the
    // provider listed as the week's.
    let unmatched_charges: BTreeSet<&str> = charges.iter().map(|c| c.id.as_str()).collect();
    let refunds = refunds
        .into_iter()
        .filter(|(intent, _)| {
            ledger.charges.was_listed(intent) || unmatched_charges.contains(intent.as_str())
        })
        .map(|(_, r)| r)
        .collect();
    // The disputes of the week's payments, as refunds are picked, or of its metadata's week.
    let disputes = disputes
        .into_iter()
        .filter(|d| {
            d.names_week(week)
                || d.payment_intent()
                    .is_some_and(|pi| ledger.charges.was_listed(pi) || unmatched_charges.contains(pi))
        })
        .collect();
    Ok(ProviderSide { charges, refunds, transfers, disputes })
}

/// The items of one kind of movement that do not match: the provider's `unmatched` (an amount
/// other than booked, or nothing booked) and what the ledger booked that the provider did not
/// list; `details` are the ledger's records of their ids, read after the listing. Returns also
/// how many of `unmatched` the ledger booked meanwhile (a payment recorded while the listing
/// went on): they match.
fn unmatched_items(
    kind: &str,
    unmatched: &[ProviderItem],
    not_listed: &HashSet<Box<str>>,
    details: &[LedgerItem],
    currency: BillingCurrency,
) -> (i64, Vec<ReconItem>) {
    let money = |m: i64| Money::from_minor(m, currency);
    let split = |r: Option<i64>| if kind == "transfer" { (None, r) } else { (r, None) };
    let booked = |id: &str| details.iter().rev().find(|l| l.0 == id && l.4.is_some());
    let (mut matched, mut items) = (0, Vec::new());
    for p in unmatched {
        match booked(&p.id) {
            Some(l) if l.4 == Some(p.amount) => matched += 1,
            Some(l) => {
                let (invoice_id, payout_id) = split(l.1);
                items.push(ReconItem {
                    class: MatchClass::AmountMismatch,
                    kind: kind.into(),
                    provider_id: p.id.clone(),
                    provider_amount: Some(money(p.amount)),
                    ledger_amount: l.4.map(money),
                    user_id: l.2.clone(),
                    invoice_id,
                    payout_id,
                    attempt_key: l.3.clone(),
                    note: None,
                });
            }
            None => {
                let (invoice_id, payout_id) = split(p.reference);
                let attempt = details.iter().find(|l| l.0 == p.id).and_then(|l| l.3.clone());
                items.push(ReconItem {
                    class: MatchClass::ProviderOnly,
                    kind: kind.into(),
                    provider_id: p.id.clone(),
                    provider_amount: Some(money(p.amount)),
                    ledger_amount: None,
                    user_id: p.user_id.clone(),
                    invoice_id,
                    payout_id,
                    attempt_key: attempt,
                    note: None,
                });
            }
        }
    }
    for l in details.iter().filter(|l| l.4.is_some() && not_listed.contains(l.0.as_str())) {
        let (invoice_id, payout_id) = split(l.1);
        items.push(ReconItem {
            class: MatchClass::LedgerOnly,
            kind: kind.into(),
            provider_id: l.0.clone(),
            provider_amount: None,
            ledger_amount: l.4.map(money),
            user_id: l.2.clone(),
            invoice_id,
            payout_id,
            attempt_key: l.3.clone(),
            note: None,
        });
    }
    (matched, items)
}

/// Reconciles `week` and stores the result (and the stray charges found) on behalf of `by`.
pub async fn run(
    db: &Db,
    client: &StripeClient,
    currency: BillingCurrency,
    week: &str,
    by: &str,
) -> Result<Reconciliation, Error> {
    let week = BillingWeek::parse(week).map_err(|m| Error::invalid("week", m))?.to_string();
    let failed = |e: sqlx::Error| Error::internal("reconciling", e);
    let ledger = Ledger::default();
    db.ledger_charges(&week, |item| ledger.charges.add(&item)).await.map_err(failed)?;
    db.ledger_refunds(&week, |item| ledger.refunds.add(&item)).await.map_err(failed)?;
    db.ledger_transfers(&week, |item| ledger.transfers.add(&item)).await.map_err(failed)?;
    let ProviderSide { charges, refunds, transfers, disputes } =
        provider_side(db, client, &week, &ledger).await?;
    let mut matched = 0;
    let mut items = Vec::new();
    for (kind, unmatched, side) in [
        ("charge", &charges, &ledger.charges),
        ("refund", &refunds, &ledger.refunds),
        ("transfer", &transfers, &ledger.transfers),
    ] {
        let not_listed = side.not_listed();
        let mut details = Vec::new();
        if !(unmatched.is_empty() && not_listed.is_empty()) {
            let wanted: HashSet<&str> =
                unmatched.iter().map(|p| p.id.as_str()).chain(not_listed.iter().map(|id| &**id)).collect();
            let mut keep = |item: LedgerItem| {
                if wanted.contains(item.0.as_str()) {
                    details.push(item)
                }
            };
            match kind {
                "charge" => db.ledger_charges(&week, &mut keep).await,
                "refund" => db.ledger_refunds(&week, &mut keep).await,
                _ => db.ledger_transfers(&week, &mut keep).await,
            }
            .map_err(failed)?;
        }
        let (late, unmatched) = unmatched_items(kind, unmatched, &not_listed, &details, currency);
        matched += side.matched.load(Ordering::Relaxed) + late;
        items.extend(unmatched);
    }
    let (disputes_matched, dispute_items) =
        disputes::reconcile(db, &week, &disputes, currency).await.map_err(failed)?;
    matched += disputes_matched;
    items.extend(dispute_items);
    let stray: Vec<NewStray> = items
        .iter()
        .filter(|i| i.kind == "charge" && i.class == MatchClass::ProviderOnly)
        .filter_map(|i| {
            let charge = charges.iter().find(|c| c.id == i.provider_id)?;
            Some(NewStray {
                payment_intent: charge.id.clone(),
                charge_id: charge.charge_id.clone().unwrap_or_default(),
                invoice_id: charge.reference,
                user_id: charge.user_id.clone(),
                amount_minor: charge.amount,
                currency: currency.code().to_owned(),
            })
        })
        .collect();
    let json = serde_json::to_value(&items).expect("items serialise");
    let id = db
        .save_reconciliation(&week, by, matched, items.len() as i64, &json, &stray)
        .await
        .map_err(failed)?;
    tracing::info!(%week, matched, unmatched = items.len(), "reconciled with the provider");
    latest(db, &week)
        .await?
        .filter(|r| r.id == id)
        .ok_or_else(|| Error::internal("reading the reconciliation just stored", "it vanished"))
}

/// The latest reconciliation of `week`, with its stray charges.
pub async fn latest(db: &Db, week: &str) -> Result<Option<Reconciliation>, Error> {
    let failed = |e: sqlx::Error| Error::internal("reading a reconciliation", e);
    let Some(row) = db.latest_reconciliation(week).await.map_err(failed)? else {
        return Ok(None);
    };
    Ok(Some(view(db, row).await?))
}

async fn view(db: &Db, row: ReconciliationRow) -> Result<Reconciliation, Error> {
    let failed = |e: sqlx::Error| Error::internal("reading a reconciliation", e);
    let items: Vec<ReconItem> =
        serde_json::from_str(&row.items).map_err(|e| Error::internal("reading a reconciliation", e))?;
    let stray = db
        .stray_charges(&row.week)
        .await
        .map_err(failed)?
        .into_iter()
        .map(|s| {
            let currency = BillingCurrency::from_code(&s.currency)
                .map_err(|e| Error::internal("reading a reconciliation", e))?;
            Ok(StrayCharge {
                payment_intent: s.payment_intent,
                charge_id: s.charge_id,
                invoice_id: s.invoice_id,
                user_id: s.user_id,
                amount: Money::from_minor(s.amount_minor, currency),
                refund_id: s.refund_id,
                refund_state: s.refund_state.as_deref().and_then(RefundState::parse),
                repaired_by: s.repaired_by,
                undecided: s.undecided,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Reconciliation {
        id: row.id,
        week: row.week,
        ran_at: crate::db::rfc3339(row.ran_at),
        ran_by: row.ran_by,
        matched: row.matched,
        unmatched: row.unmatched,
        items,
        stray,
        acknowledged_by: row.acknowledged_by,
    })
}

/// Repairs the week's stray charges that `reviewed` names, which must be exactly those not
/// repaired yet (what the reviewer saw): each is recorded in the ledger and refunded, once.
/// Running it again repairs nothing more.
pub async fn repair(
    db: &Db,
    client: Option<&StripeClient>,
    actor: &Actor,
    week: &str,
    reviewed: &[String],
) -> Result<Reconciliation, Error> {
    let week = BillingWeek::parse(week).map_err(|m| Error::invalid("week", m))?.to_string();
    let failed = |e: sqlx::Error| Error::internal("repairing", e);
    let stray = db.stray_charges(&week).await.map_err(failed)?;
    // Proposed for repair: not repaired, filed under an invoice, and no attempt of the invoice
    // waiting for its outcome (those wait, listed as such).
    let open: BTreeSet<&str> = stray
        .iter()
        .filter(|s| s.refund_id.is_none() && s.invoice_id.is_some() && !s.undecided)
        .map(|s| s.payment_intent.as_str())
        .collect();
    let asked: BTreeSet<&str> = reviewed.iter().map(String::as_str).collect();
    if let Some(unknown) = asked.iter().find(|pi| !stray.iter().any(|s| s.payment_intent == **pi)) {
        return Err(Error::invalid("payment_intents", format!("{unknown} is not a stray charge of {week}")));
    }
    if let Some(waiting) = stray
        .iter()
        .find(|s| s.undecided && s.refund_id.is_none() && asked.contains(s.payment_intent.as_str()))
    {
        return Err(Error::conflict(
            "payment_intents",
            format!(
                "{} waits for an outcome: invoice {} has a charge attempt whose outcome is not known yet; reconcile again once it is",
                waiting.payment_intent,
                waiting.invoice_id.unwrap_or_default()
            ),
        ));
    }
    let repaired: BTreeSet<&str> =
        stray.iter().filter(|s| s.refund_id.is_some()).map(|s| s.payment_intent.as_str()).collect();
    if asked.is_subset(&repaired) {
        // Approved before: nothing more to do.
        return latest(db, &week).await?.ok_or_else(|| Error::NotFound(format!("reconciliation of {week}")));
    }
    if asked != open {
        return Err(Error::Conflict {
            field: "payment_intents".into(),
            message: format!(
                "the proposed repair changed since it was reviewed: {} charge(s) await repair, {} reviewed; reload and review again",
                open.len(),
                asked.len()
            ),
        });
    }
    let mut made = Vec::new();
    for s in stray.iter().filter(|s| asked.contains(s.payment_intent.as_str())) {
        let currency =
            BillingCurrency::from_code(&s.currency).map_err(|e| Error::internal("repairing", e))?;
        let ledger = Transaction::transfer(
            "stray_charge",
            s.payment_intent.clone(),
            Account::ProviderClearing,
            Account::UnexplainedCharges,
            Money::from_minor(s.amount_minor, currency),
        )
        .map_err(|e| Error::internal("repairing", e))?
        .of_week(&week);
        let mut audit =
            NewAuditEntry::new(actor, "reconcile.repair", "invoice", s.invoice_id.unwrap_or_default());
        audit.detail = Some(format!(
            "refund of {} {} taken by {} ({}) that the ledger does not explain",
            Money::from_minor(s.amount_minor, currency),
            currency.code(),
            s.payment_intent,
            s.user_id.clone().unwrap_or_default()
        ));
        if let Some(id) = db
            .repair_stray(&s.payment_intent, &actor.name, actor.staff_id, &ledger, &audit)
            .await
            .map_err(failed)?
        {
            made.push(id);
        }
    }
    if let Some(client) = client {
        for id in made {
            if let Err(e) =
                crate::refunds::execute(db, client, id, &format!("repair-{}", std::process::id()), true).await
            {
                tracing::warn!(refund = id, error = %e, "sending a repair refund failed; the refund worker tries again");
            }
        }
    }
    latest(db, &week).await?.ok_or_else(|| Error::NotFound(format!("reconciliation of {week}")))
}

/// Acknowledges the week's latest reconciliation on behalf of `principal` (audited).
pub async fn acknowledge(
    db: &Db,
    principal: &app::model::staff::Principal,
    week: &str,
) -> Result<Reconciliation, Error> {
    let failed = |e: sqlx::Error| Error::internal("acknowledging a reconciliation", e);
    let row = db
        .latest_reconciliation(week)
        .await
        .map_err(failed)?
        .ok_or_else(|| Error::NotFound(format!("a reconciliation of {week}")))?;
    let mut audit =
        NewAuditEntry::new(&Actor::staff(principal), "reconcile.acknowledge", "reconciliation", row.id);
    audit.detail = Some(format!("{week}: {} not matched", row.unmatched));
    db.acknowledge_reconciliation(row.id, &principal.staff.email, &audit).await.map_err(failed)?;
    latest(db, week).await?.ok_or_else(|| Error::NotFound(format!("a reconciliation of {week}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_all_time_from_the_margin_before_the_first_attempt_without_overlap() {
        assert_eq!(slices(&[]), [(None, None)], "no attempt: everything is listed");
        let start = 1_800_000_000;
        let margin = CLOCK_MARGIN_SECONDS as usize;
        let one = slices(&[start]);
        assert_eq!(one.len(), margin + 1);
        assert_eq!(one[0], (Some(start - CLOCK_MARGIN_SECONDS), Some(start - CLOCK_MARGIN_SECONDS + 1)));
        assert_eq!(one[margin], (Some(start), None));
        // Marks in the same second make one cut, not an empty slice.
        let cut = slices(&[start, start + 5, start + 5, start + 9]);
        assert_eq!(
            cut[margin..],
            [(Some(start), Some(start + 5)), (Some(start + 5), Some(start + 9)), (Some(start + 9), None)]
        );
        assert!(cut[..margin].iter().all(|(from, until)| until.zip(*from).is_some_and(|(u, f)| u - f == 1)));
        for pair in cut.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "each slice ends where the next starts");
        }
    }
}

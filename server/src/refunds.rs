//! Refunds: the one path every refund takes, from the dashboard, the JSON API or a repair.
//!
//! A request is checked field by field (nothing is written when one is wrong), then written once
//! per request id with its amount reserved against the invoice's charge (see `db::refunds`).
//! Finance and admin refunds, and support refunds within their limits, go to the provider at once;
//! support refunds above the limits wait for a finance or admin approval by someone else. The
//! provider is called with the refund's own idempotency key, written before the first call and
//! reused by every retry; a call without an answer, or refused, is asked again later by the
//! refund worker of `billing serve`, so a refund is never dropped.

use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveTime, TimeZone, Utc};

use crate::auth::four_eyes::{check_request_id, decision_note, four_eyes};
use crate::billing::ledger::{Account, Transaction};
use crate::config::Config;
use crate::db::audit::{Actor, NewAuditEntry};
use crate::db::refunds::{Inserted, RefundClaim, RefundInsert, RefundRow};
use crate::db::Db;
use crate::error::Error;
use crate::psp::stripe::StripeClient;
use crate::psp::{Metadata, ProviderError, RefundRequest};
use app::auth::Action;
use app::model::money::{BillingCurrency, Money};
use app::model::refund::{NewRefund, RefundAnswer, RefundLimits, RefundReason, RefundState, RefundView};
use app::model::staff::{Principal, Role};

/// How long a worker holds a refund for one provider call.
const LEASE: StdDuration = StdDuration::from_secs(60);
/// The longest a note may be.
const MAX_NOTE: usize = 1000;

/// The refund as the pages and the API show it.
pub fn view(row: &RefundRow) -> Result<RefundView, Error> {
    let currency =
        BillingCurrency::from_code(&row.currency).map_err(|e| Error::internal("reading a refund", e))?;
    Ok(RefundView {
        id: row.id,
        request_id: row.request_id.clone(),
        invoice_id: row.invoice_id,
        user_id: row.user_id.clone(),
        week: row.week.clone(),
        kind: row.kind.clone(),
        amount: Money::from_minor(row.amount_minor, currency),
        reason: RefundReason::parse(&row.reason).map_err(|e| Error::internal("reading a refund", e))?,
        note: row.note.clone(),
        lines: row.lines.split(',').filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        state: RefundState::parse(&row.state)
            .ok_or_else(|| Error::internal("reading a refund", format!("state {:?}", row.state)))?,
        requested_by: row.requested_by.clone(),
        requested_at: crate::db::rfc3339(row.requested_at),
        decided_by: row.decided_by.clone(),
        decided_at: row.decided_at.map(crate::db::rfc3339),
        decision_note: row.decision_note.clone(),
        idempotency_key: row.idempotency_key.clone(),
        attempts: row.attempts,
        provider_id: row.provider_id.clone(),
        detail: row.detail.clone(),
    })
}

/// The refunds waiting for a finance or admin member's decision, oldest first (at most 200).
pub async fn awaiting(db: &Db) -> Result<Vec<RefundView>, Error> {
    let rows = db.refunds_awaiting_approval(200).await.map_err(|e| Error::internal("listing refunds", e))?;
    rows.iter().map(view).collect()
}

/// The stored limits, or the defaults (50 and 200 of the currency).
pub async fn limits(db: &Db, currency: BillingCurrency) -> Result<RefundLimits, Error> {
    let stored =
        db.setting(RefundLimits::KEY).await.map_err(|e| Error::internal("reading the refund limits", e))?;
    match stored {
        Some(s) => {
            serde_json::from_value(s.value).map_err(|e| Error::internal("reading the refund limits", e))
        }
        None => Ok(RefundLimits::default_for(currency)),
    }
}

/// What `principal` may refund alone, per refund and per day, when their role is limited.
pub async fn limits_of(db: &Db, config: &Config, role: Role) -> Result<Option<(i64, i64)>, Error> {
    if role.can(Action::ApproveRefund) {
        return Ok(None);
    }
    let limits = limits(db, config.currency).await?;
    let parsed = limits
        .parse(config.currency)
        .map_err(|(field, m)| Error::internal("reading the refund limits", format!("{field}: {m}")))?;
    Ok(Some(parsed))
}

/// The caller's limits and what is left of today's: `(per refund, per day, left today)` in minor
/// units; `None` for the roles without limits.
pub async fn limits_left(
    db: &Db,
    config: &Config,
    principal: &Principal,
) -> Result<Option<(i64, i64, i64)>, Error> {
    let Some((per_refund, per_day)) = limits_of(db, config, principal.staff.role).await? else {
        return Ok(None);
    };
    let today = db
        .refunded_alone_since(&principal.staff.email, day_start(config))
        .await
        .map_err(|e| Error::internal("reading today's refunds", e))?;
    Ok(Some((per_refund, per_day, (per_day - today).max(0))))
}

/// The amount asked for, in minor units: `amount`, or the sum of the chosen lines, or both when
/// they agree. Checked against the currency and the invoice's lines.
async fn amount_of(
    db: &Db,
    invoice_id: i64,
    currency: BillingCurrency,
    new: &NewRefund,
) -> Result<(i64, String), Error> {
    let amount = match new.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(text) => {
            let money = Money::parse(text, currency).map_err(|e| Error::invalid("amount", e.to_string()))?;
            if money.minor() <= 0 {
                return Err(Error::invalid(
                    "amount",
                    format!("{text} is not more than zero; a refund gives money back"),
                ));
            }
            Some(money.minor())
        }
        None => None,
    };
    let mut chosen: Vec<&str> = new.lines.iter().map(|l| l.trim()).collect();
    chosen.sort_unstable();
    if chosen.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid("lines", "a line is chosen twice"));
    }
    if chosen.is_empty() {
        return amount
            .map(|a| (a, String::new()))
            .ok_or_else(|| Error::invalid("amount", "give an amount, or choose lines of the invoice"));
    }
    let detail = db
        .invoice_detail(invoice_id)
        .await
        .map_err(|e| Error::internal("reading an invoice", e))?
        .ok_or_else(|| Error::NotFound(format!("invoice {invoice_id}")))?;
    let mut sum = 0i64;
    for ride in &chosen {
        let line = detail.lines.iter().find(|l| l.ride_id == *ride).ok_or_else(|| {
            Error::invalid("lines", format!("ride {ride} is not a line of invoice {invoice_id}"))
        })?;
        sum += line.amount.minor();
    }
    if let Some(amount) = amount {
        if amount != sum {
            return Err(Error::invalid(
                "amount",
                format!(
                    "{} does not match the chosen lines, which add up to {}",
                    Money::from_minor(amount, currency),
                    Money::from_minor(sum, currency)
                ),
            ));
        }
    }
    Ok((sum, chosen.join(",")))
}

/// Handles a refund request on behalf of `principal`: 201/202/200 by [`RefundAnswer::status`],
/// or an error naming the field. A refund that may go out now is sent to the provider before
/// this returns (when `provider` is given); its state says how that went.
pub async fn request(
    db: &Db,
    config: &Config,
    provider: Option<&StripeClient>,
    principal: &Principal,
    invoice_id: i64,
    new: NewRefund,
) -> Result<RefundAnswer, Error> {
    let request_id = new.request_id.trim().to_owned();
    check_request_id(&request_id)?;
    let failed = |e: sqlx::Error| Error::internal("recording a refund", e);
    if let Some(existing) = db.refund_by_request(&request_id).await.map_err(failed)? {
        return repeated(db, existing, invoice_id, &new).await;
    }
    let reason = RefundReason::parse(&new.reason).map_err(|m| Error::invalid("reason", m))?;
    let note = new.note.clone().unwrap_or_default().trim().to_owned();
    if note.chars().count() > MAX_NOTE {
        return Err(Error::invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    if reason == RefundReason::Other && note.is_empty() {
        return Err(Error::invalid("note", "say what happened when the reason is \"other\""));
    }
    let invoice = db
        .refundable(invoice_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| Error::NotFound(format!("invoice {invoice_id}")))?;
    if let Some(user) = new.user_id.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        if user != invoice.user_id {
            return Err(Error::invalid(
                "user_id",
                format!("invoice {invoice_id} is not {user}'s; it belongs to another customer"),
            ));
        }
    }
    if invoice.charge_state.as_deref() != Some("charged") {
        let state = invoice.charge_state.as_deref().unwrap_or("not charged: its week has not been run");
        return Err(Error::invalid(
            "invoice",
            format!("invoice {invoice_id} was not charged ({state}), so there is nothing to refund"),
        ));
    }
    refuse_if_disputed(db, invoice_id).await?;
    let currency = BillingCurrency::from_code(&invoice.currency)
        .map_err(|e| Error::internal("reading an invoice", e))?;
    let (amount_minor, lines) = amount_of(db, invoice_id, currency, &new).await?;
    let limits = limits_of(db, config, principal.staff.role).await?;
    // Support's limits are amounts of the configured currency: never compared with another's.
    if limits.is_some() && currency != config.currency {
        return Err(Error::invalid(
            "amount",
            format!(
                "invoice {invoice_id} is in {}, and support's refund limits are in {}: a finance member refunds it",
                currency.code(),
                config.currency.code()
            ),
        ));
    }
    let actor = Actor::staff(principal);
    let mut audit = NewAuditEntry::new(&actor, "refund.request", "invoice", invoice_id);
    audit.detail = Some(format!(
        "{} {} for {} ({}){}",
        Money::from_minor(amount_minor, currency),
        currency.code(),
        invoice.user_id,
        reason.as_str(),
        if note.is_empty() { String::new() } else { format!(": {note}") }
    ));
    let insert = RefundInsert {
        request_id: request_id.clone(),
        invoice_id,
        user_id: invoice.user_id.clone(),
        amount_minor,
        currency: currency.code().to_owned(),
        reason: reason.as_str(),
        note,
        lines,
        requested_by: principal.staff.email.clone(),
        requested_by_id: Some(principal.staff.id),
        limits: limits.map(|(per_refund, per_day)| (per_refund, per_day, day_start(config))),
        audit,
    };
    match db.insert_refund(&insert).await.map_err(failed)? {
        Inserted::Existing(existing) => repeated(db, existing, invoice_id, &new).await,
        Inserted::LineRefunded { ride, refund } => Err(Error::invalid(
            "lines",
            format!("ride {ride} of invoice {invoice_id} was refunded already, by refund {refund}"),
        )),
        Inserted::NotCharged => Err(Error::invalid(
            "invoice",
            format!("invoice {invoice_id} was not charged, so there is nothing to refund"),
        )),
        Inserted::TooMuch { refundable_minor } => Err(Error::invalid(
            "amount",
            format!(
                "{} is more than can still be refunded of invoice {invoice_id}: {} {} (charged {}, minus refunds made or waiting)",
                Money::from_minor(amount_minor, currency),
                Money::from_minor(refundable_minor, currency),
                currency.code(),
                Money::from_minor(invoice.total_minor, currency),
            ),
        )),
        Inserted::Created(row) if row.state == "awaiting_approval" => {
            Ok(RefundAnswer { outcome: "awaiting_approval".into(), refund: view(&row)? })
        }
        Inserted::Created(row) => {
            let row = match provider {
                Some(client) => send_now(db, client, row).await,
                None => row,
            };
            Ok(RefundAnswer { outcome: "created".into(), refund: view(&row)? })
        }
    }
}

/// Refuses a refund of an invoice whose charge a card issuer disputes (or took back): the issuer
/// decides where that money goes, and the provider refuses the refund anyway.
async fn refuse_if_disputed(db: &Db, invoice_id: i64) -> Result<(), Error> {
    let dispute =
        db.blocking_dispute(invoice_id).await.map_err(|e| Error::internal("reading disputes", e))?;
    match dispute {
        None => Ok(()),
        Some((dispute, status)) => Err(Error::conflict(
            "invoice",
            format!(
                "invoice {invoice_id}'s charge is disputed by the card issuer (dispute {dispute}, {}): it cannot be refunded; answer the dispute from the invoice page instead",
                status.replace('_', " ")
            ),
        )),
    }
}

/// The answer to a request id seen before: that refund (200) when the request is the same one
/// again (a double click, a retry). The same id with other parameters (another invoice, reason,
/// note, lines or amount) is refused naming the field that differs, as Stripe refuses a key
/// reused for another request: the caller must not believe a new amount went out.
async fn repeated(
    db: &Db,
    existing: RefundRow,
    invoice_id: i64,
    new: &NewRefund,
) -> Result<RefundAnswer, Error> {
    let differs = |field: &str, what: String| {
        Err(Error::Conflict {
            field: field.into(),
            message: format!(
                "request {} already made refund {} {what}; a new refund needs a new request id",
                existing.request_id, existing.id
            ),
        })
    };
    if existing.invoice_id != invoice_id {
        return differs(
            "request_id",
            format!("of invoice {}, not of invoice {invoice_id}", existing.invoice_id),
        );
    }
    let reason = RefundReason::parse(&new.reason).map(RefundReason::as_str).unwrap_or_default();
    if reason != existing.reason {
        return differs("reason", format!("with reason {}, not {:?}", existing.reason, new.reason));
    }
    let note = new.note.as_deref().unwrap_or_default().trim();
    if note != existing.note {
        return differs("note", format!("with the note {:?}, not {note:?}", existing.note));
    }
    let currency =
        BillingCurrency::from_code(&existing.currency).map_err(|e| Error::internal("reading a refund", e))?;
    let (amount_minor, lines) = amount_of(db, invoice_id, currency, new).await?;
    if lines != existing.lines {
        return differs("lines", format!("of the lines [{}], not [{lines}]", existing.lines));
    }
    if amount_minor != existing.amount_minor {
        return differs(
            "amount",
            format!(
                "of {}, not {}",
                Money::from_minor(existing.amount_minor, currency),
                Money::from_minor(amount_minor, currency)
            ),
        );
    }
    Ok(RefundAnswer { outcome: "existing".into(), refund: view(&existing)? })
}

/// Sends a refund to the provider now; the refund as it stands after (unchanged if the call
/// could not be made, for the worker to pick up).
async fn send_now(db: &Db, client: &StripeClient, row: RefundRow) -> RefundRow {
    let id = row.id;
    if let Err(e) = execute(db, client, id, &format!("request-{}", std::process::id()), true).await {
        tracing::warn!(refund = id, error = %e, "sending a refund failed; the refund worker tries again");
    }
    db.refund(id).await.ok().flatten().unwrap_or(row)
}

/// The start of today in the business time zone: support's daily limit counts from it.
fn day_start(config: &Config) -> chrono::DateTime<Utc> {
    let today = Utc::now().with_timezone(&config.time_zone).date_naive();
    config
        .time_zone
        .from_local_datetime(&today.and_time(NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

/// Approves (`approve`) or rejects a refund waiting for approval. Finance or admin, never the
/// requester; an approved refund goes to the provider at once.
pub async fn decide(
    db: &Db,
    provider: Option<&StripeClient>,
    principal: &Principal,
    refund_id: i64,
    approve: bool,
    note: &str,
) -> Result<RefundView, Error> {
    let failed = |e: sqlx::Error| Error::internal("deciding a refund", e);
    let refund = db
        .refund(refund_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| Error::NotFound(format!("refund {refund_id}")))?;
    four_eyes(refund.requested_by_id, &refund.requested_by, principal, &format!("refund {refund_id}"))?;
    let note = decision_note(note, approve, "refund")?;
    if approve {
        refuse_if_disputed(db, refund.invoice_id).await?;
    }
    let action = if approve { "refund.approve" } else { "refund.reject" };
    let mut audit = NewAuditEntry::new(&Actor::staff(principal), action, "invoice", refund.invoice_id);
    audit.detail = Some(format!(
        "refund {refund_id} requested by {}{}",
        refund.requested_by,
        if note.is_empty() { String::new() } else { format!(": {note}") }
    ));
    let decided =
        db.decide_refund(refund_id, approve, &principal.staff.email, note, &audit).await.map_err(failed)?;
    let Some(row) = decided else {
        return Err(Error::Conflict {
            field: "refund".into(),
            message: format!(
                "refund {refund_id} is {} now, not waiting for approval",
                refund.state.replace('_', " ")
            ),
        });
    };
    let row = match (approve, provider) {
        (true, Some(client)) => send_now(db, client, row).await,
        _ => row,
    };
    view(&row)
}

/// The ledger transaction of a refund the provider made: a repair gives back money no invoice
/// explains, a customer refund is a refund; either way the provider holds it no more.
/// What the provider reports refund `refund_id` became (its event): `succeeded` records it with
/// its ledger transaction, `failed` or `canceled` puts it back to be tried in a minute; each
/// once, never backwards. Says what it did.
pub async fn provider_reports(
    db: &Db,
    refund_id: i64,
    provider_id: &str,
    status: &str,
) -> Result<&'static str, Error> {
    let internal = |e: sqlx::Error| Error::internal("recording what the provider reports of a refund", e);
    let Some(refund) = db.refund(refund_id).await.map_err(internal)? else {
        return Ok("not ours");
    };
    match status {
        "succeeded" => {
            let ledger = ledger_of(&refund).map_err(|e| Error::internal("booking a refund", e))?;
            let changed = db.refund_confirmed(refund.id, provider_id, &ledger).await.map_err(internal)?;
            Ok(if changed { "refund succeeded" } else { "no change" })
        }
        "failed" | "canceled" => {
            let detail = format!("the provider reports refund {provider_id} {status}");
            let retry = Utc::now() + Duration::seconds(60);
            let changed = db.refund_failed_at_provider(refund.id, &detail, retry).await.map_err(internal)?;
            Ok(if changed { "refund failed" } else { "no change" })
        }
        _ => Ok("no change"),
    }
}

pub fn ledger_of(refund: &RefundRow) -> anyhow::Result<Transaction> {
    let given_back = if refund.kind == "repair" { Account::UnexplainedCharges } else { Account::Refunds };
    let currency = BillingCurrency::from_code(&refund.currency)?;
    Ok(Transaction::transfer(
        "refund",
        format!("refund-{}", refund.id),
        given_back,
        Account::ProviderClearing,
        Money::from_minor(refund.amount_minor, currency),
    )?
    .of_week(&refund.week))
}

/// Makes one provider call for refund `id` if it is free (and due, unless `now`), and records
/// the outcome. Returns whether a call was made.
pub async fn execute(
    db: &Db,
    client: &StripeClient,
    id: i64,
    worker: &str,
    now: bool,
) -> anyhow::Result<bool> {
    let lease = Duration::from_std(LEASE)?;
    let Some(claim) = db.claim_refund(id, worker, lease, now).await? else {
        return Ok(false);
    };
    let retry_at = |attempts: i64| {
        Utc::now() + Duration::seconds(2i64.saturating_pow(attempts.clamp(1, 11) as u32).min(3600))
    };
    let Some(intent) = claim.payment_intent.clone() else {
        let detail =
            format!("invoice {} has no successful charge at the provider to refund", claim.refund.invoice_id);
        db.refund_not_done(&claim, true, &detail, retry_at(claim.attempt)).await?;
        return Ok(true);
    };
    let reason = RefundReason::parse(&claim.refund.reason).ok().and_then(RefundReason::provider_reason);
    let metadata: Metadata = [
        ("refund_id", claim.refund.id.to_string()),
        ("invoice_id", claim.refund.invoice_id.to_string()),
        ("user_id", claim.refund.user_id.clone()),
    ]
    .into_iter()
    .collect();
    let request = RefundRequest {
        payment_intent: intent,
        amount_minor: claim.refund.amount_minor,
        reason,
        metadata,
        idempotency_key: claim.refund.idempotency_key.clone(),
    };
    // Past the key-reuse window the key is never sent again (the provider may have forgotten it
    // and would refund a second time): what it made is looked up among the payment's refunds.
    let window = Duration::seconds(crate::run::load_settings(db).await?.key_window_seconds);
    if claim.key_sent_at.is_some_and(|sent| sent + window < Utc::now()) {
        return look_up(db, client, &claim, &request.payment_intent, retry_at(claim.attempt)).await;
    }
    match client.refund(&request).await {
        Ok(provider_id) => {
            db.refund_succeeded(&claim, &provider_id, &ledger_of(&claim.refund)?).await?;
            tracing::info!(refund = claim.refund.id, %provider_id, "refund made");
        }
        Err(e) => {
            let refused = matches!(e, ProviderError::Refused(_));
            tracing::warn!(refund = claim.refund.id, error = %e, refused, "refund not confirmed; asked again later with the same key");
            db.refund_not_done(&claim, refused, &e.to_string(), retry_at(claim.attempt)).await?;
        }
    }
    Ok(true)
}

/// Settles refund `claim`, whose key was first sent longer ago than the key-reuse window, by
/// what the provider's list of the payment's refunds says: made (recorded as the refund's
/// success), refused, still on its way (looked up again at `retry_at`), or nothing (a new key,
/// and the refund goes out again at once). A lookup that cannot be made is tried again at
/// `retry_at`; the key is never sent again.
async fn look_up(
    db: &Db,
    client: &StripeClient,
    claim: &RefundClaim,
    payment_intent: &str,
    retry_at: chrono::DateTime<Utc>,
) -> anyhow::Result<bool> {
    use crate::psp::lookup::Found;
    let id = claim.refund.id;
    match client.find_refund(payment_intent, id, None).await {
        Ok(Found::Made { id: provider_id, .. }) => {
            db.refund_succeeded(claim, &provider_id, &ledger_of(&claim.refund)?).await?;
            tracing::info!(refund = id, %provider_id, "refund found at the provider by a lookup");
        }
        Ok(Found::Refused { detail, .. }) => db.refund_not_done(claim, true, &detail, retry_at).await?,
        Ok(Found::Undecided { id: provider_id, status }) => {
            let detail = format!("looked up: {provider_id} is still {status}");
            db.refund_not_done(claim, false, &detail, retry_at).await?;
        }
        Ok(Found::Nothing) => {
            let detail = "past the key-reuse window; looked up among the payment's refunds: nothing was made, so it goes out again under a new key";
            db.refund_new_key(claim, &format!("refund-{id}-key-{}", claim.attempt + 1), detail).await?;
        }
        Err(e) => {
            let detail = format!("past the key-reuse window and could not be looked up: {e}");
            tracing::warn!(refund = id, %detail, "refund lookup failed");
            db.refund_not_done(claim, false, &detail, retry_at).await?;
        }
    }
    Ok(true)
}

/// The refund worker of `billing serve`: every second, every due refund (pending, or failed
/// and waiting to be asked again) gets one provider call.
pub async fn work_forever(db: Db, client: StripeClient) {
    let worker = format!("refunds-{}", std::process::id());
    loop {
        tokio::time::sleep(StdDuration::from_secs(1)).await;
        let due = match db.due_refunds(50).await {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "looking for due refunds failed");
                continue;
            }
        };
        for id in due {
            if let Err(e) = execute(&db, &client, id, &worker, false).await {
                tracing::error!(refund = id, error = %e, "a refund call failed");
            }
        }
    }
}

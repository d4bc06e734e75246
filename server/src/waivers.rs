//! Waivers before approval: the one path every waiver takes, from the week's page or the JSON
//! API ([docs/pricing.md](../../docs/pricing.md#waivers-before-approval)).
//!
//! A request is checked field by field against the week's current draft (nothing is written when
//! one is wrong), then written once per request id (see `db::waivers`). Finance and admin
//! waivers, and support waivers up to the refund limits' per-refund amount, apply at once; a
//! support waiver above it waits for a finance or admin member other than the requester. An
//! applied waiver takes its line (or the whole invoice) off the week's plan: the draft is
//! recomputed at once, its totals and content hash change, and an approval freezes it. Once the
//! week is approved nothing about its waivers changes: money already approved is given back by a
//! refund.

use std::sync::Arc;

use app::auth::Action;
use app::model::money::{BillingCurrency, Money};
use app::model::preview::{InvoiceLineView, WeekStatus};
use app::model::pricing::Attendance;
use app::model::staff::{Principal, Role};
use app::model::waiver::{NewWaiver, WaiverAnswer, WaiverPart, WaiverReason, WaiverState, WaiverView};
use app::model::week::BillingWeek;

use crate::auth::four_eyes::{check_request_id, decision_note, four_eyes, is_requester, trimmed_note};
use crate::config::Config;
use crate::db::audit::{Actor, NewAuditEntry};
use crate::db::waivers::{WaiverChanged, WaiverInsert, WaiverInserted, WaiverRow};
use crate::db::Db;
use crate::error::Error;
use crate::preview::{Drafts, PreviewError, DRAFT_PATIENCE};

/// The longest a note may be.
pub const MAX_NOTE: usize = 1000;

/// What a waiver of an approved week is told: the week is charged as approved.
const FROZEN: &str = "the week is approved and charged as approved; refund the invoice instead";

/// The refusal of any change to the waivers of an approved week.
fn frozen(week: &str) -> Error {
    Error::conflict("week", format!("{week}: {FROZEN}"))
}

fn internal(context: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::internal(context, e)
}

/// A stored waiver as the pages and the API show it: its line (when it waives one) with the
/// ride's driver, times (`ended_local` in `tz`) and distance.
pub fn view(row: &WaiverRow, tz: chrono_tz::Tz) -> Result<WaiverView, Error> {
    let bad = |what: String| Error::internal("reading a waiver", what);
    let currency = BillingCurrency::from_code(&row.currency).map_err(|e| bad(e.to_string()))?;
    let part = WaiverPart::parse(&row.part).map_err(bad)?;
    let amount = Money::from_minor(row.amount_minor, currency);
    let week = BillingWeek::parse(&row.week).map_err(bad)?;
    let line = match (&row.ride_id, &row.driver_id, row.distance_m, row.started_at, row.ended_at) {
        (Some(ride_id), Some(driver_id), Some(distance_m), Some(started_at), Some(ended_at)) => {
            Some(InvoiceLineView {
                ride_id: ride_id.clone(),
                driver_id: driver_id.clone(),
                amount,
                attendance: if part == WaiverPart::NoShowFee {
                    Attendance::NoShow
                } else {
                    Attendance::Completed
                },
                started_at,
                ended_at,
                ended_local: ended_at.with_timezone(&tz).format("%a %-d %b %H:%M").to_string(),
                distance_m,
                late: ended_at < week.start(tz),
            })
        }
        _ => None,
    };
    Ok(WaiverView {
        id: row.id,
        request_id: row.request_id.clone(),
        week: row.week.clone(),
        user_id: row.user_id.clone(),
        ride_id: row.ride_id.clone(),
        part,
        amount,
        reason: WaiverReason::parse(&row.reason).map_err(bad)?,
        note: row.note.clone(),
        state: WaiverState::parse(&row.state).ok_or_else(|| bad(format!("state {:?}", row.state)))?,
        requested_by: row.requested_by.clone(),
        requested_at: crate::db::rfc3339(row.requested_at),
        decided_by: row.decided_by.clone(),
        decided_at: row.decided_at.map(crate::db::rfc3339),
        decision_note: row.decision_note.clone(),
        line,
    })
}

/// The waivers of `week` (of one passenger when `user_id` is given), oldest first.
pub async fn list(
    db: &Db,
    config: &Config,
    week: BillingWeek,
    user_id: Option<&str>,
) -> Result<Vec<WaiverView>, Error> {
    let rows = db.waivers_of_week(&week.to_string(), user_id).await.map_err(internal("listing waivers"))?;
    rows.iter().map(|row| view(row, config.time_zone)).collect()
}

/// What `role` may waive alone, in minor units of the billing currency: the refund limits'
/// per-refund amount (`support_per_refund`) for the roles whose refunds are limited; `None` for
/// the roles that approve waivers, whose waivers apply at once.
pub async fn limit_of(db: &Db, config: &Config, role: Role) -> Result<Option<i64>, Error> {
    if role.can(Action::ApproveWaiver) {
        return Ok(None);
    }
    let limits = crate::refunds::limits(db, config.currency).await?;
    let (per_refund, _) = limits
        .parse(config.currency)
        .map_err(|(field, m)| Error::internal("reading the refund limits", format!("{field}: {m}")))?;
    Ok(Some(per_refund))
}

/// A request's checked fields.
struct Checked {
    user_id: String,
    ride_id: Option<String>,
    part: WaiverPart,
    reason: WaiverReason,
    note: String,
}

/// Checks the fields that need no database, naming the first wrong one.
fn check_fields(new: &NewWaiver) -> Result<Checked, Error> {
    let user_id = new.user_id.trim().to_owned();
    if user_id.is_empty() {
        return Err(Error::invalid("user_id", "give the passenger whose invoice it is"));
    }
    let part = WaiverPart::parse(&new.part).map_err(|m| Error::invalid("part", m))?;
    let ride_id = new.ride_id.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
    match (part, &ride_id) {
        (WaiverPart::Invoice, Some(ride)) => {
            return Err(Error::invalid(
                "ride_id",
                format!("a whole invoice is waived without a ride: leave ride_id out, or waive ride {ride}'s line with part ride_share or no_show_fee"),
            ))
        }
        (WaiverPart::RideShare | WaiverPart::NoShowFee, None) => {
            return Err(Error::invalid("ride_id", "give the ride of the line to waive (or part invoice for the whole invoice)"))
        }
        _ => {}
    }
    let reason = WaiverReason::parse(&new.reason).map_err(|m| Error::invalid("reason", m))?;
    let note = new.note.as_deref().unwrap_or_default().trim().to_owned();
    if note.chars().count() > MAX_NOTE {
        return Err(Error::invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    if reason == WaiverReason::Other && note.is_empty() {
        return Err(Error::invalid("note", "say what happened when the reason is \"other\""));
    }
    Ok(Checked { user_id, ride_id, part, reason, note })
}

/// Handles a waiver request on behalf of `principal` for `week`'s draft: 201/202/200 by
/// [`WaiverAnswer::status`], or an error naming the field, nothing changed. An applied waiver
/// recomputes the stored draft (see [`redraft`]).
pub async fn request(
    db: &Db,
    (config, drafts): (&Arc<Config>, &Drafts),
    principal: &Principal,
    week: BillingWeek,
    new: NewWaiver,
) -> Result<WaiverAnswer, Error> {
    if !principal.staff.role.can(Action::Waive) {
        return Err(Error::Forbidden(format!(
            "the {} role may not waive invoice lines",
            principal.staff.role
        )));
    }
    let request_id = new.request_id.trim().to_owned();
    check_request_id(&request_id)?;
    let week_text = week.to_string();
    if let Some(existing) = db.waiver_by_request(&request_id).await.map_err(internal("reading a waiver"))? {
        return repeated(config, existing, &week_text, &new);
    }
    let checked = check_fields(&new)?;
    // The week's draft as it stands: what the line costs now, and whether it can still change.
    let stored = drafts.refresh(db, config, week, DRAFT_PATIENCE).await?;
    if stored.status == WeekStatus::Approved {
        return Err(frozen(&week_text));
    }
    let amount_minor = amount_of(db, week, &checked).await?;
    let limit = limit_of(db, config, principal.staff.role).await?;
    // Support's limit is an amount of the configured currency: a week in another waits.
    let alone = match limit {
        None => true,
        Some(limit) => stored.currency == config.currency && amount_minor <= limit,
    };
    let state = if alone { WaiverState::Applied } else { WaiverState::AwaitingApproval };
    let actor = Actor::staff(principal);
    let mut audit = NewAuditEntry::new(&actor, "waiver.request", "week", &week_text);
    let amount = Money::from_minor(amount_minor, stored.currency);
    audit.detail = Some(format!(
        "{} of {}{} waived: {} {} ({}){}",
        checked.part.label(),
        checked.user_id,
        checked.ride_id.as_deref().map(|r| format!(", ride {r}")).unwrap_or_default(),
        amount,
        stored.currency.code(),
        checked.reason.as_str(),
        if checked.note.is_empty() { String::new() } else { format!(": {}", checked.note) }
    ));
    let insert = WaiverInsert {
        request_id,
        week: week_text.clone(),
        user_id: checked.user_id.clone(),
        ride_id: checked.ride_id.clone(),
        part: checked.part,
        amount_minor,
        currency: stored.currency.code().to_owned(),
        reason: checked.reason.as_str(),
        note: checked.note.clone(),
        state: state.as_str(),
        requested_by: principal.staff.email.clone(),
        requested_by_id: Some(principal.staff.id),
        audit,
    };
    let row = match db.insert_waiver(&insert).await.map_err(internal("recording a waiver"))? {
        WaiverInserted::Created(row) => row,
        WaiverInserted::Existing(existing) => return repeated(config, existing, &week_text, &new),
        WaiverInserted::Taken(taken) => return Err(taken_error(&taken, &checked)),
        WaiverInserted::Frozen => return Err(frozen(&week_text)),
        WaiverInserted::NotPreviewed => {
            return Err(Error::conflict("week", format!("{week_text} has no preview; open it first")))
        }
    };
    if state == WaiverState::Applied {
        redraft(db, (config, drafts), &row.week).await?;
    }
    Ok(WaiverAnswer { outcome: state.as_str().to_owned(), waiver: view(&row, config.time_zone)? })
}

/// What the line (or the invoice) a waiver asks for costs in the current draft, in minor units,
/// or why it cannot be waived (the field named: `user_id`, `ride_id`, `part`).
async fn amount_of(db: &Db, week: BillingWeek, checked: &Checked) -> Result<i64, Error> {
    let user = &checked.user_id;
    if db.user(user).await.map_err(internal("reading a user"))?.is_none() {
        return Err(Error::invalid("user_id", format!("there is no user {user}")));
    }
    // A line or an invoice already waived (or waiting) is no longer on the invoice: say so.
    let open =
        db.waivers_of_week(&week.to_string(), Some(user)).await.map_err(internal("reading waivers"))?;
    if let Some(taken) = open.iter().find(|w| {
        (w.state == "applied" || w.state == "awaiting_approval")
            && (w.ride_id == checked.ride_id || (w.ride_id.is_none() && w.state == "applied"))
    }) {
        return Err(taken_error(taken, checked));
    }
    let invoice = db.invoice_id(week, user).await.map_err(internal("finding an invoice"))?;
    let detail = match invoice {
        Some(id) => db.invoice_detail(id).await.map_err(internal("reading an invoice"))?,
        None => None,
    };
    let Some(ride_id) = &checked.ride_id else {
        return match detail {
            Some(invoice) => Ok(invoice.total.minor()),
            None => Err(Error::invalid("user_id", format!("{user} has nothing to pay in {week}"))),
        };
    };
    if let Some(line) = detail.as_ref().and_then(|d| d.lines.iter().find(|l| l.ride_id == *ride_id)) {
        return match WaiverPart::of_seat(line.attendance) {
            Some(part) if part == checked.part => Ok(line.amount.minor()),
            Some(WaiverPart::RideShare) => Err(Error::invalid(
                "part",
                format!("{user} rode ride {ride_id}: waive its ride_share, not a {}", checked.part.as_str()),
            )),
            _ => Err(Error::invalid(
                "part",
                format!(
                    "{user} did not show up for ride {ride_id}: waive its no_show_fee, not a {}",
                    checked.part.as_str()
                ),
            )),
        };
    }
    // Not a line of the invoice: say why.
    let ride = db.ride(ride_id).await.map_err(internal("reading a ride"))?;
    let Some(ride) = ride else {
        return Err(Error::invalid("ride_id", format!("there is no ride {ride_id}")));
    };
    let why = match ride.seats.iter().find(|s| s.passenger_id == *user).map(|s| s.attendance) {
        None => format!("{user} was not a passenger of ride {ride_id}"),
        Some(Attendance::Cancelled) => {
            format!("{user} cancelled their seat of ride {ride_id} in time, which costs nothing")
        }
        Some(_) => {
            format!("ride {ride_id} is not on {user}'s invoice of {week} (it is billed in another week)")
        }
    };
    Err(Error::invalid("ride_id", why))
}

/// The refusal of a waiver whose line (or invoice) another waiver holds.
fn taken_error(taken: &WaiverRow, checked: &Checked) -> Error {
    let field = if checked.ride_id.is_some() { "ride_id" } else { "user_id" };
    let what = match &taken.ride_id {
        Some(ride) => format!("ride {ride} of {}'s invoice", taken.user_id),
        None => format!("{}'s whole invoice", taken.user_id),
    };
    let state = WaiverState::parse(&taken.state).map(WaiverState::label).unwrap_or("open");
    Error::conflict(
        field,
        format!("{what} of {} is already waived by waiver {} ({state})", taken.week, taken.id),
    )
}

/// The answer to a request id seen before: that waiver (200) when the request is the same one
/// again; the same id with other parameters is refused naming the field that differs.
fn repeated(
    config: &Config,
    existing: WaiverRow,
    week: &str,
    new: &NewWaiver,
) -> Result<WaiverAnswer, Error> {
    let differs = |field: &str, what: String| {
        Err(Error::conflict(
            field,
            format!(
                "request {} already made waiver {} {what}; a new waiver needs a new request id",
                existing.request_id, existing.id
            ),
        ))
    };
    if existing.week != week {
        return differs("request_id", format!("of {}, not of {week}", existing.week));
    }
    if existing.user_id != new.user_id.trim() {
        return differs(
            "user_id",
            format!("of {}'s invoice, not {}'s", existing.user_id, new.user_id.trim()),
        );
    }
    let ride = new.ride_id.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if existing.ride_id.as_deref() != ride {
        return differs("ride_id", format!("of ride {:?}, not {ride:?}", existing.ride_id));
    }
    if existing.part != new.part.trim() {
        return differs("part", format!("of the part {}, not {:?}", existing.part, new.part));
    }
    if existing.reason != new.reason.trim() {
        return differs("reason", format!("with reason {}, not {:?}", existing.reason, new.reason));
    }
    let note = new.note.as_deref().unwrap_or_default().trim();
    if note != existing.note {
        return differs("note", format!("with the note {:?}, not {note:?}", existing.note));
    }
    Ok(WaiverAnswer { outcome: "existing".into(), waiver: view(&existing, config.time_zone)? })
}

/// Approves (`approve`: it applies now) or rejects (with a note) a waiver waiting for approval.
/// Finance or admin, never the requester; refused once its week is approved. An approval
/// recomputes the stored draft (see [`redraft`]).
pub async fn decide(
    db: &Db,
    (config, drafts): (&Arc<Config>, &Drafts),
    principal: &Principal,
    waiver_id: i64,
    approve: bool,
    note: &str,
) -> Result<WaiverView, Error> {
    if !principal.staff.role.can(Action::ApproveWaiver) {
        return Err(Error::Forbidden(format!("the {} role may not approve waivers", principal.staff.role)));
    }
    let waiver = db
        .waiver(waiver_id)
        .await
        .map_err(internal("reading a waiver"))?
        .ok_or_else(|| Error::NotFound(format!("waiver {waiver_id}")))?;
    four_eyes(waiver.requested_by_id, &waiver.requested_by, principal, &format!("waiver {waiver_id}"))?;
    let note = decision_note(note, approve, "waiver")?;
    let action = if approve { "waiver.approve" } else { "waiver.reject" };
    let mut audit = NewAuditEntry::new(&Actor::staff(principal), action, "week", &waiver.week);
    audit.detail = Some(format!(
        "waiver {waiver_id} of {} requested by {}{}",
        waiver.user_id,
        waiver.requested_by,
        if note.is_empty() { String::new() } else { format!(": {note}") }
    ));
    let by = (principal.staff.email.as_str(), Some(principal.staff.id));
    let changed = db
        .decide_waiver(waiver_id, approve, by, note, &audit)
        .await
        .map_err(internal("deciding a waiver"))?;
    let row = changed_or_refused(changed, waiver_id, "waiting for approval")?;
    if approve {
        redraft(db, (config, drafts), &row.week).await?;
    }
    view(&row, config.time_zone)
}

/// Withdraws a waiver, applied or waiting: its line is charged again. The requester, or a
/// finance or admin member; refused once its week is approved. Recomputes the stored draft (see
/// [`redraft`]).
pub async fn withdraw(
    db: &Db,
    (config, drafts): (&Arc<Config>, &Drafts),
    principal: &Principal,
    waiver_id: i64,
    note: &str,
) -> Result<WaiverView, Error> {
    let waiver = db
        .waiver(waiver_id)
        .await
        .map_err(internal("reading a waiver"))?
        .ok_or_else(|| Error::NotFound(format!("waiver {waiver_id}")))?;
    let own = is_requester(waiver.requested_by_id, &waiver.requested_by, principal);
    let role = principal.staff.role;
    let may = role.can(Action::ApproveWaiver) || (own && role.can(Action::Waive));
    if !may {
        return Err(Error::Forbidden(format!(
            "waiver {waiver_id} is {}'s: only they or a finance or admin member withdraw it",
            waiver.requested_by
        )));
    }
    let note = trimmed_note(note)?;
    let mut audit = NewAuditEntry::new(&Actor::staff(principal), "waiver.withdraw", "week", &waiver.week);
    audit.detail = Some(format!(
        "waiver {waiver_id} of {} requested by {}{}",
        waiver.user_id,
        waiver.requested_by,
        if note.is_empty() { String::new() } else { format!(": {note}") }
    ));
    let by = (principal.staff.email.as_str(), Some(principal.staff.id));
    let changed =
        db.withdraw_waiver(waiver_id, by, note, &audit).await.map_err(internal("withdrawing a waiver"))?;
    let row = changed_or_refused(changed, waiver_id, "applied or waiting")?;
    redraft(db, (config, drafts), &row.week).await?;
    view(&row, config.time_zone)
}

/// The waiver a change made, or the refusal: its week approved (409 `week`), or not in a state
/// the change applies to (409 `waiver`).
fn changed_or_refused(changed: WaiverChanged, waiver_id: i64, expected: &str) -> Result<WaiverRow, Error> {
    match changed {
        WaiverChanged::Done(row) => Ok(row),
        WaiverChanged::NotFound => Err(Error::NotFound(format!("waiver {waiver_id}"))),
        WaiverChanged::Frozen(row) => Err(frozen(&row.week)),
        WaiverChanged::NotOpen(row) => Err(Error::conflict(
            "waiver",
            format!(
                "waiver {waiver_id} is {} now, not {expected}",
                WaiverState::parse(&row.state).map(WaiverState::label).unwrap_or(row.state.as_str())
            ),
        )),
    }
}

/// Recomputes the stored draft of the week named `week`, whose applied waivers have just changed
/// (committed), waiting for it as a week's page does. A computation that outlasts the wait goes
/// on without the request (a million passengers' week takes minutes): the waiver stands, and the
/// week's page shows the draft once computed.
async fn redraft(db: &Db, (config, drafts): (&Arc<Config>, &Drafts), week: &str) -> Result<(), Error> {
    let changed = std::time::Instant::now();
    let week = BillingWeek::parse(week).map_err(|m| Error::internal("reading a waiver's week", m))?;
    match drafts.refresh_since(db, config, week, DRAFT_PATIENCE, Some(changed)).await {
        Ok(_) => Ok(()),
        Err(PreviewError::Computing(..)) => {
            tracing::info!(%week, "a waiver changed a draft that is still being computed");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// The invoice panel of a passenger who has no stored invoice in `week` because it is waived
/// whole: nothing to charge (id 0, no lines, total 0), with the name to show. `None` when the
/// passenger has no waiver there either (then there is no invoice to show).
pub async fn waived_invoice(
    db: &Db,
    config: &Config,
    week: BillingWeek,
    user_id: &str,
) -> Result<Option<app::model::preview::InvoiceDetail>, Error> {
    let rows =
        db.waivers_of_week(&week.to_string(), Some(user_id)).await.map_err(internal("listing waivers"))?;
    let Some(first) = rows.first() else { return Ok(None) };
    let Some(stored) = db.stored_week(week).await.map_err(internal("reading the week"))? else {
        return Ok(None);
    };
    let user = db.user(user_id).await.map_err(internal("reading a user"))?;
    let currency = BillingCurrency::from_code(&first.currency).unwrap_or(config.currency);
    Ok(Some(app::model::preview::InvoiceDetail {
        id: 0,
        week,
        status: stored.status,
        user_id: user_id.to_owned(),
        user_name: user.map(|u| u.name).unwrap_or_default(),
        total: Money::zero(currency),
        content_hash: String::new(),
        lines: Vec::new(),
        anomalies: Vec::new(),
        waivers: Vec::new(),
        waiver_request_id: String::new(),
        time_zone: String::new(),
    }))
}

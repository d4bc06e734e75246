//! Looking up customers for support, shared by the dashboard and the JSON API: the search, a
//! customer's profile and lists, and one invoice with everything that happened to it. Every
//! lookup of a person's data is written to the audit log (who looked at whom).

use chrono::{DateTime, Utc};

use crate::audit_writer::AuditWriter;
use crate::config::Config;
use crate::db::audit::{Actor, NewAuditEntry, LOOKUP_ACTIONS};
use crate::db::Db;
use crate::error::Error;
use app::model::customer::{
    ActivityPage, ActivityRows, ChargeAttemptView, CustomerProfile, Section, UserHit, WeekCharges,
};
use app::model::money::Money;
use app::model::refund::InvoiceRecord;
use app::model::staff::Principal;
use app::model::week::BillingWeek;

/// Rows per page of a customer's lists.
pub const PAGE: i64 = 20;

fn failed(context: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::internal(context, e)
}

/// Writes who looked at what.
async fn audit_lookup(
    audit: &AuditWriter,
    principal: &Principal,
    action: &'static str,
    object_type: &'static str,
    object_id: &str,
    detail: String,
) -> Result<(), Error> {
    debug_assert!(LOOKUP_ACTIONS.contains(&action), "{action} is not listed as a lookup");
    let mut entry = NewAuditEntry::new(&Actor::staff(principal), action, object_type, object_id);
    entry.detail = Some(detail);
    audit.write(entry).await.map_err(|e| Error::internal("auditing a lookup", e))
}

/// Users whose id, name, email or phone starts with `q`; audited as `user.search`.
pub async fn search(
    db: &Db,
    audit: &AuditWriter,
    principal: &Principal,
    q: &str,
    limit: i64,
) -> Result<Vec<UserHit>, Error> {
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 100 {
        return Err(Error::invalid("q", "1 to 100 characters of an id, name, email or phone"));
    }
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid("limit", "from 1 to 100"));
    }
    let users = db.search_users(q, limit).await.map_err(failed("searching users"))?;
    audit_lookup(audit, principal, "user.search", "user_search", q, format!("{} found", users.len())).await?;
    Ok(users)
}

/// A customer's profile and last twelve weeks; audited as `user.view`.
pub async fn profile(
    db: &Db,
    config: &Config,
    audit: &AuditWriter,
    principal: &Principal,
    id: &str,
) -> Result<CustomerProfile, Error> {
    let user = db
        .user(id)
        .await
        .map_err(failed("reading a user"))?
        .ok_or_else(|| Error::NotFound(format!("user {id}")))?;
    let currency = config.currency;
    let money = |minor: i64| Money::from_minor(minor, currency);
    let last = BillingWeek::containing(Utc::now(), config.time_zone).previous();
    let mut first = last;
    for _ in 0..11 {
        first = first.previous();
    }
    let rows = db
        .user_weeks(id, &first.to_string(), &last.to_string())
        .await
        .map_err(failed("reading a user's weeks"))?;
    let mut weeks = Vec::with_capacity(12);
    let mut week = first;
    loop {
        let text = week.to_string();
        let found = rows.iter().find(|r| r.0 == text);
        weeks.push(match found {
            Some((_, invoice, total, state, refunded)) => WeekCharges {
                week: text,
                invoiced: money(*total),
                charged: money(if state.as_deref() == Some("charged") { *total } else { 0 }),
                refunded: money(*refunded),
                state: state.clone().unwrap_or_else(|| "not run".into()),
                invoice_id: Some(*invoice),
            },
            None => WeekCharges {
                week: text,
                invoiced: money(0),
                charged: money(0),
                refunded: money(0),
                state: "none".into(),
                invoice_id: None,
            },
        });
        if week == last {
            break;
        }
        week = week.next();
    }
    let (charged, refunded, open) = db.user_totals(id).await.map_err(failed("reading a user's totals"))?;
    let is_driver = db.is_driver(id).await.map_err(failed("reading a user"))?;
    let refs = db.provider_refs(id).await.map_err(failed("reading a user's provider references"))?;
    let mut disputes = db.user_disputes(id).await.map_err(failed("reading a user's disputes"))?;
    for dispute in &mut disputes {
        crate::disputes::in_business_zone(dispute, config.time_zone);
    }
    audit_lookup(audit, principal, "user.view", "user", id, format!("{} ({})", user.name, user.id)).await?;
    Ok(CustomerProfile {
        id: user.id,
        name: user.name,
        email: user.email,
        phone: user.phone,
        language: user.language,
        created_at: crate::db::rfc3339(user.created_at),
        is_driver,
        currency: currency.code().to_owned(),
        weeks,
        charged_total: money(charged),
        refunded_total: money(refunded),
        open_refunds: open,
        provider_customer_id: refs.provider_customer_id,
        provider_payment_method_id: refs.provider_payment_method_id,
        provider_account_id: refs.provider_account_id,
        disputes,
        time_zone: config.time_zone.name().to_owned(),
    })
}

/// An id cursor (`before`), or the start.
fn id_cursor(before: Option<&str>) -> Result<i64, Error> {
    match before.map(str::trim).filter(|b| !b.is_empty()) {
        None => Ok(i64::MAX),
        Some(b) => b
            .parse()
            .map_err(|_| Error::invalid("before", format!("{b:?} is not a cursor from a previous page"))),
    }
}

/// One page of one of a customer's lists, newest first, its moments in the business time zone;
/// every page audited as `user.view` with the list (and the cursor), whoever asks: the dashboard
/// or the API.
pub async fn activity(
    db: &Db,
    config: &Config,
    audit: &AuditWriter,
    principal: &Principal,
    id: &str,
    section: Section,
    before: Option<&str>,
) -> Result<ActivityPage, Error> {
    if db.user(id).await.map_err(failed("reading a user"))?.is_none() {
        return Err(Error::NotFound(format!("user {id}")));
    }
    let more = |n: usize| n as i64 > PAGE;
    let (rows, next) = match section {
        Section::Invoices => {
            // One invoice per week: the week is the cursor, newest first.
            let before = match before.map(str::trim).filter(|b| !b.is_empty()) {
                None => "9999-W99".to_owned(),
                Some(b) => app::model::week::BillingWeek::parse(b)
                    .map_err(|_| {
                        Error::invalid("before", format!("{b:?} is not a cursor from a previous page"))
                    })?
                    .to_string(),
            };
            let mut rows =
                db.user_invoices(id, &before, PAGE + 1).await.map_err(failed("reading invoices"))?;
            let next = more(rows.len()).then(|| rows[PAGE as usize - 1].week.clone());
            rows.truncate(PAGE as usize);
            (ActivityRows::Invoices(rows), next)
        }
        Section::Attempts => {
            let mut rows = db
                .user_charge_attempts(id, id_cursor(before)?, PAGE + 1)
                .await
                .map_err(failed("reading attempts"))?;
            let next = more(rows.len()).then(|| rows[PAGE as usize - 1].0.to_string());
            rows.truncate(PAGE as usize);
            let attempts = rows.into_iter().map(|(_, a)| attempt_in_zone(a, config.time_zone)).collect();
            (ActivityRows::Attempts(attempts), next)
        }
        Section::Refunds => {
            let mut rows = db
                .refunds_of_user(id, id_cursor(before)?, PAGE + 1)
                .await
                .map_err(failed("reading refunds"))?;
            let next = more(rows.len()).then(|| rows[PAGE as usize - 1].id.to_string());
            rows.truncate(PAGE as usize);
            let mut views: Vec<_> = rows.iter().map(crate::refunds::view).collect::<Result<_, _>>()?;
            for refund in &mut views {
                refund_in_zone(refund, config.time_zone);
            }
            (ActivityRows::Refunds(views), next)
        }
        Section::Rides => {
            let cursor = match before.map(str::trim).filter(|b| !b.is_empty()) {
                None => None,
                Some(b) => Some(crate::db::customers::ride_cursor(b).map_err(|_| {
                    Error::invalid("before", format!("{b:?} is not a cursor from a previous page"))
                })?),
            };
            let mut rows = db
                .user_rides(id, cursor, PAGE + 1, config.currency)
                .await
                .map_err(failed("reading rides"))?;
            let next = more(rows.len()).then(|| {
                let (at, ride) = &rows[PAGE as usize - 1];
                format!("{}|{}", at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), ride.ride_id)
            });
            rows.truncate(PAGE as usize);
            let tz = config.time_zone;
            let rides = rows
                .into_iter()
                .map(|(at, mut ride)| {
                    ride.ended_at = zoned(at, tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
                    ride
                })
                .collect();
            (ActivityRows::Rides(rides), next)
        }
        Section::Payouts => {
            let mut rows =
                db.user_payouts(id, id_cursor(before)?, PAGE + 1).await.map_err(failed("reading payouts"))?;
            let next = more(rows.len()).then(|| rows[PAGE as usize - 1].id.to_string());
            rows.truncate(PAGE as usize);
            (ActivityRows::Payouts(rows), next)
        }
    };
    let detail = match before.map(str::trim).filter(|b| !b.is_empty()) {
        None => section.as_str().to_owned(),
        Some(b) => format!("{} page before {b}", section.as_str()),
    };
    audit_lookup(audit, principal, "user.view", "user", id, detail).await?;
    Ok(ActivityPage { rows, next, time_zone: config.time_zone.name().to_owned() })
}

/// A moment sent as RFC 3339 (UTC) rewritten in the business time zone, with its offset, for the
/// dashboard's `format::when`; anything else is left as it is.
pub fn in_zone(moment: &mut String, tz: chrono_tz::Tz) {
    if let Ok(at) = DateTime::parse_from_rfc3339(moment) {
        *moment = zoned(at, tz).to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    }
}

/// The same instant in the business time zone, with that zone's offset: how a moment the
/// dashboard shows goes to it (`format::moment` writes it without a time zone database).
pub fn zoned<Z: chrono::TimeZone>(at: DateTime<Z>, tz: chrono_tz::Tz) -> DateTime<chrono::FixedOffset> {
    at.with_timezone(&tz).fixed_offset()
}

/// A charge attempt's moments in the business time zone (see [`in_zone`]).
fn attempt_in_zone(mut attempt: ChargeAttemptView, tz: chrono_tz::Tz) -> ChargeAttemptView {
    in_zone(&mut attempt.started_at, tz);
    if let Some(at) = attempt.finished_at.as_mut() {
        in_zone(at, tz);
    }
    attempt
}

/// A refund's moments in the business time zone (see [`in_zone`]).
pub fn refund_in_zone(refund: &mut app::model::refund::RefundView, tz: chrono_tz::Tz) {
    in_zone(&mut refund.requested_at, tz);
    if let Some(at) = refund.decided_at.as_mut() {
        in_zone(at, tz);
    }
}

fn local(at: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    at.with_timezone(&tz).format("%a %-d %b %Y %H:%M").to_string()
}

/// One invoice with its lines, charge attempts, refunds, ledger entries and audit trail;
/// audited as `invoice.view`.
pub async fn invoice(
    db: &Db,
    config: &Config,
    audit: &AuditWriter,
    principal: &Principal,
    id: i64,
) -> Result<InvoiceRecord, Error> {
    let mut detail = db
        .invoice_detail(id)
        .await
        .map_err(failed("reading an invoice"))?
        .ok_or_else(|| Error::NotFound(format!("invoice {id}")))?;
    let refundable = db
        .refundable(id)
        .await
        .map_err(failed("reading an invoice"))?
        .ok_or_else(|| Error::NotFound(format!("invoice {id}")))?;
    let currency = detail.total.currency();
    let money = |minor: i64| Money::from_minor(minor, currency);
    for line in &mut detail.lines {
        line.ended_local = local(line.ended_at, config.time_zone);
    }
    let refunds = db.refunds_of_invoice(id).await.map_err(failed("reading refunds"))?;
    // What the customer got back of this invoice's charge (a repair gives back a charge the
    // invoice does not explain, and is listed but not counted here).
    let refunded: i64 = refunds
        .iter()
        .filter(|r| r.state == "succeeded" && r.kind == "customer")
        .map(|r| r.amount_minor)
        .sum();
    let charged =
        if refundable.charge_state.as_deref() == Some("charged") { refundable.total_minor } else { 0 };
    let user = db.user(&detail.user_id).await.map_err(failed("reading a user"))?;
    // What was done to the invoice (its views are in the audit log, not on its page).
    let trail =
        db.object_changes("invoice", &id.to_string(), 100).await.map_err(failed("reading the audit log"))?;
    let limits = crate::refunds::limits_left(db, config, principal).await?;
    let record = InvoiceRecord {
        id,
        week: detail.week.to_string(),
        user_id: detail.user_id.clone(),
        user_name: detail.user_name.clone(),
        user_email: user.and_then(|u| u.email),
        total: detail.total,
        charge: refundable.charge_state.clone(),
        charged: money(charged),
        refunded: money(refunded),
        refundable: money((charged - refundable.reserved_minor).max(0)),
        lines: detail.lines,
        attempts: db.invoice_charge_attempts(id).await.map_err(failed("reading attempts"))?,
        refunds: refunds.iter().map(crate::refunds::view).collect::<Result<_, _>>()?,
        refund_attempts: db
            .refund_attempts_of_invoice(id)
            .await
            .map_err(failed("reading refund attempts"))?,
        ledger: db.invoice_ledger(id).await.map_err(failed("reading the ledger"))?,
        audit: trail,
        new_request_id: uuid::Uuid::new_v4().to_string(),
        caller_limit: limits.map(|(per_refund, _, _)| money(per_refund)),
        caller_daily_limit: limits.map(|(_, per_day, _)| money(per_day)),
        caller_daily_left: limits.map(|(_, _, left)| money(left)),
        time_zone: config.time_zone.name().to_owned(),
        disputes: db.invoice_disputes(id).await.map_err(failed("reading disputes"))?,
    };
    let mut record = record;
    for dispute in &mut record.disputes {
        crate::disputes::in_business_zone(dispute, config.time_zone);
    }
    let tz = config.time_zone;
    for refund in &mut record.refunds {
        refund_in_zone(refund, tz);
    }
    record.attempts = record.attempts.into_iter().map(|a| attempt_in_zone(a, tz)).collect();
    for attempt in &mut record.refund_attempts {
        in_zone(&mut attempt.started_at, tz);
        if let Some(at) = attempt.finished_at.as_mut() {
            in_zone(at, tz);
        }
    }
    for entry in &mut record.ledger {
        in_zone(&mut entry.created_at, tz);
    }
    for entry in &mut record.audit {
        in_zone(&mut entry.at, tz);
    }
    audit_lookup(
        audit,
        principal,
        "invoice.view",
        "invoice",
        &id.to_string(),
        format!("invoice of {}", record.user_id),
    )
    .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    #[test]
    fn moments_are_rewritten_in_the_business_zone() {
        let mut moment = "2026-12-07T05:24:27.844Z".to_owned();
        super::in_zone(&mut moment, chrono_tz::Europe::Paris);
        assert_eq!(moment, "2026-12-07T06:24:27+01:00");
        let mut summer = "2026-07-07T05:24:27Z".to_owned();
        super::in_zone(&mut summer, chrono_tz::Europe::Paris);
        assert_eq!(summer, "2026-07-07T07:24:27+02:00");
        let mut other = "not a moment".to_owned();
        super::in_zone(&mut other, chrono_tz::Europe::Paris);
        assert_eq!(other, "not a moment");
    }

    #[test]
    fn zoned_moments_keep_their_instant() {
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 7, 5, 24, 27).unwrap();
        let paris = super::zoned(at, chrono_tz::Europe::Paris);
        assert_eq!(paris.to_rfc3339(), "2026-12-07T06:24:27+01:00");
        assert_eq!(paris, at, "the same instant");
        let tokyo = super::zoned(paris, chrono_tz::Asia::Tokyo);
        assert_eq!(tokyo.to_rfc3339(), "2026-12-07T14:24:27+09:00");
    }
}

//! Disputes: the provider's dispute events recorded (`webhook`), the finance queue (`page`), and
//! the evidence sent from what the product knows of the invoice (`send_evidence`).

use app::auth::Action;
use app::model::dispute::{DisputeView, DisputesPage, EvidenceRequest, STATUSES};
use app::model::staff::Principal;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::Config;
use crate::customers::in_zone;
use crate::db::audit::{Actor, NewAuditEntry};
use crate::db::disputes::{DisputeEvent, EvidenceClaim, Recorded};
use crate::db::Db;
use crate::error::Error;
use crate::psp::stripe::StripeClient;

/// Disputes listed in the queue.
const QUEUE: i64 = 500;
/// The longest note finance adds to the evidence.
const MAX_NOTE: usize = 5_000;

/// What a dispute event's object says; `None` when it is not a dispute.
pub fn event_of(object: &Value) -> Option<DisputeEvent> {
    if object["object"].as_str() != Some("dispute") {
        return None;
    }
    let text = |key: &str| object[key].as_str().map(str::to_owned);
    let transactions = object["balance_transactions"].as_array().cloned().unwrap_or_default();
    // The withdrawal is the balance transaction that takes money (a negative amount).
    let withdrawal = transactions.iter().find(|t| t["amount"].as_i64().is_some_and(|a| a < 0));
    let status = text("status")?;
    Some(DisputeEvent {
        provider_id: text("id")?,
        charge_id: text("charge").unwrap_or_default(),
        payment_intent: text("payment_intent"),
        invoice_hint: object["metadata"]["invoice_id"].as_str().and_then(|v| v.parse().ok()),
        amount_minor: object["amount"].as_i64().filter(|a| *a > 0)?,
        currency: text("currency")?,
        reason: text("reason").unwrap_or_else(|| "general".into()),
        withdrawn: withdrawal.is_some() || !status.starts_with("warning_"),
        status,
        due_by: object["evidence_details"]["due_by"]
            .as_i64()
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
        fee_minor: withdrawal.and_then(|t| t["fee"].as_i64()),
    })
}

/// A `charge.dispute.*` event: stored once per dispute, its status moving forward only; says
/// what it did.
pub async fn webhook(db: &Db, object: &Value) -> Result<&'static str, Error> {
    let Some(event) = event_of(object) else { return Ok("not a dispute") };
    let recorded = db.record_dispute(&event).await.map_err(|e| Error::internal("recording a dispute", e))?;
    Ok(match recorded {
        Recorded::NotOurs => "not ours",
        Recorded::New => "dispute opened",
        Recorded::Changed => "dispute updated",
        Recorded::Unchanged => "no change",
    })
}

/// A dispute's moments in the business time zone.
pub fn in_business_zone(dispute: &mut DisputeView, tz: chrono_tz::Tz) {
    in_zone(&mut dispute.opened_at, tz);
    for at in [&mut dispute.evidence_due_at, &mut dispute.evidence_sent_at, &mut dispute.closed_at]
        .into_iter()
        .flatten()
    {
        in_zone(at, tz);
    }
}

/// The queue: disputes in `status` (all when empty) by due date, with the counts by status.
pub async fn page(
    db: &Db,
    config: &Config,
    principal: &Principal,
    status: &str,
) -> Result<DisputesPage, Error> {
    crate::auth::may(principal, Action::ManageDisputes)?;
    let status = match status.trim() {
        "" => None,
        known if STATUSES.contains(&known) => Some(known.to_owned()),
        other => {
            return Err(Error::invalid("status", format!("{other:?} is not one of {}", STATUSES.join(", "))))
        }
    };
    let failed = |e: sqlx::Error| Error::internal("reading disputes", e);
    let mut disputes = db.disputes(status.as_deref(), QUEUE).await.map_err(failed)?;
    for dispute in &mut disputes {
        in_business_zone(dispute, config.time_zone);
    }
    Ok(DisputesPage {
        disputes,
        counts: db.dispute_counts().await.map_err(failed)?,
        status,
        time_zone: config.time_zone.name().to_owned(),
    })
}

/// Sends dispute `id`'s evidence to the provider and submits it, in one action: the receipt, the
/// ride lines with their times, distances and drivers, the charge attempts, and `request.note`.
/// The idempotency key is written (with the audit entry) before the call, so a send that did
/// not finish is made again with the same key and the issuer gets it once.
pub async fn send_evidence(
    db: &Db,
    config: &Config,
    provider: Option<&StripeClient>,
    principal: &Principal,
    id: i64,
    request: EvidenceRequest,
) -> Result<DisputeView, Error> {
    crate::auth::may(principal, Action::ManageDisputes)?;
    let note = request.note.trim().to_owned();
    if note.chars().count() > MAX_NOTE {
        return Err(Error::invalid("note", format!("at most {MAX_NOTE} characters")));
    }
    let failed = |e: sqlx::Error| Error::internal("sending a dispute's evidence", e);
    let dispute =
        db.dispute(id).await.map_err(failed)?.ok_or_else(|| Error::NotFound(format!("dispute {id}")))?;
    let Some(client) = provider else {
        return Err(Error::conflict("provider", "no payment provider is configured to send the evidence to"));
    };
    let evidence = evidence(db, config, &dispute, &note).await?;
    let mut audit =
        NewAuditEntry::new(&Actor::staff(principal), "dispute.evidence", "invoice", dispute.invoice_id);
    audit.detail = Some(format!(
        "dispute {} ({}, {} {}){}",
        dispute.provider_id,
        dispute.reason,
        dispute.amount,
        dispute.amount.currency().code(),
        if note.is_empty() { String::new() } else { format!(": {note}") }
    ));
    let claim = db.claim_evidence(id, &note, &principal.staff.email, &audit).await.map_err(failed)?;
    let key = match claim {
        None => return Err(Error::NotFound(format!("dispute {id}"))),
        Some(EvidenceClaim::Sent) => {
            return Err(Error::conflict("dispute", format!("dispute {id}'s evidence was sent already")))
        }
        Some(EvidenceClaim::Closed(status)) => {
            return Err(Error::conflict(
                "dispute",
                format!("dispute {id} is {}: the issuer no longer takes evidence", status.replace('_', " ")),
            ))
        }
        Some(EvidenceClaim::Send { key }) => key,
    };
    let answer =
        client.submit_dispute_evidence(&dispute.provider_id, &evidence, &key).await.map_err(|e| {
            Error::conflict(
                "provider",
                format!("the provider did not take the evidence ({e}); send it again"),
            )
        })?;
    let status = answer["status"].as_str().unwrap_or("under_review");
    db.evidence_sent(id, status).await.map_err(failed)?;
    let mut view =
        db.dispute(id).await.map_err(failed)?.ok_or_else(|| Error::NotFound(format!("dispute {id}")))?;
    in_business_zone(&mut view, config.time_zone);
    Ok(view)
}

/// The evidence's text fields, from what the product knows of the disputed invoice.
async fn evidence(
    db: &Db,
    config: &Config,
    dispute: &DisputeView,
    note: &str,
) -> Result<Vec<(&'static str, String)>, Error> {
    let failed = |e: sqlx::Error| Error::internal("gathering a dispute's evidence", e);
    let detail = db
        .invoice_detail(dispute.invoice_id)
        .await
        .map_err(failed)?
        .ok_or_else(|| Error::NotFound(format!("invoice {}", dispute.invoice_id)))?;
    let attempts = db.invoice_charge_attempts(dispute.invoice_id).await.map_err(failed)?;
    let user = db.user(&detail.user_id).await.map_err(failed)?;
    let currency = detail.total.currency().code();
    let tz = config.time_zone;
    let local = |at: DateTime<Utc>| at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string();
    let mut text = format!(
        "Receipt: invoice {} for billing week {} ({}), {} {currency}, charged once for the rides below.\n\nRides ({}):\n",
        detail.id,
        detail.week,
        tz.name(),
        detail.total,
        detail.lines.len()
    );
    for line in &detail.lines {
        text.push_str(&format!(
            "- ride {}: {} to {}, {}.{} km, driver {}, {:?}, {} {currency}{}\n",
            line.ride_id,
            local(line.started_at),
            local(line.ended_at),
            line.distance_m / 1000,
            line.distance_m % 1000 / 100,
            line.driver_id,
            line.attendance,
            line.amount,
            if line.late { " (late line from an earlier week)" } else { "" }
        ));
    }
    text.push_str("\nCharge attempts (each with its own idempotency key; one succeeded):\n");
    for attempt in &attempts {
        text.push_str(&format!(
            "- attempt {} at {}: {}{}\n",
            attempt.attempt,
            attempt.started_at,
            attempt.outcome,
            attempt.provider_id.as_deref().map(|p| format!(" ({p})")).unwrap_or_default()
        ));
    }
    if !note.is_empty() {
        text.push_str(&format!("\nNote from our finance team: {note}\n"));
    }
    let first = detail.lines.iter().map(|l| l.started_at).min();
    let mut fields = vec![
        ("product_description", format!("Carpool rides of billing week {}, billed weekly", detail.week)),
        ("customer_name", detail.user_name.clone()),
        ("uncategorized_text", text),
    ];
    if let Some(email) = user.and_then(|u| u.email) {
        fields.push(("customer_email_address", email));
    }
    if let Some(first) = first {
        fields.push(("service_date", first.with_timezone(&tz).format("%Y-%m-%d").to_string()));
    }
    if dispute.reason == "duplicate" {
        fields.push((
            "duplicate_charge_explanation",
            format!(
                "Invoice {} was charged once: the product charges each invoice with one idempotency key and records exactly one successful attempt (listed above).",
                detail.id
            ),
        ));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dispute_object_is_read_with_its_withdrawal_and_fee() {
        let object = json!({
            "id": "dp_1", "object": "dispute", "amount": 4250, "currency": "usd", "charge": "ch_1",
            "payment_intent": "pi_1", "reason": "duplicate", "status": "needs_response",
            "evidence_details": { "due_by": 1_800_000_000 },
            "balance_transactions": [{ "amount": -4250, "fee": 1500, "net": -5750 }],
            "metadata": { "invoice_id": "17" },
        });
        let event = event_of(&object).unwrap();
        assert_eq!((event.amount_minor, event.fee_minor, event.withdrawn), (4250, Some(1500), true));
        assert_eq!(event.invoice_hint, Some(17));
        assert_eq!(event.due_by.unwrap().timestamp(), 1_800_000_000);
        // An inquiry takes no money.
        let inquiry = json!({ "id": "dp_2", "object": "dispute", "amount": 100, "currency": "usd",
            "status": "warning_needs_response", "balance_transactions": [] });
        assert!(!event_of(&inquiry).unwrap().withdrawn);
        assert!(event_of(&json!({ "object": "charge" })).is_none());
    }
}

//! Support's lookups and refunds from the dashboard: find a customer, their profile and lists,
//! one invoice with everything that happened to it, refund it, and decide refunds that wait for
//! a second person.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::customer::{ActivityPage, CustomerProfile, UserHit};
use crate::model::refund::{InvoiceRecord, RefundAnswer, RefundView};

/// Customers whose id, name, email or phone starts with `q`.
#[server(prefix = "/api/fn", endpoint = "users/search")]
pub async fn search_users(q: String) -> Result<Vec<UserHit>, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SearchUsers as ServerFn>::PATH)?;
            super::backend()?.search_users(&caller, q).await
        }
        .await,
    )
}

/// A customer's profile and last twelve weeks.
#[server(prefix = "/api/fn", endpoint = "users/profile")]
pub async fn get_customer(id: String) -> Result<CustomerProfile, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<GetCustomer as ServerFn>::PATH)?;
            super::backend()?.customer_profile(&caller, id).await
        }
        .await,
    )
}

/// A page of one of a customer's lists (`invoices`, `attempts`, `refunds`, `rides`, `payouts`).
#[server(prefix = "/api/fn", endpoint = "users/activity")]
pub async fn customer_activity(
    id: String,
    section: String,
    before: String,
) -> Result<ActivityPage, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<CustomerActivity as ServerFn>::PATH)?;
            let section = crate::model::customer::Section::parse(&section).ok_or_else(|| {
                AppError::invalid("section", "one of invoices, attempts, refunds, rides, payouts")
            })?;
            super::backend()?.customer_activity(&caller, id, section, before).await
        }
        .await,
    )
}

/// One invoice with its lines, attempts, refunds, ledger entries and audit trail.
#[server(prefix = "/api/fn", endpoint = "invoices/get")]
pub async fn get_invoice(id: i64) -> Result<InvoiceRecord, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<GetInvoice as ServerFn>::PATH)?;
            super::backend()?.invoice_record(&caller, id).await
        }
        .await,
    )
}

/// Refunds an invoice: `amount` in major units (or empty with `lines`, comma-separated ride
/// ids), a reason, a note, and the request id the form was opened with.
#[server(prefix = "/api/fn", endpoint = "refunds/create")]
pub async fn create_refund(
    invoice_id: i64,
    amount: String,
    reason: String,
    request_id: String,
    note: String,
    lines: String,
) -> Result<RefundAnswer, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<CreateRefund as ServerFn>::PATH)?;
            let new = crate::model::refund::NewRefund {
                amount: Some(amount),
                reason,
                request_id,
                note: Some(note),
                lines: lines.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
                user_id: None,
            };
            super::backend()?.request_refund(&caller, invoice_id, new).await
        }
        .await,
    )
}

/// Approves (`decision` = `approve`) or rejects (`reject`, with a note) a refund waiting for
/// approval; never one's own.
#[server(prefix = "/api/fn", endpoint = "refunds/decide")]
pub async fn decide_refund(refund_id: i64, decision: String, note: String) -> Result<RefundView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<DecideRefund as ServerFn>::PATH)?;
            let approve = match decision.as_str() {
                "approve" => true,
                "reject" => false,
                other => {
                    return Err(AppError::invalid("decision", format!("{other:?}: use approve or reject")))
                }
            };
            super::backend()?.decide_refund(&caller, refund_id, approve, note).await
        }
        .await,
    )
}

/// Refunds waiting for an approval, oldest first.
#[server(prefix = "/api/fn", endpoint = "refunds/awaiting")]
pub async fn refunds_awaiting() -> Result<Vec<RefundView>, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<RefundsAwaiting as ServerFn>::PATH)?;
            super::backend()?.refunds_awaiting(&caller).await
        }
        .await,
    )
}

/// The refunds of an invoice, newest first: what the invoice page polls while one is under way
/// (the page's own read is the audited one).
#[server(prefix = "/api/fn", endpoint = "invoices/refunds")]
pub async fn invoice_refunds(id: i64) -> Result<Vec<RefundView>, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<InvoiceRefunds as ServerFn>::PATH)?;
            super::backend()?.invoice_refunds(&caller, id).await
        }
        .await,
    )
}

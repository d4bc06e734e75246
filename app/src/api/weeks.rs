//! The week's preview page: its summary, invoices, one invoice, payouts, and the approval.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::preview::{InvoiceDetail, InvoicePage, InvoiceQuery, PayoutPage, WeekSummary};
#[cfg(feature = "ssr")]
use crate::model::week::BillingWeek;

/// The week from a form or URL, or an error naming `week`.
#[cfg(feature = "ssr")]
fn parse_week(week: &str) -> Result<BillingWeek, AppError> {
    BillingWeek::parse(week).map_err(|m| AppError::invalid("week", m))
}

/// The week's totals and state; the preview is brought up to date with its rides first.
#[server(prefix = "/api/fn", endpoint = "weeks/summary")]
pub async fn get_week_summary(week: String) -> Result<WeekSummary, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<GetWeekSummary as ServerFn>::PATH)?;
            super::backend()?.week_summary(&caller, parse_week(&week)?).await
        }
        .await,
    )
}

/// A page of the week's invoices.
#[server(prefix = "/api/fn", endpoint = "weeks/invoices", input = server_fn::codec::Json)]
pub async fn week_invoices(query: InvoiceQuery) -> Result<InvoicePage, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<WeekInvoices as ServerFn>::PATH)?;
            parse_week(&query.week)?;
            super::backend()?.week_invoices(&caller, query).await
        }
        .await,
    )
}

/// One passenger's invoice of the week, with its lines.
#[server(prefix = "/api/fn", endpoint = "weeks/invoice")]
pub async fn week_invoice(week: String, user_id: String) -> Result<InvoiceDetail, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<WeekInvoice as ServerFn>::PATH)?;
            super::backend()?.week_invoice(&caller, parse_week(&week)?, user_id).await
        }
        .await,
    )
}

/// A page of the week's payouts, after the driver id `after`.
#[server(prefix = "/api/fn", endpoint = "weeks/payouts")]
pub async fn week_payouts(week: String, after: String) -> Result<PayoutPage, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<WeekPayouts as ServerFn>::PATH)?;
            super::backend()?.week_payouts(&caller, parse_week(&week)?, after).await
        }
        .await,
    )
}

/// Approves the week's preview whose content hash the approver reviewed.
#[server(prefix = "/api/fn", endpoint = "weeks/approve")]
pub async fn approve_week(week: String, content_hash: String) -> Result<WeekSummary, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<ApproveWeek as ServerFn>::PATH)?;
            super::backend()?.approve_week(&caller, parse_week(&week)?, content_hash).await
        }
        .await,
    )
}

//! The seam between the dashboard's server functions and the server's services.

use std::sync::Arc;

use leptos::prelude::use_context;

use super::AppError;
use crate::model::alerts::{AlertSettings, AlertView, AlertsPage};
use crate::model::audit::{AuditPage, AuditQuery};
use crate::model::customer::{ActivityPage, CustomerProfile, Section, UserHit};
use crate::model::dispute::{DisputeView, DisputesPage, EvidenceRequest};
use crate::model::preview::{InvoiceDetail, InvoicePage, InvoiceQuery, PayoutPage, WeekSummary};
use crate::model::pricing::{NewPolicyVersion, PolicyVersion, PolicyVersions, WhatIf};
use crate::model::reconcile::{OpenMismatch, Reconciliation};
use crate::model::refund::{InvoiceRecord, NewRefund, RefundAnswer, RefundView};
use crate::model::report::Report;
use crate::model::run::{HaltedRun, RunView};
use crate::model::staff::{AccessToken, NewAccessToken, Principal, Role, Staff};
use crate::model::system::Overview;
use crate::model::waiver::{NewWaiver, WaiverAnswer, WaiverView};
use crate::model::week::BillingWeek;

/// What the server offers the dashboard. The `server` crate implements it and provides an
/// `Arc<dyn Backend>` as Leptos context for every request. Methods that act on behalf of
/// someone take the [`Principal`], for the audit log.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Facts about the running server for the overview page.
    async fn overview(&self) -> Result<Overview, AppError>;
    /// A page of the audit log, newest first.
    async fn audit(&self, caller: &Principal, query: AuditQuery) -> Result<AuditPage, AppError>;
    /// Every staff account.
    async fn list_staff(&self, caller: &Principal) -> Result<Vec<Staff>, AppError>;
    /// Adds a staff account.
    async fn add_staff(
        &self,
        caller: &Principal,
        email: String,
        role: Role,
        password: String,
    ) -> Result<Staff, AppError>;
    /// Disables a staff account: its sessions and tokens stop working at once.
    async fn disable_staff(&self, caller: &Principal, staff_id: i64) -> Result<Staff, AppError>;
    /// The caller's own personal access tokens, newest first.
    async fn my_tokens(&self, caller: &Principal) -> Result<Vec<AccessToken>, AppError>;
    /// A new personal access token for the caller, valid `days` days.
    async fn create_my_token(
        &self,
        caller: &Principal,
        name: String,
        days: u16,
    ) -> Result<NewAccessToken, AppError>;
    /// Revokes one of the caller's own tokens.
    async fn revoke_my_token(&self, caller: &Principal, token_id: i64) -> Result<AccessToken, AppError>;
    /// The week's preview head, recomputed first if its rides changed (never once approved).
    async fn week_summary(&self, caller: &Principal, week: BillingWeek) -> Result<WeekSummary, AppError>;
    /// A page of the week's stored invoices.
    async fn week_invoices(&self, caller: &Principal, query: InvoiceQuery) -> Result<InvoicePage, AppError>;
    /// One passenger's invoice of the week.
    async fn week_invoice(
        &self,
        caller: &Principal,
        week: BillingWeek,
        user_id: String,
    ) -> Result<InvoiceDetail, AppError>;
    /// A page of the week's payouts.
    async fn week_payouts(
        &self,
        caller: &Principal,
        week: BillingWeek,
        after: String,
    ) -> Result<PayoutPage, AppError>;
    /// The latest runs, newest first.
    async fn list_runs(&self, caller: &Principal) -> Result<Vec<RunView>, AppError>;

    async fn retry_payout(
        &self,
        caller: &Principal,
        run_id: i64,
        payout_id: i64,
    ) -> Result<RunView, AppError>;

    /// A held charge (`kind` = `charge`) or payout (`payout`) looked up again.
    async fn look_up_again(
        &self,
        caller: &Principal,
        run_id: i64,
        kind: String,
        id: i64,
    ) -> Result<RunView, AppError>;

    /// A held charge or payout marked as not made: asked by one member, confirmed by another.
    async fn mark_not_made(
        &self,
        caller: &Principal,
        run_id: i64,
        kind: String,
        id: i64,
    ) -> Result<RunView, AppError>;

    async fn run_settings(&self, caller: &Principal) -> Result<crate::model::run::RunSettings, AppError>;

    async fn save_run_settings(
        &self,
        caller: &Principal,
        settings: crate::model::run::RunSettings,
    ) -> Result<crate::model::run::RunSettings, AppError>;
    /// One run.
    async fn run(&self, caller: &Principal, id: i64) -> Result<RunView, AppError>;
    /// Starts or joins the run of an approved week.
    async fn start_run(&self, caller: &Principal, week: BillingWeek) -> Result<RunView, AppError>;
    /// `pause`, `resume` or `abort` a run, with a reason.
    async fn control_run(
        &self,
        caller: &Principal,
        id: i64,
        action: String,
        reason: String,
    ) -> Result<RunView, AppError>;
    /// Runs halted by a guard.
    async fn halted_runs(&self, caller: &Principal) -> Result<Vec<HaltedRun>, AppError>;
    /// Freezes the week's preview with this content hash.
    async fn approve_week(
        &self,
        caller: &Principal,
        week: BillingWeek,
        content_hash: String,
    ) -> Result<WeekSummary, AppError>;
    /// Customers whose id, name, email or phone starts with `q` (audited).
    async fn search_users(&self, caller: &Principal, q: String) -> Result<Vec<UserHit>, AppError>;
    /// A customer's profile and last twelve weeks (audited).
    async fn customer_profile(&self, caller: &Principal, id: String) -> Result<CustomerProfile, AppError>;
    /// A page of one of a customer's lists, before the cursor `before` (empty: the newest).
    async fn customer_activity(
        &self,
        caller: &Principal,
        id: String,
        section: Section,
        before: String,
    ) -> Result<ActivityPage, AppError>;
    /// One invoice with everything that happened to it (audited).
    async fn invoice_record(&self, caller: &Principal, id: i64) -> Result<InvoiceRecord, AppError>;
    /// The refunds of an invoice, newest first.
    async fn invoice_refunds(&self, caller: &Principal, invoice_id: i64)
        -> Result<Vec<RefundView>, AppError>;
    /// Refunds (part of) an invoice, once per request id.
    async fn request_refund(
        &self,
        caller: &Principal,
        invoice_id: i64,
        refund: NewRefund,
    ) -> Result<RefundAnswer, AppError>;
    /// Approves or rejects a refund waiting for approval.
    async fn decide_refund(
        &self,
        caller: &Principal,
        refund_id: i64,
        approve: bool,
        note: String,
    ) -> Result<RefundView, AppError>;
    /// Refunds waiting for approval, oldest first.
    async fn refunds_awaiting(&self, caller: &Principal) -> Result<Vec<RefundView>, AppError>;
    /// The report of weeks `from` to `to` from the ledger (empty: the last complete week).
    async fn report(&self, caller: &Principal, from: String, to: String) -> Result<Report, AppError>;
    /// The week (empty: the last complete one) and its latest reconciliation.
    async fn latest_reconciliation(
        &self,
        caller: &Principal,
        week: String,
    ) -> Result<(String, Option<Reconciliation>), AppError>;
    /// Reconciles a week with the provider now.
    async fn run_reconciliation(&self, caller: &Principal, week: String) -> Result<Reconciliation, AppError>;
    /// Approves the week's proposed repair exactly as reviewed.
    async fn approve_repair(
        &self,
        caller: &Principal,
        week: String,
        payment_intents: Vec<String>,
    ) -> Result<Reconciliation, AppError>;
    /// Acknowledges the week's latest reconciliation.
    async fn acknowledge_reconciliation(
        &self,
        caller: &Principal,
        week: String,
    ) -> Result<Reconciliation, AppError>;
    /// Reconciliations with mismatches nobody acknowledged.
    async fn open_mismatches(&self, caller: &Principal) -> Result<Vec<OpenMismatch>, AppError>;
    /// The alerts page with the messages in state `messages` (empty: all); the channels only for
    /// those who may change them.
    async fn alerts_page(&self, caller: &Principal, messages: String) -> Result<AlertsPage, AppError>;
    /// The alerts not resolved yet, newest first, at most five.
    async fn unresolved_alerts(&self, caller: &Principal) -> Result<Vec<AlertView>, AppError>;
    /// Acknowledges (`resolve` false) or resolves an alert.
    async fn settle_alert(&self, caller: &Principal, id: i64, resolve: bool) -> Result<AlertView, AppError>;
    /// Stores where alerts go.
    async fn save_alert_settings(
        &self,
        caller: &Principal,
        settings: AlertSettings,
    ) -> Result<AlertSettings, AppError>;
    /// Raises a test alert to the first contact.
    async fn send_test_alert(&self, caller: &Principal) -> Result<AlertView, AppError>;
    /// Every fee policy version and the one in force this week.
    async fn pricing_versions(&self, caller: &Principal) -> Result<PolicyVersions, AppError>;
    /// The dispute queue, filtered to `status` when it is not empty.
    async fn disputes(&self, caller: &Principal, status: String) -> Result<DisputesPage, AppError>;
    /// Sends dispute `id`'s evidence to the provider and submits it.
    async fn send_dispute_evidence(
        &self,
        caller: &Principal,
        id: i64,
        request: EvidenceRequest,
    ) -> Result<DisputeView, AppError>;
    /// Proposes a fee policy version.
    async fn propose_pricing(
        &self,
        caller: &Principal,
        version: NewPolicyVersion,
    ) -> Result<PolicyVersion, AppError>;
    /// Approves another member's proposal, or withdraws a proposal.
    async fn decide_pricing(
        &self,
        caller: &Principal,
        id: i64,
        approve: bool,
    ) -> Result<PolicyVersion, AppError>;
    /// A stored week priced with its version and with version `id`.
    async fn pricing_what_if(
        &self,
        caller: &Principal,
        id: i64,
        week: BillingWeek,
    ) -> Result<WhatIf, AppError>;
    /// Waives a line (or the whole invoice) of `week`'s draft, once per request id.
    async fn request_waiver(
        &self,
        caller: &Principal,
        week: BillingWeek,
        waiver: NewWaiver,
    ) -> Result<WaiverAnswer, AppError>;
    /// Approves or rejects a waiver waiting for approval; never one's own.
    async fn decide_waiver(
        &self,
        caller: &Principal,
        waiver_id: i64,
        approve: bool,
        note: String,
    ) -> Result<WaiverView, AppError>;
    /// Withdraws a waiver of a draft week (the requester's, or by finance or admin).
    async fn withdraw_waiver(
        &self,
        caller: &Principal,
        waiver_id: i64,
        note: String,
    ) -> Result<WaiverView, AppError>;
}

/// The backend of the current request.
pub fn backend() -> Result<Arc<dyn Backend>, AppError> {
    use_context::<Arc<dyn Backend>>()
        .ok_or_else(|| AppError::Internal("the server provided no backend".into()))
}

/// The signed-in staff member making this request, if any.
fn principal() -> Option<Principal> {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<Principal>().cloned())
}

/// The role check every server function starts with, by its own path (`<Fn as ServerFn>::PATH`):
/// the function's entry in [`super::ACCESS`] decides. It runs inside the function because
/// server-side rendering calls server functions directly, not over HTTP (the HTTP middleware
/// checks the same table too, before the body is read). Returns the caller, `None` only for a
/// public function called anonymously.
pub fn caller(path: &str) -> Result<Option<Principal>, AppError> {
    let principal = principal();
    super::check_access(path, principal.as_ref())?;
    Ok(principal)
}

/// As [`caller`], for functions that need a signed-in caller.
pub fn staff_caller(path: &str) -> Result<Principal, AppError> {
    caller(path)?.ok_or(AppError::Unauthenticated)
}

/// Sets the response's HTTP status from the error (401, 403, 404, 422, 500), so that server
/// functions answer like the JSON API does; every server function ends with it.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(error) = &result {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(
                http::StatusCode::from_u16(error.status()).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
    }
    result
}

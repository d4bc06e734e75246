//! Server functions, one file per feature. Access to each is declared in [`ACCESS`]; a function
//! starts with `caller(Self::PATH)` (the role check), calls the backend and ends with
//! `respond` (the HTTP status). The server also checks the table before the body is read and
//! refuses any function missing from it.

pub mod alerts;
pub mod audit;
pub mod codec;
pub mod customers;
pub mod disputes;
pub mod error;
pub mod overview;
pub mod pricing;
pub mod reconcile;
pub mod reports;
pub mod runs;
pub mod staff;
pub mod tokens;
pub mod waivers;
pub mod weeks;

pub use codec::resource;
pub use error::AppError;

use crate::auth::Action;

#[cfg(feature = "ssr")]
mod backend;
#[cfg(feature = "ssr")]
pub use backend::{backend, caller, respond, staff_caller, Backend};

/// Who may call a server function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (it must reveal nothing without a caller).
    Public,
    /// A signed-in staff member whose role allows the action.
    Requires(Action),
}

/// Every server function's path and who may call it. The server refuses a server function that
/// is not listed here, and a test calls each one as each role.
#[rustfmt::skip]
pub const ACCESS: &[(&str, Access)] = &[
    ("/api/fn/whoami",          Access::Public),
    ("/api/fn/overview",        Access::Requires(Action::ViewOverview)),
    ("/api/fn/audit",           Access::Requires(Action::ViewAudit)),
    ("/api/fn/staff/list",      Access::Requires(Action::ManageStaff)),
    ("/api/fn/staff/add",       Access::Requires(Action::ManageStaff)),
    ("/api/fn/staff/disable",   Access::Requires(Action::ManageStaff)),
    ("/api/fn/tokens/list",     Access::Requires(Action::ManageOwnTokens)),
    ("/api/fn/tokens/create",   Access::Requires(Action::ManageOwnTokens)),
    ("/api/fn/tokens/revoke",   Access::Requires(Action::ManageOwnTokens)),
    ("/api/fn/weeks/summary",   Access::Requires(Action::PreviewWeek)),
    ("/api/fn/weeks/invoices",  Access::Requires(Action::PreviewWeek)),
    ("/api/fn/weeks/invoice",   Access::Requires(Action::PreviewWeek)),
    ("/api/fn/weeks/payouts",   Access::Requires(Action::PreviewWeek)),
    ("/api/fn/weeks/approve",   Access::Requires(Action::ApproveRun)),
    ("/api/fn/runs/list",       Access::Requires(Action::ViewOverview)),
    ("/api/fn/runs/get",        Access::Requires(Action::ViewOverview)),
    ("/api/fn/runs/settings",   Access::Requires(Action::ViewOverview)),
    ("/api/fn/runs/payouts/retry", Access::Requires(Action::ApproveRun)),
    ("/api/fn/runs/held/look-again", Access::Requires(Action::ApproveRun)),
    ("/api/fn/runs/held/not-made", Access::Requires(Action::ApproveRun)),
    ("/api/fn/runs/settings/save", Access::Requires(Action::ManageSettings)),
    ("/api/fn/runs/start",      Access::Requires(Action::ApproveRun)),
    ("/api/fn/runs/control",    Access::Requires(Action::PauseRun)),
    ("/api/fn/runs/halted",     Access::Public),
    ("/api/fn/users/search",    Access::Requires(Action::LookupUsers)),
    ("/api/fn/users/profile",   Access::Requires(Action::LookupUsers)),
    ("/api/fn/users/activity",  Access::Requires(Action::LookupUsers)),
    ("/api/fn/invoices/get",    Access::Requires(Action::LookupUsers)),
    ("/api/fn/invoices/refunds", Access::Requires(Action::LookupUsers)),
    ("/api/fn/refunds/create",  Access::Requires(Action::Refund)),
    ("/api/fn/refunds/decide",  Access::Requires(Action::ApproveRefund)),
    ("/api/fn/refunds/awaiting", Access::Requires(Action::ApproveRefund)),
    ("/api/fn/reports/get",     Access::Requires(Action::ExportReports)),
    ("/api/fn/reconcile/latest", Access::Requires(Action::Reconcile)),
    ("/api/fn/reconcile/run",   Access::Requires(Action::Reconcile)),
    ("/api/fn/reconcile/repair", Access::Requires(Action::Reconcile)),
    ("/api/fn/reconcile/acknowledge", Access::Requires(Action::Reconcile)),
    ("/api/fn/reconcile/open",  Access::Public),
    ("/api/fn/alerts/page",     Access::Requires(Action::ViewOverview)),
    ("/api/fn/alerts/open",     Access::Public),
    ("/api/fn/alerts/settle",   Access::Requires(Action::HandleAlerts)),
    ("/api/fn/alerts/settings", Access::Requires(Action::ManageSettings)),
    ("/api/fn/alerts/test",     Access::Requires(Action::ManageSettings)),
    ("/api/fn/pricing/versions", Access::Requires(Action::ManagePricing)),
    ("/api/fn/pricing/propose", Access::Requires(Action::ManagePricing)),
    ("/api/fn/pricing/decide",  Access::Requires(Action::ManagePricing)),
    ("/api/fn/pricing/what-if", Access::Requires(Action::ManagePricing)),
    ("/api/fn/disputes/list",   Access::Requires(Action::ManageDisputes)),
    ("/api/fn/disputes/evidence", Access::Requires(Action::ManageDisputes)),
    ("/api/fn/waivers/create",  Access::Requires(Action::Waive)),
    ("/api/fn/waivers/decide",  Access::Requires(Action::ApproveWaiver)),
    ("/api/fn/waivers/withdraw", Access::Requires(Action::Waive)),
];

/// The access rule of the server function at `path`, if it has one.
pub fn access(path: &str) -> Option<Access> {
    ACCESS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// Whether `principal` may call the server function at `path`: refused when the function is
/// not in [`ACCESS`], else as the role table says.
pub fn check_access(path: &str, principal: Option<&crate::model::staff::Principal>) -> Result<(), AppError> {
    match access(path) {
        None => Err(AppError::Forbidden("this server function has no entry in the role table".into())),
        Some(Access::Public) => Ok(()),
        Some(Access::Requires(action)) => crate::auth::authorize(principal, action).map(|_| ()),
    }
}

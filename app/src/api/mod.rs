//! Server functions, one file per feature. Access to each is declared in [`ACCESS`] and checked
//! by the server before the function runs (an unlisted function is refused); inside, a function
//! asks for the [`caller`], calls the backend and maps the result.

pub mod audit;
pub mod error;
pub mod overview;
pub mod staff;

pub use error::AppError;

use crate::auth::Action;

#[cfg(feature = "ssr")]
mod backend;
#[cfg(feature = "ssr")]
pub use backend::{backend, caller, respond, Backend};

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
];

/// The access rule of the server function at `path`, if it has one.
pub fn access(path: &str) -> Option<Access> {
    ACCESS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

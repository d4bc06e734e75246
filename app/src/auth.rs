//! Who may do what: the role table and the one function that checks it.
//!
//! Every server function and every JSON API handler calls [`authorize`] (server functions through
//! `crate::api::require`) before doing anything else.

use serde::{Deserialize, Serialize};

use crate::api::AppError;
use crate::model::staff::{Principal, Role};

/// Something a staff member can do. Actions for features still to come are listed so that the
/// roles are defined in one place; each is enforced from the first line of the feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// The overview page.
    ViewOverview,
    /// One's own profile and personal access tokens.
    ManageOwnTokens,
    /// Search users, see their charges and invoices.
    LookupUsers,
    /// Refund within the support limits (above them, the refund waits for approval).
    Refund,
    /// Approve a refund another staff member requested.
    ApproveRefund,
    /// See a week's invoice preview.
    PreviewWeek,
    /// Approve a week's run, so money moves.
    ApproveRun,
    /// Pause a run: the safe switch, open to everyone on call.
    PauseRun,
    /// Resume or abort a run.
    ResumeOrAbortRun,
    /// Finance reports and exports.
    ExportReports,
    /// Reconciliation with the provider, and its repairs.
    Reconcile,
    /// The audit log.
    ViewAudit,
    /// Staff accounts: list, add, disable.
    ManageStaff,
    /// Settings, and the ride-ingestion API keys.
    ManageSettings,
    /// Acknowledge and resolve alerts: everyone on call.
    HandleAlerts,
    /// See, propose, approve (another member's) and withdraw fee policy versions, and price a
    /// week under a proposal.
    ManagePricing,
    /// The dispute queue, and sending a dispute's evidence to the provider.
    ManageDisputes,
    /// Waive a line or an invoice of a draft week (support within the per-refund limit; above
    /// it, the waiver waits for approval).
    Waive,
    /// Approve or reject a waiver another staff member asked for.
    ApproveWaiver,
}

const Y: bool = true;
const N: bool = false;

/// The role table. Columns: support, finance, admin.
#[rustfmt::skip]
pub const ROLE_TABLE: &[(Action, [bool; 3])] = &[
    //                            support finance admin
    (Action::ViewOverview,        [Y,      Y,      Y]),
    (Action::ManageOwnTokens,     [Y,      Y,      Y]),
    (Action::LookupUsers,         [Y,      Y,      Y]),
    (Action::Refund,              [Y,      Y,      Y]),
    (Action::ApproveRefund,       [N,      Y,      Y]),
    (Action::PreviewWeek,         [Y,      Y,      Y]),
    (Action::ApproveRun,          [N,      Y,      Y]),
    (Action::PauseRun,            [Y,      Y,      Y]),
    (Action::ResumeOrAbortRun,    [N,      Y,      Y]),
    (Action::ExportReports,       [N,      Y,      Y]),
    (Action::Reconcile,           [N,      Y,      Y]),
    (Action::ViewAudit,           [N,      Y,      Y]),
    (Action::ManageStaff,         [N,      N,      Y]),
    (Action::ManageSettings,      [N,      N,      Y]),
    (Action::HandleAlerts,        [Y,      Y,      Y]),
    (Action::ManagePricing,       [N,      Y,      Y]),
    (Action::ManageDisputes,      [N,      Y,      Y]),
    (Action::Waive,               [Y,      Y,      Y]),
    (Action::ApproveWaiver,       [N,      Y,      Y]),
];

impl Role {
    /// Whether this role may take `action`. An action missing from the table is refused.
    pub fn can(self, action: Action) -> bool {
        let column = match self {
            Role::Support => 0,
            Role::Finance => 1,
            Role::Admin => 2,
        };
        ROLE_TABLE.iter().find(|(a, _)| *a == action).is_some_and(|(_, allowed)| allowed[column])
    }
}

/// The one authorisation check: a signed-in, active staff member whose role allows `action`.
/// `Unauthenticated` (401) when nobody is signed in, `Forbidden` (403) with a readable reason
/// when the role does not allow it.
pub fn authorize(principal: Option<&Principal>, action: Action) -> Result<&Principal, AppError> {
    let principal = principal.ok_or(AppError::Unauthenticated)?;
    if principal.staff.disabled_at.is_some() {
        return Err(AppError::Unauthenticated);
    }
    if principal.staff.role.can(action) {
        Ok(principal)
    } else {
        Err(AppError::Forbidden(format!("the {} role may not {}", principal.staff.role, describe(action))))
    }
}

/// A few words for error messages: "the support role may not approve runs".
pub fn describe(action: Action) -> &'static str {
    match action {
        Action::ViewOverview => "see the overview",
        Action::ManageOwnTokens => "manage access tokens",
        Action::LookupUsers => "look up users",
        Action::Refund => "issue refunds",
        Action::ApproveRefund => "approve refunds",
        Action::PreviewWeek => "preview weeks",
        Action::ApproveRun => "approve runs",
        Action::PauseRun => "pause runs",
        Action::ResumeOrAbortRun => "resume or abort runs",
        Action::ExportReports => "export reports",
        Action::Reconcile => "reconcile with the provider",
        Action::ViewAudit => "read the audit log",
        Action::ManageStaff => "manage staff",
        Action::ManageSettings => "change settings",
        Action::HandleAlerts => "handle alerts",
        Action::ManagePricing => "manage pricing",
        Action::ManageDisputes => "handle disputes",
        Action::Waive => "waive invoice lines",
        Action::ApproveWaiver => "approve waivers",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::staff::{AuthMethod, Staff};

    fn principal(role: Role) -> Principal {
        Principal {
            staff: Staff {
                id: 1,
                email: "a@example.com".into(),
                role,
                disabled_at: None,
                created_at: "2026-01-01T00:00:00Z".into(),
            },
            method: AuthMethod::Session,
            source: "127.0.0.1".into(),
        }
    }

    #[test]
    fn every_action_has_exactly_one_row() {
        for (i, (action, _)) in ROLE_TABLE.iter().enumerate() {
            assert!(!ROLE_TABLE[i + 1..].iter().any(|(a, _)| a == action), "{action:?} twice");
        }
    }

    #[test]
    fn admin_can_do_everything_and_roles_are_nested() {
        for (action, _) in ROLE_TABLE {
            assert!(Role::Admin.can(*action), "{action:?}");
            if Role::Support.can(*action) {
                assert!(Role::Finance.can(*action), "finance can do what support can: {action:?}");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(authorize(None, Action::ViewOverview), Err(AppError::Unauthenticated));
        let support = principal(Role::Support);
        let err = authorize(Some(&support), Action::ManageStaff).unwrap_err();
        assert_eq!(err, AppError::Forbidden("the support role may not manage staff".into()));
        assert!(authorize(Some(&support), Action::Refund).is_ok());
        let mut disabled = principal(Role::Admin);
        disabled.staff.disabled_at = Some("2026-01-02T00:00:00Z".into());
        assert_eq!(authorize(Some(&disabled), Action::ViewOverview), Err(AppError::Unauthenticated));
    }
}

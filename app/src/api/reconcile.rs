//! Reconciliation with the provider from the dashboard.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::reconcile::{OpenMismatch, Reconciliation};

/// The latest reconciliation of `week` (empty: the last complete week), if any.
#[server(prefix = "/api/fn", endpoint = "reconcile/latest")]
pub async fn latest_reconciliation(week: String) -> Result<(String, Option<Reconciliation>), AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<LatestReconciliation as ServerFn>::PATH)?;
            super::backend()?.latest_reconciliation(&caller, week).await
        }
        .await,
    )
}

/// Reconciles `week` with the provider now.
#[server(prefix = "/api/fn", endpoint = "reconcile/run")]
pub async fn run_reconciliation(week: String) -> Result<Reconciliation, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<RunReconciliation as ServerFn>::PATH)?;
            super::backend()?.run_reconciliation(&caller, week).await
        }
        .await,
    )
}

/// Approves the proposed repair of `week`: `payment_intents`, comma-separated, as reviewed.
#[server(prefix = "/api/fn", endpoint = "reconcile/repair")]
pub async fn approve_repair(week: String, payment_intents: String) -> Result<Reconciliation, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<ApproveRepair as ServerFn>::PATH)?;
            let list = payment_intents
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            super::backend()?.approve_repair(&caller, week, list).await
        }
        .await,
    )
}

/// Acknowledges the latest reconciliation of `week`.
#[server(prefix = "/api/fn", endpoint = "reconcile/acknowledge")]
pub async fn acknowledge_reconciliation(week: String) -> Result<Reconciliation, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<AcknowledgeReconciliation as ServerFn>::PATH)?;
            super::backend()?.acknowledge_reconciliation(&caller, week).await
        }
        .await,
    )
}

/// Reconciliations with mismatches nobody acknowledged (empty for those who may not reconcile,
/// and for anonymous callers), for the banner on every page.
#[server(prefix = "/api/fn", endpoint = "reconcile/open")]
pub async fn open_mismatches() -> Result<Vec<OpenMismatch>, AppError> {
    super::respond(
        async {
            match super::caller(<OpenMismatches as ServerFn>::PATH)? {
                Some(caller) if caller.staff.role.can(crate::auth::Action::Reconcile) => {
                    super::backend()?.open_mismatches(&caller).await
                }
                _ => Ok(Vec::new()),
            }
        }
        .await,
    )
}

//! The weekly run from the dashboard: list, one run, start, pause, resume, abort, and the runs
//! halted by a guard (for the banner on every page).

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::run::{HaltedRun, RunSettings, RunView};

/// The latest runs, newest first.
#[server(prefix = "/api/fn", endpoint = "runs/list")]
pub async fn list_runs() -> Result<Vec<RunView>, AppError> {
    super::respond(
        async { super::backend()?.list_runs(&super::staff_caller(<ListRuns as ServerFn>::PATH)?).await }
            .await,
    )
}

/// One run.
#[server(prefix = "/api/fn", endpoint = "runs/get")]
pub async fn get_run(id: i64) -> Result<RunView, AppError> {
    super::respond(
        async { super::backend()?.run(&super::staff_caller(<GetRun as ServerFn>::PATH)?, id).await }.await,
    )
}

/// Starts (or joins) the run of an approved week; `billing serve` works it.
#[server(prefix = "/api/fn", endpoint = "runs/start")]
pub async fn start_run(week: String) -> Result<RunView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<StartRun as ServerFn>::PATH)?;
            let week =
                crate::model::week::BillingWeek::parse(&week).map_err(|m| AppError::invalid("week", m))?;
            super::backend()?.start_run(&caller, week).await
        }
        .await,
    )
}

/// Pauses, resumes or aborts a run. Pausing is open to every role; resuming and aborting need
/// the right to (checked by the backend too).
#[server(prefix = "/api/fn", endpoint = "runs/control")]
pub async fn control_run(id: i64, action: String, reason: String) -> Result<RunView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<ControlRun as ServerFn>::PATH)?;
            if action != "pause" {
                crate::auth::authorize(Some(&caller), crate::auth::Action::ResumeOrAbortRun)?;
            }
            super::backend()?.control_run(&caller, id, action, reason).await
        }
        .await,
    )
}

/// Runs halted by a guard, for the red banner on every page. Public so that pages rendered for
/// someone not signed in (the sign-in page) can ask: they get an empty list.
#[server(prefix = "/api/fn", endpoint = "runs/halted")]
pub async fn halted_runs() -> Result<Vec<HaltedRun>, AppError> {
    super::respond(
        async {
            let Some(caller) = super::caller(<HaltedRuns as ServerFn>::PATH)? else { return Ok(Vec::new()) };
            crate::auth::authorize(Some(&caller), crate::auth::Action::ViewOverview)?;
            super::backend()?.halted_runs(&caller).await
        }
        .await,
    )
}

/// How runs work (every staff member may read it).
#[server(prefix = "/api/fn", endpoint = "runs/settings")]
pub async fn get_run_settings() -> Result<RunSettings, AppError> {
    super::respond(
        async {
            super::backend()?.run_settings(&super::staff_caller(<GetRunSettings as ServerFn>::PATH)?).await
        }
        .await,
    )
}

/// Changes how runs work (admin): every field, each checked; audited.
#[server(prefix = "/api/fn", endpoint = "runs/settings/save")]
pub async fn save_run_settings(settings: RunSettings) -> Result<RunSettings, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SaveRunSettings as ServerFn>::PATH)?;
            super::backend()?.save_run_settings(&caller, settings).await
        }
        .await,
    )
}

/// Looks a held charge or payout of a run up again at the provider (finance, admin; audited).
#[server(prefix = "/api/fn", endpoint = "runs/held/look-again")]
pub async fn look_up_again(run_id: i64, kind: String, id: i64) -> Result<RunView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<LookUpAgain as ServerFn>::PATH)?;
            super::backend()?.look_up_again(&caller, run_id, kind, id).await
        }
        .await,
    )
}

/// Asks, or confirms as a second member, that a held charge or payout was not made at the
/// provider (finance, admin; audited).
#[server(prefix = "/api/fn", endpoint = "runs/held/not-made")]
pub async fn mark_not_made(run_id: i64, kind: String, id: i64) -> Result<RunView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<MarkNotMade as ServerFn>::PATH)?;
            super::backend()?.mark_not_made(&caller, run_id, kind, id).await
        }
        .await,
    )
}

/// Tries a failed payout of a run again (finance, admin; audited).
#[server(prefix = "/api/fn", endpoint = "runs/payouts/retry")]
pub async fn retry_payout(run_id: i64, payout_id: i64) -> Result<RunView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<RetryPayout as ServerFn>::PATH)?;
            super::backend()?.retry_payout(&caller, run_id, payout_id).await
        }
        .await,
    )
}

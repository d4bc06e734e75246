//! The kill switch and the guards' halt: pause, resume and abort by a person, halt by a guard,
//! each with its reason, an event, an alert and (for a person) an audit entry.

use super::*;

/// Halts the run with `reason` (once; later halts keep the first reason).
pub(super) async fn halt(shared: &Shared, reason: &str) -> anyhow::Result<()> {
    halt_with(shared, AlertKind::RunHalted, reason).await
}

/// Halts the run and raises an alert of `kind` with it.
pub(super) async fn halt_with(shared: &Shared, kind: AlertKind, reason: &str) -> anyhow::Result<()> {
    if shared
        .db
        .set_control(shared.run.id, &[Control::Running], Control::Halted, reason, None, Some(kind))
        .await?
    {
        tracing::error!(run = shared.run.id, reason, "run halted by a guard");
    }
    // This process's workers stop before their next call; the others at their next poll.
    shared.publish.send_modify(|status| {
        status.control = Control::Halted;
        status.reason = Some(reason.to_owned());
    });
    Ok(())
}

/// The kill switch's one rule, for the dashboard, the JSON API and the CLI: `pause` a running
/// run, `resume` a paused or halted one, `abort` any that is not over; with a reason (at most
/// 500 characters) and an audit entry. Returns the run after the change.
pub async fn apply_control(
    db: &Db,
    actor: &crate::db::audit::Actor,
    run_id: i64,
    action: &str,
    reason: &str,
) -> Result<RunRow, crate::error::Error> {
    use crate::error::Error;
    let (to, from): (Control, &[Control]) = match action {
        "pause" => (Control::Paused, &[Control::Running]),
        "resume" => (Control::Running, &[Control::Paused, Control::Halted]),
        "abort" => (Control::Aborted, &[Control::Running, Control::Paused, Control::Halted]),
        other => return Err(Error::invalid("action", format!("{other:?} is not pause, resume or abort"))),
    };
    let reason = reason.trim();
    if reason.chars().count() > 500 {
        return Err(Error::invalid("reason", "at most 500 characters"));
    }
    // The event and the alert name who did it already ("paused by …: reason").
    let reason = if reason.is_empty() { "no reason given".to_owned() } else { reason.to_owned() };
    let internal = |e: sqlx::Error| crate::error::Error::internal("controlling a run", e);
    let run =
        db.run(run_id).await.map_err(internal)?.ok_or_else(|| Error::NotFound(format!("run {run_id}")))?;
    let alert = match to {
        Control::Paused => Some(AlertKind::RunPaused),
        Control::Aborted => Some(AlertKind::RunAborted),
        Control::Running | Control::Halted => None,
    };
    if !db.set_control(run_id, from, to, &reason, Some(actor), alert).await.map_err(internal)? {
        return Err(Error::conflict(
            "action",
            format!("run {run_id} is {} ({}); it cannot {action}", run.control, run.phase),
        ));
    }
    db.run(run_id).await.map_err(internal)?.ok_or_else(|| Error::NotFound(format!("run {run_id}")))
}

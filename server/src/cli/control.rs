//! `billing pause`, `billing resume` and `billing abort`: the kill switch of a week's run.

use super::{open_week, usage};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub(super) struct ControlArgs {
    /// The week whose run to control, such as 2026-W48.
    #[arg(long, value_name = "YYYY-Www")]
    week: String,
    /// Why, for the run's events and the audit log.
    #[arg(long, default_value = "", value_name = "TEXT")]
    reason: String,
}

/// `billing pause|resume|abort --week W`: `action` is the kill switch's word for it.
pub(super) async fn control(config: Config, args: ControlArgs, action: &str) -> anyhow::Result<()> {
    let (db, week) = open_week(&config, &args.week).await?;
    let run = db
        .run_of_week(&week.to_string())
        .await?
        .ok_or_else(|| usage(format!("--week: {week} has no run")))?;
    match crate::run::apply_control(&db, &crate::db::audit::Actor::cli(), run.id, action, &args.reason).await
    {
        Ok(run) => {
            println!("run {} of {week}: {}", run.id, run.control);
            Ok(())
        }
        Err(crate::error::Error::Conflict { message, .. }) => Err(usage(format!("--week: {message}"))),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

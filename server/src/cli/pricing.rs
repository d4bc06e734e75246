//! `billing pricing`: the fee policy versions, a proposal, its approval or withdrawal, and a
//! what-if of a proposal on a stored week. Each acts for the staff account `--as` names (finance
//! or admin), audited as that person from the command line: the second person of an approval is
//! another account than the proposer's, as on the dashboard.

use anyhow::Context;
use clap::Subcommand;

use super::{open_migrated, usage};
use crate::config::Config;
use crate::error::Error;
use app::model::pricing::NewPolicyVersion as Proposal;
use app::model::pricing::{PolicyVersion, WhatIf};
use app::model::staff::{AuthMethod, Principal};

#[derive(Debug, Subcommand)]
pub(super) enum PricingCommand {
    /// Every version: the one in force this week, those to come, the proposals.
    List {
        #[arg(long = "as", value_name = "EMAIL")]
        as_staff: String,
        /// A line per version (table), or the JSON the API answers.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Propose a version in force from --week; another finance or admin member approves it.
    Propose {
        #[arg(long = "as", value_name = "EMAIL")]
        as_staff: String,
        /// The first billing week it prices (this week or later).
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// Per completed trip, shared by its passengers, in major units (2.00).
        #[arg(long)]
        base: String,
        /// Per kilometre, shared by the trip's passengers (0.35).
        #[arg(long)]
        per_km: String,
        /// The platform's share in basis points (1500 = 15 %).
        #[arg(long)]
        platform_fee_bps: String,
        /// What a passenger who booked and did not come pays (3.00).
        #[arg(long)]
        no_show_fee: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Approve another member's proposal.
    Approve {
        id: i64,
        #[arg(long = "as", value_name = "EMAIL")]
        as_staff: String,
    },
    /// Withdraw a proposal.
    Withdraw {
        id: i64,
        #[arg(long = "as", value_name = "EMAIL")]
        as_staff: String,
    },
    /// Price a stored week with its version and with version ID, storing nothing.
    WhatIf {
        id: i64,
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        #[arg(long = "as", value_name = "EMAIL")]
        as_staff: String,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum Format {
    Table,
    Json,
}

pub(super) async fn pricing(config: Config, command: PricingCommand) -> anyhow::Result<()> {
    let db = open_migrated(&config).await?;
    let result = run(&db, &config, command).await;
    db.close().await;
    result
}

async fn run(db: &crate::db::Db, config: &Config, command: PricingCommand) -> anyhow::Result<()> {
    match command {
        PricingCommand::List { as_staff, format } => {
            let principal = acting_for(db, &as_staff).await?;
            let versions = crate::fee_policies::list(db, config, &principal).await.map_err(refused)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&versions)?),
                Format::Table => {
                    println!("this week: {}, priced by version {}", versions.current_week, versions.in_force);
                    for version in &versions.versions {
                        println!("{}", line(version));
                    }
                }
            }
        }
        PricingCommand::Propose { as_staff, week, base, per_km, platform_fee_bps, no_show_fee, note } => {
            let principal = acting_for(db, &as_staff).await?;
            let proposal =
                Proposal { effective_week: week, base, per_km, platform_fee_bps, no_show_fee, note };
            let version =
                crate::fee_policies::propose(db, config, &principal, &proposal).await.map_err(refused)?;
            println!("proposed: {}", line(&version));
        }
        PricingCommand::Approve { id, as_staff } => {
            let principal = acting_for(db, &as_staff).await?;
            let version =
                crate::fee_policies::decide(db, config, &principal, id, true).await.map_err(refused)?;
            println!("approved: {}", line(&version));
        }
        PricingCommand::Withdraw { id, as_staff } => {
            let principal = acting_for(db, &as_staff).await?;
            let version =
                crate::fee_policies::decide(db, config, &principal, id, false).await.map_err(refused)?;
            println!("withdrawn: {}", line(&version));
        }
        PricingCommand::WhatIf { id, week, as_staff, format } => {
            let principal = acting_for(db, &as_staff).await?;
            let week =
                app::model::week::BillingWeek::parse(&week).map_err(|m| usage(format!("--week: {m}")))?;
            let what_if =
                crate::fee_policies::what_if(db, config, &principal, id, week).await.map_err(refused)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&what_if)?),
                Format::Table => print_what_if(&what_if),
            }
        }
    }
    Ok(())
}

/// The active staff account `--as` names, acting from the command line.
async fn acting_for(db: &crate::db::Db, email: &str) -> anyhow::Result<Principal> {
    let email = app::model::staff::parse_email(email).map_err(|m| usage(format!("--as: {m}")))?;
    let staff = db
        .staff_credentials(&email)
        .await
        .context("reading staff accounts")?
        .map(|c| c.staff)
        .filter(|s| s.disabled_at.is_none())
        .ok_or_else(|| usage(format!("--as: no active staff account {email}")))?;
    let source = crate::db::audit::Actor::cli().source;
    Ok(Principal { staff, method: AuthMethod::Cli, source })
}

/// A refusal as the command line says it: a refused value names its option (exit 2).
fn refused(error: Error) -> anyhow::Error {
    match error {
        Error::Invalid { field, message } => usage(format!("--{}: {message}", field.replace('_', "-"))),
        other => anyhow::anyhow!("{other}"),
    }
}

fn line(version: &PolicyVersion) -> String {
    let p = &version.policy;
    format!(
        "{:>4}  {:<10} from {:<8}  base {} + {}/km, fee {} bps, no-show {}  {}{}",
        version.id,
        version.status.as_str(),
        version.effective_week.as_deref().unwrap_or("the start"),
        p.base,
        p.per_km,
        p.platform_fee_bps,
        p.no_show_fee,
        version.proposed_by.as_deref().map(|by| format!("proposed by {by}")).unwrap_or_default(),
        version.decided_by.as_deref().map(|by| format!(", decided by {by}")).unwrap_or_default(),
    )
}

fn print_what_if(w: &WhatIf) {
    println!("{}: version {} -> version {}", w.week, w.current_version, w.proposed_version);
    println!("  charged  {:>14} -> {:>14}", w.before.charged.to_string(), w.after.charged.to_string());
    println!("  fees     {:>14} -> {:>14}", w.before.fees.to_string(), w.after.fees.to_string());
    println!("  payouts  {:>14} -> {:>14}", w.before.payouts.to_string(), w.after.payouts.to_string());
    println!("  passengers {}: {} pay more, {} less, {} the same", w.passengers, w.up, w.down, w.same);
    for bucket in &w.distribution {
        if bucket.low == bucket.high {
            println!("  {:>24}  {}", "no change", bucket.passengers);
        } else {
            println!(
                "  {:>11} to {:>9}  {}",
                bucket.low.to_string(),
                bucket.high.to_string(),
                bucket.passengers
            );
        }
    }
    for change in &w.largest_increases {
        println!("  +{} {} ({} -> {})", change.change, change.user_id, change.before, change.after);
    }
}

//! The `billing` command line: one binary for the server, the jobs and the tools.
//!
//! This file holds the commands and their arguments, the exit codes and what the subcommands
//! share; each subcommand's work is in the file of its name.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;

mod control;
mod demo_data;
mod export;
mod preview;
mod pricing;
mod psp_sim;
mod reconcile;
mod run;
mod staff;

use self::control::ControlArgs;
use self::export::ExportFormat;
use self::preview::PreviewFormat;
use self::pricing::PricingCommand;
use self::psp_sim::PspSimArgs;
use self::reconcile::ReconcileFormat;
use self::staff::StaffCommand;

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `billing run` when the run is paused, halted or aborted.
pub const EXIT_STOPPED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "billing",
    version,
    about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dashboard, the JSON API, health checks and metrics until SIGTERM or Ctrl-C.
    ///
    /// Requests in flight are finished before the process exits. The database must be migrated
    /// first (`billing migrate`); until it is, /readyz answers 503 and the overview says why.
    Serve {
        /// Address to listen on; port 0 picks a free port (the address is printed).
        #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
        addr: SocketAddr,
    },
    /// Staff accounts: add one, issue a personal access token, seed the demo accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Add deterministic synthetic riders, drivers and rides (the same arguments always make the
    /// same data; running again adds nothing).
    DemoData {
        #[arg(long, default_value_t = 1000)]
        passengers: u32,
        #[arg(long, default_value_t = 100)]
        drivers: u32,
        /// Complete weeks before the current one; the current week so far is added too.
        #[arg(long, default_value_t = 4)]
        weeks: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Only the complete weeks, not the current week so far (what the benchmarks bill).
        #[arg(long)]
        complete_weeks_only: bool,
        /// The shape of user and ride ids: short readable ones, or random-looking UUIDs (still
        /// the same for the same arguments).
        #[arg(long, value_enum, default_value_t = crate::demo::IdShape::Demo)]
        ids: crate::demo::IdShape,
    },
    /// The week's invoices and payouts exactly as the run would charge and pay them.
    Preview {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
        format: PreviewFormat,
    },
    /// Start, resume or join the week's billing run, and stay until it ends.
    ///
    /// The week must be approved (or pass --approve). Any number of `billing run` and `billing
    /// serve` processes may work one run at once. Exit 0 when the run completed; 3 when it is
    /// paused, halted by a guard or aborted; any other non-zero code is an error.
    Run {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// Approve the week's current preview first, as the operating-system user.
        #[arg(long)]
        approve: bool,
        /// Concurrent workers in this process (default: the run settings').
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
    },
    /// Finance's export of a week (or of weeks --week to --to): the invoices with what was
    /// charged and refunded of each, as CSV (RFC 4180) or XLSX (a summary sheet from the ledger
    /// and a detail sheet), to --output or, for CSV, to stdout.
    Export {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// The last week of a range (default: --week).
        #[arg(long, value_name = "YYYY-Www")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Where to write it; required for XLSX. `--out` is the same.
        #[arg(long, visible_alias = "out", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Match the provider's charges, refunds and transfers of a week one to one with the ledger.
    ///
    /// Prints every item that does not match, with the user and the attempt. Exit 0 when
    /// everything matched, 3 when something did not (the result is kept for the dashboard,
    /// where finance reviews and approves the repair). Needs PSP_URL: the provider the runs used.
    Reconcile {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// A line per item (table), or one JSON object: {"week","matched","unexplained",
        /// "missing","mismatched"}.
        #[arg(long, value_enum, default_value_t = ReconcileFormat::Table)]
        format: ReconcileFormat,
    },
    /// The kill switch: no new provider call is made by any worker within a second; calls in
    /// flight finish and are recorded.
    Pause(ControlArgs),
    /// Let a paused or halted run go on.
    Resume(ControlArgs),
    /// Stop a run for good: nothing more is charged or paid by it.
    Abort(ControlArgs),
    /// Fee policy versions: list, propose, approve (a second person), withdraw, and a what-if of a
    /// proposal on a stored week. Each acts for the staff account --as names.
    #[command(subcommand)]
    Pricing(PricingCommand),
    /// Apply every pending migration to DATABASE_URL, then exit.
    ///
    /// Creates the SQLite file (and its folder) if needed. Safe to run again, and from several
    /// processes at once.
    Migrate,
    // Its help is the doc comment of its arguments, shared with the `psp-sim` binary.
    PspSim(PspSimArgs),
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    // The environment's part of `--help` comes from the list the configuration reads.
    let matches = Cli::command().after_long_help(crate::config::env_help()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("billing: configuration error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    crate::telemetry::init(&config);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("billing: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { addr } => crate::serve::serve(config, addr).await,
            Command::Migrate => crate::serve::migrate(config).await,
            Command::Staff(command) => staff::staff(config, command).await,
            Command::Pricing(command) => pricing::pricing(config, command).await,
            Command::DemoData { passengers, drivers, weeks, seed, complete_weeks_only, ids } => {
                let size = crate::demo::DemoSize {
                    passengers,
                    drivers,
                    weeks,
                    seed,
                    current_week: !complete_weeks_only,
                    ids,
                };
                demo_data::demo_data(config, size).await
            }
            Command::Preview { week, format } => preview::preview(config, &week, format).await,
            Command::PspSim(args) => psp_sim::psp_sim(args).await,
            Command::Run { week, approve, workers } => run::run(config, &week, approve, workers).await,
            Command::Export { week, to, format, output } => {
                export::export(config, &week, to, format, output).await
            }
            Command::Reconcile { week, format } => reconcile::reconcile(config, &week, format).await,
            Command::Pause(args) => control::control(config, args, "pause").await,
            Command::Resume(args) => control::control(config, args, "resume").await,
            Command::Abort(args) => control::control(config, args, "abort").await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("billing: {error:#}");
            if error.downcast_ref::<UsageError>().is_some()
                || error.downcast_ref::<crate::config::ConfigError>().is_some()
            {
                ExitCode::from(EXIT_USAGE)
            } else if error.downcast_ref::<RunStopped>().is_some() {
                ExitCode::from(EXIT_STOPPED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A value given on the command line (or stdin) was refused; the message names the option.
/// Exits with code 2, like a configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// The run did not complete: it is paused, halted or aborted. Exits with code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RunStopped(String);

async fn open_week(
    config: &Config,
    week: &str,
) -> anyhow::Result<(crate::db::Db, app::model::week::BillingWeek)> {
    let week = app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?;
    Ok((open_migrated(config).await?, week))
}

async fn open_migrated(config: &Config) -> anyhow::Result<crate::db::Db> {
    use anyhow::Context;
    let db = crate::db::Db::connect(&config.database).await.context("cannot open the database")?;
    if !db.migration_state().await?.is_current() {
        anyhow::bail!("the database is not migrated: run `billing migrate` first");
    }
    Ok(db)
}

//! The `billing` command line: one binary for the server, the jobs and the tools.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "billing",
    version,
    about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once.",
    long_about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once.\n\n\
        Configuration comes from the environment (all optional):\n  \
        DATABASE_URL       sqlite:… (default sqlite://data/billing.db) or postgres://…\n  \
        PSP_URL            payment provider base URL (default: the in-process simulator)\n  \
        PSP_API_KEY        provider secret key, sk_test_… or sk_live_…\n  \
        PSP_SIM_LATENCY_MS latency of the in-process simulator (default 0)\n  \
        BILLING_TZ         IANA zone billing weeks are cut in (default UTC)\n  \
        BILLING_CURRENCY   ISO 4217 code (default USD)\n  \
        LOG_FORMAT         text | json (default text)\n  \
        RUST_LOG           log filter (default info)\n\n\
        A bad value stops the command with exit code 2 and names the variable."
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
    /// Apply every pending migration to DATABASE_URL, then exit.
    ///
    /// Creates the SQLite file (and its folder) if needed. Safe to run again, and from several
    /// processes at once.
    Migrate,
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("billing: {error:#}");
            ExitCode::FAILURE
        }
    }
}

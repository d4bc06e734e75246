//! `psp-sim`: the payment-provider simulator as its own process, with the flags of `billing
//! psp-sim` and without the rest of the product. Logs go to stderr, filtered by `RUST_LOG`
//! (default info).

use std::process::ExitCode;

use clap::{Args as _, FromArgMatches as _};
use tracing_subscriber::EnvFilter;

/// Exit code for a value the command line gave that the simulator refuses.
const EXIT_USAGE: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let command = clap::Command::new("psp-sim").version(env!("CARGO_PKG_VERSION"));
    let matches = psp_sim::Args::augment_args(command).get_matches();
    let args = psp_sim::Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let addr = args.addr;
    let config = match args.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("psp-sim: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match psp_sim::run(addr, config, shutdown_signal::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("psp-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

//! `billing psp-sim`: the payment-provider simulator (the `psp-sim` crate) as its own process; in
//! a build without the `simulator` feature, the error saying so.

use super::usage;

#[cfg(feature = "simulator")]
pub(super) use psp_sim::Args as PspSimArgs;

#[cfg(feature = "simulator")]
pub(super) async fn psp_sim(args: PspSimArgs) -> anyhow::Result<()> {
    let addr = args.addr;
    let config = args.config().map_err(usage)?;
    psp_sim::run(addr, config, crate::telemetry::shutdown_signal()).await
}

/// Not in this build of billing, which was made without the `simulator` feature.
#[cfg(not(feature = "simulator"))]
#[derive(Debug, clap::Args)]
#[command(hide = true)]
pub(super) struct PspSimArgs {
    /// Whatever was given: refused with the command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    given: Vec<String>,
}

#[cfg(not(feature = "simulator"))]
pub(super) async fn psp_sim(_args: PspSimArgs) -> anyhow::Result<()> {
    Err(usage(crate::config::NO_SIMULATOR))
}

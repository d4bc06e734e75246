//! The command line of the simulator: the flags of `psp-sim` and of `billing psp-sim`.

use std::net::SocketAddr;

use crate::SimConfig;

/// The Stripe-shaped payment-provider simulator as its own process, until SIGTERM or Ctrl-C.
///
/// Prints `psp-sim listening on http://HOST:PORT` once it accepts connections. State lives in
/// memory; GET /sim/ledger lists every money movement it made. Faults are rolled with --seed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:4242", value_name = "ADDR")]
    pub addr: SocketAddr,
    /// Milliseconds the simulator takes to handle each request.
    #[arg(long, default_value_t = 0, value_name = "N")]
    latency_ms: u64,
    /// Probability (0 to 1) that a payment, refund or transfer is made but its answer is held
    /// for --hang-ms, so the client times out.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    timeout_after_charge: f64,
    /// Probability that a POST fails before doing anything (500 api_error or 429 rate_limit_error).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    error_rate: f64,
    /// Probability that a POST which moved money is answered with something that does not say
    /// so: a 408, a 424, a proxy's HTML page, or a connection reset.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    ambiguous_rate: f64,
    /// Probability that a payment with a good card is declined anyway.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    decline_rate: f64,
    /// Seed of the fault rolls: the same seed and the same requests give the same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Milliseconds an answer is held by --timeout-after-charge.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    hang_ms: u64,
    /// Model the platform's balance: a payment's funds become available to transfer this many
    /// seconds after it, and a transfer beyond the available balance is refused
    /// (`balance_insufficient`), as Stripe does. Without it, funds are there for any transfer.
    #[arg(long, value_name = "N")]
    funds_delay_seconds: Option<u64>,
    /// Send signed events (as Stripe does) for every payment, refund, transfer and dispute change
    /// to this URL.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The signing secret of those events (whsec_…).
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
}

impl Args {
    /// The fault settings, checked; or why not, naming the option (`--error-rate: …`).
    pub fn config(self) -> Result<SimConfig, String> {
        let config = SimConfig {
            latency_ms: self.latency_ms,
            timeout_after_charge: self.timeout_after_charge,
            error_rate: self.error_rate,
            ambiguous_rate: self.ambiguous_rate,
            decline_rate: self.decline_rate,
            seed: self.seed,
            hang_ms: self.hang_ms,
            // A misbehaving provider is for tests only: set it with PUT /sim/faults.
            overcharge_minor: 0,
            funds_delay_seconds: self.funds_delay_seconds,
            webhook_url: self.webhook_url,
            webhook_secret: self.webhook_secret,
        };
        config.validate().map_err(|e| format!("{}: {}", e.option(), e.message))?;
        Ok(config)
    }
}

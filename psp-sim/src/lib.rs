//! A payment-provider simulator that speaks the part of Stripe's HTTP API the product uses.
//!
//! It exists so the weekly run can be exercised against the failures that matter (latency,
//! errors, declines, and an answer lost *after* the charge was made) with no network, no
//! account and no real money, and so tests have a ground truth to compare the product's books
//! against: `GET /sim/ledger`, every money movement in the order the provider made it.
//!
//! Run it as its own process with `psp-sim` or `billing psp-sim` (the same flags: [`Args`]), or
//! in process with [`router`] or [`serve`]. State lives in memory and ends with the process.
//!
//! # The Stripe part
//!
//! Requests are form-encoded with bracket keys (`metadata[invoice_id]=…`); answers are Stripe's
//! JSON objects (`id`, `object`, `created` in unix seconds, integer minor-unit `amount`,
//! lowercase `currency`, `metadata`) and Stripe's error shape. Every `/v1` request needs
//! `Authorization: Bearer sk_test_…` (live keys are refused). Unknown parameters are refused,
//! as Stripe refuses them.
//!
//! - `POST /v1/customers`, `GET /v1/customers[/:id]`
//! - `POST /v1/payment_methods` (`type=card`, `card[token]=tok_visa`, or `tok_chargeDeclined`
//!   which declines when charged), `POST /v1/payment_methods/:id/attach`, `GET …/:id`
//! - `POST /v1/accounts` (connected accounts, for drivers), `GET …/:id`
//! - `POST /v1/payment_intents` (`confirm=true`, `off_session=true`): 200 `succeeded` with a
//!   `latest_charge` id, or 402 `card_error`/`card_declined`; `GET /v1/payment_intents[/:id]`
//! - `POST /v1/refunds` (by `payment_intent` or `charge`; `amount` defaults to what is left;
//!   refused with 400 `charge_disputed` while the charge has an open or lost dispute)
//! - `POST /v1/transfers` (to a connected account), `GET /v1/charges`, `/v1/refunds`,
//!   `/v1/transfers` (each also `/:id`), listed newest first with `limit`, `starting_after`
//!   and `ending_before`.
//! - `GET /v1/disputes[/:id]` (listed like charges, filtered by `charge` or `payment_intent`)
//!   and `POST /v1/disputes/:id` (Stripe's "update a dispute": `evidence[<text field>]`, up to
//!   150,000 characters in all, `metadata[…]`, and `submit`, which defaults to `true` as in
//!   Stripe). Disputes themselves are opened and decided by the test controls below.
//!
//! # Idempotency
//!
//! As Stripe documents it: a POST's `Idempotency-Key`, scoped to the API key, saves the answer
//! of the request that executed (successes and declines alike) and replays it, with
//! `Idempotent-Replayed: true`, to retries with the same endpoint and parameters (in any
//! order). Other parameters with that key: 400 `idempotency_error`. While the first request
//! runs: 409 `idempotency_key_in_use`. Requests refused before executing (bad parameters,
//! injected faults) save nothing. Without a key, every POST executes: that is how a duplicate
//! charge happens, and the ledger shows it.
//!
//! # Faults
//!
//! Rolled with a ChaCha generator seeded by `seed`, in the order requests execute, so a seed
//! reproduces a run as far as request ordering allows. See [`SimConfig`].
//!
//! # Test controls
//!
//! Not authenticated (the simulator is meant for localhost and test networks only):
//! `GET /sim/ledger`; `POST /sim/reset` (forgets everything and restores the starting faults);
//! `GET /sim/faults` and `PUT /sim/faults` (a JSON object with any of [`SimConfig`]'s fields,
//! to change faults while running); `POST /sim/clock` (`{"advance_seconds": N}`);
//! `POST /sim/disputes` (`{"charge": "ch_…", "reason"?: "fraudulent", "amount"?: N}`: the
//! cardholder's bank disputes a charge) and `POST /sim/disputes/:id/close`
//! (`{"outcome": "won"|"lost"}`: the bank decides). Their refusals use Stripe's error shape,
//! with `param` naming the field at fault.
//!
//! # Webhooks
//!
//! With `webhook_url` and `webhook_secret`, signed events as Stripe sends them:
//! `payment_intent.succeeded`, `refund.created`, `transfer.created`; for disputes,
//! `charge.dispute.created` then `charge.dispute.funds_withdrawn` when opened,
//! `charge.dispute.updated` on evidence or metadata, `charge.dispute.closed` (then
//! `charge.dispute.funds_reinstated` on a win) when decided.

mod args;
mod disputes;
mod error;
mod form;
mod idempotency;
mod ledger;
mod lists;
mod objects;
mod requests;
mod routes;
mod state;
mod store;
mod webhook;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use serde::Serialize;
use tokio::net::TcpListener;

pub use self::args::Args;
use self::state::Sim;

/// The longest latency accepted, in milliseconds.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// The longest funds may stay pending, in seconds (thirty days).
pub const MAX_FUNDS_DELAY_SECONDS: u64 = 30 * 24 * 3600;
/// The longest an answer can be held by `timeout_after_charge`, in milliseconds.
pub const MAX_HANG_MS: u64 = 600_000;

/// The simulator's fault settings. Probabilities are from 0 to 1; rolls are made per request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimConfig {
    /// How long the provider takes to handle each request (every GET, and every POST that got
    /// past its parameter checks, which keeps its idempotency key in use meanwhile).
    pub latency_ms: u64,
    /// The dangerous case: a payment, refund or transfer executes, is recorded in the ledger and
    /// saved under its idempotency key, but its answer is held for `hang_ms`, so a client with
    /// a shorter timeout never hears it. A retry with the same key gets the saved answer.
    pub timeout_after_charge: f64,
    /// A POST fails before doing anything: 500 `api_error` (two thirds) or 429
    /// `rate_limit_error` (one third). Nothing is saved, so a retry with the key runs.
    pub error_rate: f64,
    /// A POST that moved money (recorded, saved under its key) is answered with something that
    /// does not say so: a 408, a 424, a proxy's HTML page, or a connection reset mid-answer. A
    /// retry with the same key gets the saved answer.
    pub ambiguous_rate: f64,
    /// A payment with a good card is declined anyway (`generic_decline`), and saved as such.
    pub decline_rate: f64,
    /// A misbehaving provider: every successful payment takes this many minor units more than
    /// asked (and reports it), so that the product's amount guard can be tested. Zero by default.
    pub overcharge_minor: i64,
    /// Seeds the fault rolls (not the object ids, which are unique across runs).
    pub seed: u64,
    /// How long `timeout_after_charge` holds an answer, in milliseconds (cut short at shutdown).
    pub hang_ms: u64,
    /// How long a payment's funds stay pending before they are available to transfer, in
    /// seconds (Stripe: days). With it, a transfer beyond the available balance is refused with
    /// 400 `balance_insufficient`, as Stripe refuses it; without it (the default) the platform
    /// has funds for any transfer.
    pub funds_delay_seconds: Option<u64>,
    /// Where to send signed events for every payment, refund, transfer and dispute change, as
    /// Stripe does.
    pub webhook_url: Option<String>,
    /// The signing secret of those events (`whsec_…`).
    pub webhook_secret: Option<String>,
}

impl Default for SimConfig {
    /// No faults, no latency; held answers (if enabled later) wait ten seconds.
    fn default() -> Self {
        Self {
            latency_ms: 0,
            timeout_after_charge: 0.0,
            error_rate: 0.0,
            ambiguous_rate: 0.0,
            decline_rate: 0.0,
            overcharge_minor: 0,
            seed: 0,
            hang_ms: 10_000,
            funds_delay_seconds: None,
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

/// A fault setting out of range.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct SimConfigError {
    /// The [`SimConfig`] field at fault, such as `error_rate`.
    pub field: &'static str,
    pub message: String,
}

impl SimConfigError {
    /// The command-line option for the field, such as `--error-rate`.
    pub fn option(&self) -> String {
        format!("--{}", self.field.replace('_', "-"))
    }
}

impl SimConfig {
    /// Checks every setting; [`router`] and [`serve`] use the values as given, so check
    /// anything that came from a person first.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        let probabilities = [
            ("timeout_after_charge", self.timeout_after_charge),
            ("error_rate", self.error_rate),
            ("ambiguous_rate", self.ambiguous_rate),
            ("decline_rate", self.decline_rate),
        ];
        for (field, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(SimConfigError {
                    field,
                    message: format!("must be a probability from 0 to 1, not {p}"),
                });
            }
        }
        if let Some(url) = &self.webhook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SimConfigError {
                    field: "webhook_url",
                    message: format!("{url:?} is not an http(s) URL"),
                });
            }
            if !self.webhook_secret.as_deref().is_some_and(|s| s.starts_with("whsec_")) {
                return Err(SimConfigError {
                    field: "webhook_secret",
                    message: "events are signed: give a secret starting with whsec_".into(),
                });
            }
        }
        if !(0..=1_000_000).contains(&self.overcharge_minor) {
            return Err(SimConfigError {
                field: "overcharge_minor",
                message: format!("from 0 to 1000000 minor units, not {}", self.overcharge_minor),
            });
        }
        if let Some(delay) = self.funds_delay_seconds.filter(|d| *d > MAX_FUNDS_DELAY_SECONDS) {
            return Err(SimConfigError {
                field: "funds_delay_seconds",
                message: format!("at most {MAX_FUNDS_DELAY_SECONDS} seconds, not {delay}"),
            });
        }
        for (field, ms, max) in
            [("latency_ms", self.latency_ms, MAX_LATENCY_MS), ("hang_ms", self.hang_ms, MAX_HANG_MS)]
        {
            if ms > max {
                return Err(SimConfigError {
                    field,
                    message: format!("at most {max} milliseconds, not {ms}"),
                });
            }
        }
        Ok(())
    }
}

/// The simulator as an axum router with its own empty state, to mount or to serve.
pub fn router(config: SimConfig) -> axum::Router {
    routes::routes(Sim::new(config))
}

/// Serves the simulator on `listener` until `shutdown` completes, then releases any answer a
/// fault is holding and lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sim = Sim::new(config);
    let app = routes::routes(sim.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            sim.stop();
        })
        .await
}

/// `psp-sim` and `billing psp-sim`: listens on `addr`, prints `psp-sim listening on
/// http://HOST:PORT` (the real port, so `--addr 127.0.0.1:0` works) as its only line on stdout,
/// and serves until `shutdown` completes (SIGTERM or Ctrl-C). Make `shutdown` before calling:
/// whoever starts the simulator may stop it as soon as the address is printed.
pub async fn run(
    addr: SocketAddr,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "psp-sim listening on http://{local}")?;
        out.flush()?;
    }
    tracing::info!(%local, ?config, "psp-sim serving");
    serve(listener, config, shutdown).await.context("the simulator's HTTP server failed")?;
    tracing::info!("psp-sim stopped cleanly");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_name_their_field() {
        assert_eq!(SimConfig::default().validate(), Ok(()));
        let cases = [
            (SimConfig { error_rate: 1.5, ..SimConfig::default() }, "--error-rate"),
            (SimConfig { decline_rate: -0.1, ..SimConfig::default() }, "--decline-rate"),
            (SimConfig { timeout_after_charge: f64::NAN, ..SimConfig::default() }, "--timeout-after-charge"),
            (SimConfig { latency_ms: MAX_LATENCY_MS + 1, ..SimConfig::default() }, "--latency-ms"),
            (SimConfig { hang_ms: MAX_HANG_MS + 1, ..SimConfig::default() }, "--hang-ms"),
        ];
        for (config, option) in cases {
            assert_eq!(config.validate().expect_err(option).option(), option);
        }
    }
}

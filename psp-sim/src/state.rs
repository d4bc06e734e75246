//! The simulator's shared state: the store, the idempotency keys, and the fault dice.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use tokio::sync::watch;

use super::error::StripeError;
use super::idempotency::{Keys, Saved, Scope};
use super::store::Store;
use super::{SimConfig, SimConfigError};

/// One simulated provider. Clones share it; everything lives in memory, for this process only.
#[derive(Clone)]
pub(crate) struct Sim {
    shared: Arc<Shared>,
}

struct Shared {
    /// One lock for everything, held only between awaits: each request executes whole, and the
    /// ledger's order is the order in which requests executed.
    state: Mutex<State>,
    /// The faults the simulator started with, restored by `POST /sim/reset`.
    initial: SimConfig,
    /// Turns `true` when the server shuts down, to release answers held by a fault.
    stopping: watch::Sender<bool>,
    /// Stripe API requests received (`/v1/…`), for `GET /sim/stats`.
    requests: std::sync::atomic::AtomicU64,
    /// The same requests by the 10 ms they arrived in (milliseconds since the epoch / 10).
    arrivals: Mutex<std::collections::BTreeMap<i64, u32>>,
}

pub(crate) struct State {
    pub store: Store,
    pub keys: Keys,
    pub faults: Faults,
    /// How far the simulator's clock is ahead of the real one (`POST /sim/clock`).
    pub clock_offset: chrono::Duration,
}

impl State {
    /// The simulator's clock: what objects are created at and keys age by.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.clock_offset
    }
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        let state = State {
            store: Store::default(),
            keys: Keys::default(),
            faults: Faults::new(config.clone()),
            clock_offset: chrono::Duration::zero(),
        };
        let (stopping, _) = watch::channel(false);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                initial: config,
                stopping,
                requests: Default::default(),
                arrivals: Default::default(),
            }),
        }
    }

    /// The state, for the span of one synchronous step (never across an await). A panic in an
    /// earlier request does not wedge the simulator: every step leaves the state consistent.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one Stripe API request.
    pub fn count_request(&self) {
        self.shared.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slot = chrono::Utc::now().timestamp_millis().div_euclid(10);
        *self.shared.arrivals.lock().unwrap_or_else(PoisonError::into_inner).entry(slot).or_default() += 1;
    }

    /// The most Stripe API requests received in any one second (windows of a hundred 10 ms
    /// slots, sliding by 10 ms): what a provider's per-second limit counts.
    /// Only requests from `since_ms` (milliseconds since the epoch) on count.
    pub fn max_per_second(&self, since_ms: i64) -> u64 {
        let arrivals = self.shared.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        let slots: Vec<(i64, u32)> =
            arrivals.range(since_ms.div_euclid(10)..).map(|(s, n)| (*s, *n)).collect();
        let (mut most, mut in_window, mut start) = (0u64, 0u64, 0usize);
        for end in 0..slots.len() {
            in_window += u64::from(slots[end].1);
            while slots[end].0 - slots[start].0 >= 100 {
                in_window -= u64::from(slots[start].1);
                start += 1;
            }
            most = most.max(in_window);
        }
        most
    }

    /// Stripe API requests received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets every object, movement and key, and restores the starting faults and seed.
    pub fn reset(&self) {
        let mut state = self.lock();
        state.store = Store::default();
        state.keys = Keys::default();
        state.faults = Faults::new(self.shared.initial.clone());
        state.clock_offset = chrono::Duration::zero();
    }

    /// Ends every pause now and makes later ones return at once, so shutdown is not held up by
    /// answers a fault is sitting on.
    pub fn stop(&self) {
        self.shared.stopping.send_replace(true);
    }

    /// Sleeps for `ms`, or less if the server shuts down meanwhile.
    pub async fn pause(&self, ms: u64) {
        if ms == 0 {
            return;
        }
        let mut stopping = self.shared.stopping.subscribe();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = stopping.wait_for(|stopped| *stopped) => {}
        }
    }
}

/// The fault settings and the seeded dice they are rolled with. Every executing POST rolls the
/// same dice in the same order, so one seed and one sequence of requests give the same faults.
pub(crate) struct Faults {
    pub config: SimConfig,
    rng: ChaCha8Rng,
}

impl Faults {
    fn new(config: SimConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(config.seed);
        Self { config, rng }
    }

    fn roll(&mut self, probability: f64) -> bool {
        self.rng.random::<f64>() < probability
    }

    /// `error_rate`: the request fails before doing anything, two times in three with a 500
    /// `api_error`, otherwise with a 429 `rate_limit_error`.
    pub fn injected_error(&mut self) -> Option<StripeError> {
        if !self.roll(self.config.error_rate) {
            return None;
        }
        Some(if self.rng.random_range(0..3) == 0 {
            StripeError::rate_limited()
        } else {
            StripeError::api_error()
        })
    }

    /// `overcharge_minor`: what a successful payment takes beyond what was asked.
    pub fn overcharge_minor(&self) -> i64 {
        self.config.overcharge_minor
    }

    /// `funds_delay_seconds`: how long a payment's funds stay pending, when the balance is
    /// enforced.
    pub fn funds_delay(&self) -> Option<chrono::Duration> {
        self.config.funds_delay_seconds.map(|s| chrono::Duration::seconds(s as i64))
    }

    /// `decline_rate`: a payment with a good card is declined anyway.
    pub fn declines(&mut self) -> bool {
        self.roll(self.config.decline_rate)
    }

    /// `ambiguous_rate`: how to garble the answer of a request that moved money, if at all.
    pub fn garbles(&mut self) -> Option<Garble> {
        if !self.roll(self.config.ambiguous_rate) {
            return None;
        }
        Some(match self.rng.random_range(0..4) {
            0 => Garble::RequestTimeout,
            1 => Garble::FailedDependency,
            2 => Garble::ProxyPage,
            _ => Garble::Reset,
        })
    }

    /// `timeout_after_charge`: how long to hold the answer of a request that moved money.
    pub fn holds_answer(&mut self) -> Option<u64> {
        self.roll(self.config.timeout_after_charge).then_some(self.config.hang_ms)
    }

    /// Applies `PUT /sim/faults`; a new `seed` restarts the dice.
    pub fn update(&mut self, update: FaultsUpdate) -> Result<(), SimConfigError> {
        let mut config = self.config.clone();
        config.latency_ms = update.latency_ms.unwrap_or(config.latency_ms);
        config.timeout_after_charge = update.timeout_after_charge.unwrap_or(config.timeout_after_charge);
        config.error_rate = update.error_rate.unwrap_or(config.error_rate);
        config.ambiguous_rate = update.ambiguous_rate.unwrap_or(config.ambiguous_rate);
        config.decline_rate = update.decline_rate.unwrap_or(config.decline_rate);
        config.hang_ms = update.hang_ms.unwrap_or(config.hang_ms);
        config.overcharge_minor = update.overcharge_minor.unwrap_or(config.overcharge_minor);
        if update.funds_delay_seconds.is_some() {
            config.funds_delay_seconds = update.funds_delay_seconds;
        }
        if update.webhook_url.is_some() {
            config.webhook_url = update.webhook_url;
        }
        if update.webhook_secret.is_some() {
            config.webhook_secret = update.webhook_secret;
        }
        config.validate()?;
        if let Some(seed) = update.seed {
            config.seed = seed;
            self.rng = ChaCha8Rng::seed_from_u64(seed);
        }
        self.config = config;
        Ok(())
    }
}

/// An answer that does not say what happened (the `ambiguous_rate` fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Garble {
    /// 408 Request Timeout, as a proxy or load balancer answers.
    RequestTimeout,
    /// 424 Failed Dependency, with no provider's error.
    FailedDependency,
    /// 502 with a proxy's HTML page.
    ProxyPage,
    /// The connection is reset in the middle of a 200.
    Reset,
}

/// The body of `PUT /sim/faults`: any of the knobs; those left out keep their value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultsUpdate {
    pub latency_ms: Option<u64>,
    pub timeout_after_charge: Option<f64>,
    pub error_rate: Option<f64>,
    pub ambiguous_rate: Option<f64>,
    pub decline_rate: Option<f64>,
    pub seed: Option<u64>,
    pub hang_ms: Option<u64>,
    pub overcharge_minor: Option<i64>,
    pub funds_delay_seconds: Option<u64>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
}

/// An idempotency key reserved by a running request. The request saves its answer or frees
/// the key; if it never gets to (a panic), dropping the reservation frees the key, so a
/// retry is not refused as "in use" forever.
pub(crate) struct Reservation {
    sim: Sim,
    scope: Scope,
    settled: bool,
}

impl Reservation {
    pub fn new(sim: Sim, scope: Scope) -> Self {
        Self { sim, scope, settled: false }
    }

    pub fn save(mut self, keys: &mut Keys, saved: Saved) {
        keys.save(&self.scope, saved);
        self.settled = true;
    }

    pub fn release(mut self, keys: &mut Keys) {
        keys.release(&self.scope);
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.sim.lock().keys.release(&self.scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rolls(seed: u64) -> Vec<bool> {
        let config = SimConfig { error_rate: 0.5, seed, ..SimConfig::default() };
        let mut faults = Faults::new(config);
        (0..32).map(|_| faults.injected_error().is_some()).collect()
    }

    #[test]
    fn one_seed_gives_the_same_faults() {
        assert_eq!(rolls(7), rolls(7));
        assert_ne!(rolls(7), rolls(8));
    }

    #[test]
    fn certain_and_impossible_faults() {
        let mut faults = Faults::new(SimConfig { error_rate: 1.0, ..SimConfig::default() });
        assert!((0..100).all(|_| faults.injected_error().is_some()));
        assert!((0..100).all(|_| !faults.declines()));
        let mut faults =
            Faults::new(SimConfig { timeout_after_charge: 1.0, hang_ms: 5, ..SimConfig::default() });
        assert_eq!(faults.holds_answer(), Some(5));
    }

    #[test]
    fn an_update_is_checked_whole() {
        let mut faults = Faults::new(SimConfig::default());
        let bad = FaultsUpdate { error_rate: Some(0.5), decline_rate: Some(2.0), ..FaultsUpdate::default() };
        assert_eq!(faults.update(bad).expect_err("out of range").field, "decline_rate");
        assert_eq!(faults.config.error_rate, 0.0, "nothing applied");
        faults.update(FaultsUpdate { error_rate: Some(0.5), ..FaultsUpdate::default() }).expect("valid");
        assert_eq!(faults.config.error_rate, 0.5);
    }
}

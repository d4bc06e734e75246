//! Sign-in throttling, per account and per client address, in memory (each process keeps its
//! own counts; with several processes behind a balancer the effective limit is that many times
//! higher, which still stops online guessing).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Sign-in attempts allowed per account per minute.
pub const PER_ACCOUNT_PER_MINUTE: u32 = 5;
/// Sign-in attempts allowed per client address per minute.
pub const PER_ADDRESS_PER_MINUTE: u32 = 30;

/// Why an attempt was refused before the password was even checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    Account,
    Address,
}

/// The two limiters, shared by every request of a process.
#[derive(Clone)]
pub struct LoginThrottle {
    accounts: Arc<DefaultKeyedRateLimiter<String>>,
    addresses: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).expect("limits are positive"));
        LoginThrottle {
            accounts: Arc::new(RateLimiter::keyed(per_minute(PER_ACCOUNT_PER_MINUTE))),
            addresses: Arc::new(RateLimiter::keyed(per_minute(PER_ADDRESS_PER_MINUTE))),
        }
    }
}

impl LoginThrottle {
    /// Counts one attempt for `email` from `address`; refuses it when either is over its limit.
    pub fn check(&self, email: &str, address: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(address) = address {
            self.addresses.check_key(&address).map_err(|_| Throttled::Address)?;
        }
        self.accounts.check_key(&email.to_owned()).map_err(|_| Throttled::Account)
    }

    /// Forgets keys that are back to a full allowance; `billing serve` calls it every minute.
    pub async fn clean_forever(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            self.accounts.retain_recent();
            self.addresses.retain_recent();
        }
    }
}

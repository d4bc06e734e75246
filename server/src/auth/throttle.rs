//! Sign-in throttling, shared by every process through the database (`login_throttle`, migration
//! 0019), so that several processes behind a balancer do not multiply the allowance:
//! - per account, growing delays after a few failures ([`FREE_FAILURES`]): 2 s, 4 s, 8 s … never
//!   more than [`MAX_BLOCK`] at a time, so that guessing is slow and nobody can lock a chosen
//!   account (an admin during an incident, say) for long. A success clears it.
//! - per client, [`PER_CLIENT_PER_MINUTE`] attempts a minute, by the address a trusted proxy
//!   reports (`TRUSTED_PROXIES`) or else the peer's: behind a reverse proxy, clients are told
//!   apart, and a client cannot pick its own address with a header.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::db::{now, Db};
use crate::with_pool;

/// Failed sign-ins of an account without any delay.
pub const FREE_FAILURES: i64 = 4;
/// The longest an account waits after a failure.
pub const MAX_BLOCK: Duration = Duration::seconds(60);
/// Failures are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::minutes(15);
/// Sign-in attempts allowed per client per minute.
pub const PER_CLIENT_PER_MINUTE: i64 = 30;

/// Why an attempt was refused before the password was even checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    Account,
    Address,
}

/// How long an account waits after its `failures`-th failure in a row: nothing for the first
/// [`FREE_FAILURES`], then 2 s, doubling, up to [`MAX_BLOCK`].
pub fn delay(failures: i64) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::zero();
    }
    let exponent = u32::try_from((failures - FREE_FAILURES).min(10)).unwrap_or(10);
    Duration::seconds(2i64.pow(exponent)).min(MAX_BLOCK)
}

fn account_key(email: &str) -> String {
    format!("account:{}", email.to_lowercase())
}

impl Db {
    /// Counts one sign-in attempt of `client` and says whether it may go on: refused while the
    /// account waits out a delay, or when the client made too many attempts this minute.
    pub async fn login_allowed(
        &self,
        email: &str,
        client: Option<IpAddr>,
    ) -> Result<Result<(), Throttled>, sqlx::Error> {
        let at = now();
        if let Some(client) = client {
            // One statement: a new minute starts the count again.
            let attempts: i64 = with_pool!(self, pool => {
                sqlx::query_scalar(
                    "INSERT INTO login_throttle (key, count, since) VALUES ($1, 1, $2) ON CONFLICT (key) DO UPDATE \
                     SET count = CASE WHEN login_throttle.since < $3 THEN 1 ELSE login_throttle.count + 1 END, \
                     since = CASE WHEN login_throttle.since < $3 THEN $2 ELSE login_throttle.since END \
                     RETURNING count",
                )
                .bind(format!("client:{client}"))
                .bind(at)
                .bind(at - Duration::minutes(1))
                .fetch_one(pool)
                .await?
            });
            if attempts > PER_CLIENT_PER_MINUTE {
                return Ok(Err(Throttled::Address));
            }
        }
        let blocked: Option<Option<DateTime<Utc>>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT blocked_until FROM login_throttle WHERE key = $1")
                .bind(account_key(email))
                .fetch_optional(pool)
                .await?
        });
        Ok(match blocked.flatten() {
            Some(until) if until > at => Err(Throttled::Account),
            _ => Ok(()),
        })
    }

    /// Records a failed sign-in of `email`: one more failure in a row (forgotten after a quiet
    /// quarter of an hour) and the delay it earns. Returns the failures in a row.
    pub async fn login_failed(&self, email: &str) -> Result<i64, sqlx::Error> {
        let at = now();
        let key = account_key(email);
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::db::begin_writing(self)).await?;
            let lock = format!("SELECT count, since FROM login_throttle WHERE key = $1{}", crate::db::for_update(self));
            let before: Option<(i64, DateTime<Utc>)> = sqlx::query_as(&lock).bind(&key).fetch_optional(&mut *tx).await?;
            let failures = match before {
                Some((count, since)) if since >= at - FORGET_AFTER => count + 1,
                _ => 1,
            };
            let blocked = delay(failures);
            let until = (blocked > Duration::zero()).then(|| at + blocked);
            sqlx::query(
                "INSERT INTO login_throttle (key, count, since, blocked_until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET count = $2, since = $3, blocked_until = $4",
            )
            .bind(&key)
            .bind(failures)
            .bind(at)
            .bind(until)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(failures)
        })
    }

    /// A successful sign-in of `email` clears its failures.
    pub async fn login_succeeded(&self, email: &str) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(account_key(email)).execute(pool).await.map(|_| ())
        })
    }

    /// Forgets counts nobody needs any more (`billing serve`, every minute).
    pub async fn forget_login_counts(&self) -> Result<(), sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM login_throttle WHERE since < $1 AND (blocked_until IS NULL OR blocked_until < $2)")
                .bind(at - FORGET_AFTER)
                .bind(at)
                .execute(pool)
                .await
                .map(|_| ())
        })
    }
}

/// The client's address: the peer's, or, when the peer is one of `trusted` proxies, the last
/// address in `X-Forwarded-For` that is not a trusted proxy itself (what the outermost trusted
/// proxy saw). A client cannot choose its address with the header: it is read only from a
/// trusted peer.
pub fn client_ip(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = forwarded_for.unwrap_or_default();
    let client = forwarded
        .split(',')
        .rev()
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .find(|a| !trusted.contains(a));
    Some(client.unwrap_or(peer))
}

/// Forgets old counts every minute, forever (`billing serve`).
pub async fn clean_forever(db: Db) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        if let Err(e) = db.forget_login_counts().await {
            tracing::debug!(error = %e, "old sign-in counts could not be forgotten");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_never_pass_a_minute() {
        let seconds: Vec<i64> = (1..=12).map(|n| delay(n).num_seconds()).collect();
        assert_eq!(seconds, vec![0, 0, 0, 0, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay(1_000_000), MAX_BLOCK);
    }

    #[test]
    fn the_client_is_read_from_a_trusted_proxy_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy = [ip("10.0.0.1")];
        assert_eq!(client_ip(Some(ip("10.0.0.1")), Some("203.0.113.7"), &proxy), Some(ip("203.0.113.7")));
        // A client's own header is ignored when it talks to us directly.
        assert_eq!(
            client_ip(Some(ip("198.51.100.2")), Some("203.0.113.7"), &proxy),
            Some(ip("198.51.100.2"))
        );
        // What the client wrote before the proxy appended the real address is ignored too.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), Some("1.2.3.4, 203.0.113.7"), &proxy),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(client_ip(Some(ip("10.0.0.1")), Some("junk"), &proxy), Some(ip("10.0.0.1")));
        assert_eq!(client_ip(Some(ip("10.0.0.1")), None, &[]), Some(ip("10.0.0.1")));
    }
}

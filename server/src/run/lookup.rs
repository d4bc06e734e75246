//! Attempts past the key-reuse window. The provider forgets an idempotency key after a day, so
//! an attempt whose key was first sent longer ago than the window is never sent again: what it
//! made is looked up in the provider's lists (the passenger's payment intents, the driver's
//! transfers, matched on the metadata of every call). Something made is recorded as the
//! attempt's success; nothing made closes the attempt, and a new one goes out under a new key;
//! a lookup that cannot be made holds the item for a person.

use super::*;
use crate::psp::lookup::Found;

/// How far before the attempt began the lookup reads, for a difference between our clock and
/// the provider's.
const CLOCK_SLACK: Duration = Duration::minutes(10);

/// Lookups tried before the item is held for a person, when the provider does not answer.
const TRIES: usize = 3;

/// What a lookup found, in the words the recording of an answer needs.
pub(super) enum Looked {
    /// Made: the provider's object and the amount it moved; `more` further movements of the
    /// same item (a duplicate made outside this attempt: the run halts).
    Made { id: String, amount_minor: i64, more: usize },
    /// Tried and refused by the provider (a decline): nothing moved.
    Refused(String),
    /// Still on its way: asked again later, by a lookup again.
    Undecided(String),
    /// Nothing was made: a new attempt under a new key.
    NotMade(String),
    /// The provider could not be asked: the item waits for a person.
    Held(String),
}

/// Whether `attempt` must be looked up rather than sent again.
pub(super) fn past_window(shared: &Shared, attempt: &Attempt) -> bool {
    attempt.past_window(Duration::seconds(shared.settings.key_window_seconds))
}

/// Asks the provider with `find` (each page within the account's limit) up to [`TRIES`] times,
/// and sorts the answer.
async fn look<F, Fut>(what: &str, attempt: &Attempt, find: F) -> Looked
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Found, ProviderError>>,
{
    let mut last = String::new();
    for _ in 0..TRIES {
        match find().await {
            Ok(Found::Made { id, amount_minor, more }) => return Looked::Made { id, amount_minor, more },
            Ok(Found::Refused { detail, .. }) => return Looked::Refused(detail),
            Ok(Found::Undecided { id, status }) => {
                return Looked::Undecided(format!("looked up {what}: {id} is still {status}"))
            }
            Ok(Found::Nothing) => {
                return Looked::NotMade(format!(
                    "attempt {} (key first sent {}) is past the key-reuse window; looked up {what}: nothing was made",
                    attempt.number,
                    attempt.started_at.format("%Y-%m-%d %H:%M UTC")
                ))
            }
            Err(e) => {
                last = e.to_string();
                if !e.retryable() {
                    break;
                }
                tokio::time::sleep(StdDuration::from_millis(500)).await;
            }
        }
    }
    Looked::Held(format!(
        "attempt {} is past the key-reuse window and could not be looked up {what}: {last}",
        attempt.number
    ))
}

/// Looks up what charge attempt `attempt` of `item` made for the passenger's `customer`.
pub(super) async fn charge(shared: &Shared, item: &Claimed, customer: &str, attempt: &Attempt) -> Looked {
    let since = attempt.started_at - CLOCK_SLACK;
    let limiter = Some(&shared.limiter);
    look("among the passenger's payments", attempt, || {
        shared.client.find_payment(customer, item.id, since, limiter)
    })
    .await
}

/// Looks up what transfer attempt `attempt` of `item` made, among the week's transfers (to
/// whichever account it went: the driver's may have changed since).
pub(super) async fn transfer(shared: &Shared, item: &Claimed, attempt: &Attempt) -> Looked {
    let since = attempt.started_at - CLOCK_SLACK;
    let limiter = Some(&shared.limiter);
    let week = shared.run.week.as_str();
    look("among the week's transfers", attempt, || shared.client.find_transfer(week, item.id, since, limiter))
        .await
}

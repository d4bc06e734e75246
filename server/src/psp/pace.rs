//! How fast the product may call the provider. The provider's limit is per account, not per
//! process: [`Pace`] takes every call from the database's slots (see `Db::take_provider_calls`),
//! so any number of processes together stay within it.

use std::time::Duration;

use tokio::sync::Mutex;

use crate::db::provider::{slot_share, SLOT_MS};
use crate::db::Db;

/// The account's limit on provider calls, shared with every process through the database;
/// callers wait on it just before each call. Calls granted to this process in the current slot
/// are handed out one by one.
pub struct Pace {
    db: Db,
    per_second: u32,
    /// The calls granted to this process in the current slot.
    granted: Mutex<Granted>,
    /// Callers waiting for a call: what this process asks for (up to a slot's share), so that
    /// it does not hold calls the other processes could have made.
    waiting: std::sync::atomic::AtomicU32,
}

/// What this process holds of one slot: calls left to hand out, and whether the slot had
/// nothing more to give (so nobody here asks again until the next).
#[derive(Default)]
struct Granted {
    slot: i64,
    left: u32,
    full: bool,
}

impl Pace {
    /// The account's limit of `per_second` calls, shared with every process on `db`.
    pub fn shared(db: &Db, per_second: u32) -> Pace {
        Pace {
            db: db.clone(),
            per_second: per_second.max(1),
            granted: Mutex::new(Granted::default()),
            waiting: Default::default(),
        }
    }

    /// Waits until one more call may start now.
    pub async fn until_ready(&self) {
        use std::sync::atomic::Ordering;
        let share = slot_share(self.per_second);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        // Counted out however this call ends (a caller may be dropped while it waits).
        struct Done<'a>(&'a std::sync::atomic::AtomicU32);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _done = Done(&self.waiting);
        loop {
            let slot = chrono::Utc::now().timestamp_millis() / SLOT_MS;
            let mut granted = self.granted.lock().await;
            // Calls granted in a slot are spent in it or lost: carried over, they would let a
            // window hold more than the limit.
            let full = if granted.slot == slot {
                if granted.left > 0 {
                    granted.left -= 1;
                    return;
                }
                granted.full
            } else {
                false
            };
            if !full {
                // As many as wait here, up to the slot's share; whatever the slot has left.
                let want = self.waiting.load(Ordering::Relaxed).clamp(1, share);
                match self.db.take_provider_calls(self.per_second, want).await {
                    Ok(Some((at, got))) => {
                        *granted = Granted { slot: at, left: got - 1, full: false };
                        return;
                    }
                    // Nothing left in this slot: nobody here asks again until the next.
                    Ok(None) => *granted = Granted { slot, left: 0, full: true },
                    Err(e) => {
                        tracing::warn!(error = %e, "the shared provider limit could not be read; waiting")
                    }
                }
            }
            drop(granted);
            let next_slot_ms = (slot + 1) * SLOT_MS;
            let wait = (next_slot_ms - chrono::Utc::now().timestamp_millis()).clamp(1, SLOT_MS) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }
}

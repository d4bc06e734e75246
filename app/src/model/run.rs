//! The weekly run as the dashboard shows it: phase, control, counts, amounts, throughput and
//! the latest events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::money::Money;

/// One line of a run's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

/// A run and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunView {
    pub id: i64,
    pub week: String,
    /// `canary`, `charging`, `paying_out` or `completed`.
    pub phase: String,
    /// `running`, `paused`, `halted` (by a guard) or `aborted`.
    pub control: String,
    pub reason: Option<String>,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    pub completed_at: Option<DateTime<Utc>>,
    /// The approved total, what is charged so far, what is paid to drivers so far.
    pub expected: Money,
    pub charged: Money,
    pub paid: Money,
    pub invoices: i64,
    pub charged_count: i64,
    pub declined: i64,
    pub uncollectible: i64,
    pub pending: i64,
    pub payouts: i64,
    pub paid_count: i64,
    pub attempts: i64,
    pub unknown_attempts: i64,
    /// Successful provider calls in each of the last 24 five-second slots, oldest first.
    pub sparkline: Vec<i64>,
    /// Calls per second over the last ten seconds, times ten (an integer: 125 = 12.5/s).
    pub rate_x10: i64,
    /// Seconds to go at that rate, when it is moving.
    pub eta_seconds: Option<i64>,
    /// Newest first.
    pub events: Vec<RunEvent>,
}

impl RunView {
    /// Finished items out of all, per mille, for the progress bar (charges, then payouts).
    pub fn progress_per_mille(&self) -> i64 {
        let total = self.invoices + self.payouts;
        if total == 0 {
            return 1000;
        }
        let done = (self.invoices - self.pending) + self.paid_count;
        (done * 1000 / total).clamp(0, 1000)
    }

    /// Whether workers may still make calls.
    pub fn running(&self) -> bool {
        self.control == "running" && self.phase != "completed"
    }
}

/// A run halted by a guard, for the banner on every page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaltedRun {
    pub id: i64,
    pub week: String,
    pub reason: String,
}

//! What the run needs to know of the provider beyond each call: who cannot be charged or paid
//! before anyone tries (no card, no account), invoices given up without a call, payouts that
//! wait for funds or for an account, and the provider account's call limit shared by every
//! process (migration 0017).

use chrono::{DateTime, Utc};

use super::alerts::Notice;
use super::writes::{NoticeSubjects, Writes};
use super::{now, Db};
use crate::billing::ledger::Transaction;
use crate::with_pool;

/// The reason stored on an invoice given up because its passenger has no card.
pub const NO_PAYMENT_METHOD: &str = "no_payment_method";

/// How many of a week's invoices and payouts cannot go through as things stand, and the first
/// few people concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentGaps {
    /// Invoices whose passenger has no customer or no card at the provider.
    pub no_payment_method: i64,
    /// Payouts (above zero) whose driver has no connected account.
    pub no_payout_account: i64,
    /// The first [`GAPS_NAMED`] of those passengers and drivers, by id.
    pub passengers: Vec<String>,
    pub drivers: Vec<String>,
}

/// How many passengers and drivers of each gap are named.
pub const GAPS_NAMED: i64 = 20;

/// One kind of wait of a run's payouts: what for, how many, the next try, and a reason given.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Waiting {
    /// `funds` or `account`.
    pub waiting_for: String,
    pub payouts: i64,
    pub amount_minor: i64,
    /// The earliest next try.
    pub next_at: DateTime<Utc>,
    /// The provider's or the run's words for one of them.
    pub detail: Option<String>,
}

/// A payout of a run that failed, with the last attempt's words.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedPayout {
    pub payout_id: i64,
    pub driver_id: String,
    pub amount_minor: i64,
    pub attempts: i64,
    pub detail: Option<String>,
}

/// The statement that finds a week's invoices without a card: the passenger has no row, no
/// customer or no payment method.
const NO_CARD: &str = "FROM invoices i LEFT JOIN provider_accounts p ON p.user_id = i.user_id \
     WHERE i.week = $1 AND (p.customer_id IS NULL OR p.payment_method IS NULL)";
const NO_ACCOUNT: &str = "FROM payouts o LEFT JOIN provider_accounts p ON p.user_id = o.driver_id \
     WHERE o.week = $1 AND o.total_minor > 0 AND p.account_id IS NULL";

impl Db {
    /// How many of `week`'s invoices cannot be charged and payouts cannot be paid with the
    /// provider objects stored now (read when the week is shown, so a card added since counts).
    pub async fn payment_gaps(&self, week: &str) -> Result<PaymentGaps, sqlx::Error> {
        let count = |from: &str| format!("SELECT COUNT(*) {from}");
        let named = |who: &str, from: &str| format!("SELECT {who} {from} ORDER BY {who} LIMIT {GAPS_NAMED}");
        with_pool!(self, pool => {
            let no_payment_method: i64 = sqlx::query_scalar(&count(NO_CARD)).bind(week).fetch_one(pool).await?;
            let no_payout_account: i64 = sqlx::query_scalar(&count(NO_ACCOUNT)).bind(week).fetch_one(pool).await?;
            let passengers = sqlx::query_scalar(&named("i.user_id", NO_CARD)).bind(week).fetch_all(pool).await?;
            let drivers = sqlx::query_scalar(&named("o.driver_id", NO_ACCOUNT)).bind(week).fetch_all(pool).await?;
            Ok(PaymentGaps { no_payment_method, no_payout_account, passengers, drivers })
        })
    }

    /// Gives up claimed invoices whose passenger has no card, without a provider call: each one
    /// held by `worker`, with no attempt whose answer is still unknown (that one keeps its claim
    /// until the lease ends), becomes `uncollectible` with reason `no_payment_method`, its write-off
    /// (from `write_offs`, by invoice) is recorded, and its passenger gets a notice asking for a
    /// card, all in one transaction. Returns the invoices given up.
    pub async fn give_up_without_card(
        &self,
        write_offs: &[(i64, Transaction)],
        worker: &str,
    ) -> Result<Vec<i64>, sqlx::Error> {
        if write_offs.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let mut given_up = Vec::new();
            let mut notices = Vec::new();
            for (invoice, write_off) in write_offs {
                let updated = sqlx::query(
                    "UPDATE charges SET state = 'uncollectible', reason = $1, lease_owner = NULL, lease_until = NULL \
                     WHERE invoice_id = $2 AND lease_owner = $3 AND state IN ('pending', 'declined') \
                     AND NOT EXISTS (SELECT 1 FROM charge_attempts a WHERE a.invoice_id = charges.invoice_id \
                     AND a.outcome IN ('started', 'unknown'))",
                )
                .bind(NO_PAYMENT_METHOD)
                .bind(invoice)
                .bind(worker)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated == 1 {
                    tx.ledger_once(write_off, at).await?;
                    // The `declined` notice reads the reason and asks for a card.
                    notices.push(Notice { kind: "declined", subject_id: *invoice, dedupe_key: format!("add_card:{invoice}") });
                    given_up.push(*invoice);
                }
            }
            tx.notices(&notices, NoticeSubjects::Invoices).await?;
            tx.commit().await?;
            Ok(given_up)
        })
    }

    /// Puts claimed payouts held by `worker` back to wait, still pending, for `waiting_for`
    /// (`account`) until `retry_at`, without a provider call or an attempt.
    pub async fn defer_payouts(
        &self,
        payouts: &[i64],
        worker: &str,
        waiting_for: &str,
        detail: &str,
        retry_at: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            for payout in payouts {
                sqlx::query(
                    "UPDATE transfers SET waiting_for = $1, waiting_detail = $2, next_at = $3, lease_owner = NULL, \
                     lease_until = NULL WHERE payout_id = $4 AND lease_owner = $5 AND state = 'pending'",
                )
                .bind(waiting_for)
                .bind(detail)
                .bind(retry_at)
                .bind(payout)
                .bind(worker)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        })
    }

    /// What a run's pending payouts wait for, by kind of wait.
    pub async fn run_waiting(&self, run_id: i64) -> Result<Vec<Waiting>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT waiting_for, COUNT(*) AS payouts, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS amount_minor, \
                 MIN(next_at) AS next_at, MAX(waiting_detail) AS detail FROM transfers \
                 WHERE run_id = $1 AND state = 'pending' AND waiting_for IS NOT NULL GROUP BY waiting_for ORDER BY waiting_for",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await
        })
    }

    /// How many invoices of the weeks `from` to `to` ended uncollectible for want of a card.
    pub async fn no_payment_method_count(&self, from: &str, to: &str) -> Result<i64, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM charges c JOIN runs r ON r.id = c.run_id \
                 WHERE r.week >= $1 AND r.week <= $2 AND c.reason = $3",
            )
            .bind(from)
            .bind(to)
            .bind(NO_PAYMENT_METHOD)
            .fetch_one(pool)
            .await
        })
    }

    /// The state of a run's payout, if the run has it.
    pub async fn payout_state(&self, run_id: i64, payout_id: i64) -> Result<Option<String>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_scalar("SELECT state FROM transfers WHERE run_id = $1 AND payout_id = $2")
                .bind(run_id)
                .bind(payout_id)
                .fetch_optional(pool)
                .await
        })
    }

    /// The failed payouts of a run (the first 100, by payout), each with its last attempt's detail.
    pub async fn failed_payouts(&self, run_id: i64) -> Result<Vec<FailedPayout>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT t.payout_id, t.driver_id, t.amount_minor, t.attempts, \
                 (SELECT a.detail FROM transfer_attempts a WHERE a.payout_id = t.payout_id ORDER BY a.attempt DESC LIMIT 1) AS detail \
                 FROM transfers t WHERE t.run_id = $1 AND t.state = 'failed' ORDER BY t.payout_id LIMIT 100",
            )
            .bind(run_id)
            .fetch_all(pool)
            .await
        })
    }

    /// Puts a failed payout of `run_id` back to be paid now, with an audit entry `payout.retry`
    /// by `actor`, in one transaction. False (nothing changed) when the payout is not failed (a
    /// second click, another member first) or the provider already made its transfer. The next
    /// attempt is a new one with its own key, written before the call, as every attempt.
    pub async fn retry_payout(
        &self,
        run_id: i64,
        payout_id: i64,
        actor: &super::audit::Actor,
    ) -> Result<bool, sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(super::begin_writing(self)).await?;
            let retried = sqlx::query(
                "UPDATE transfers SET state = 'pending', next_at = $1, waiting_for = NULL, waiting_detail = NULL, \
                 lease_owner = NULL, lease_until = NULL WHERE payout_id = $2 AND run_id = $3 AND state = 'failed' \
                 AND NOT EXISTS (SELECT 1 FROM transfer_attempts a WHERE a.payout_id = transfers.payout_id \
                 AND a.outcome IN ('succeeded', 'started', 'unknown'))",
            )
            .bind(at)
            .bind(payout_id)
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if retried {
                let mut entry = super::audit::NewAuditEntry::new(actor, "payout.retry", "payout", payout_id);
                entry.before = Some(serde_json::json!({ "state": "failed" }));
                entry.after = Some(serde_json::json!({ "state": "pending", "run_id": run_id }));
                tx.audit(&entry).await?;
            }
            tx.commit().await?;
            Ok(retried)
        })
    }

    /// Grants up to `want` provider calls from the account's limit of `per_second`, shared by
    /// every process: the second is cut in twenty slots of 50 ms, each granting at most its
    /// share, so that no one-second window holds more than the limit and one slot's share.
    /// Returns the slot granted in (the calls must start within it) and how many were granted,
    /// or `None` when the current slot has nothing left: ask in the next.
    pub async fn take_provider_calls(
        &self,
        per_second: u32,
        want: u32,
    ) -> Result<Option<(i64, u32)>, sqlx::Error> {
        let share = slot_share(per_second);
        let want = want.clamp(1, share);
        let slot = Utc::now().timestamp_millis() / SLOT_MS;
        if slot % 200 == 0 {
            // Every ten seconds: slots older than a minute go.
            with_pool!(self, pool => {
                sqlx::query("DELETE FROM provider_rate WHERE slot < $1").bind(slot - 1200).execute(pool).await.map(|_| ())?
            });
        }
        // One statement: the SET expressions read the row as it was, so `last_grant` is what
        // this statement granted; a full slot is left alone and returns nothing.
        let granted: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO provider_rate (slot, used, last_grant) VALUES ($1, $2, $2) ON CONFLICT (slot) DO UPDATE \
                 SET last_grant = CASE WHEN provider_rate.used + $2 <= $3 THEN $2 ELSE $3 - provider_rate.used END, \
                 used = CASE WHEN provider_rate.used + $2 <= $3 THEN provider_rate.used + $2 ELSE $3 END \
                 WHERE provider_rate.used < $3 RETURNING last_grant",
            )
            .bind(slot)
            .bind(i64::from(want))
            .bind(i64::from(share))
            .fetch_optional(pool)
            .await?
        });
        Ok(granted.filter(|g| *g > 0).map(|g| (slot, g as u32)))
    }
}

/// The length of a slot of the shared provider limit, in milliseconds.
pub const SLOT_MS: i64 = 50;

/// The calls one slot may grant for a limit of `per_second` (at least one).
pub fn slot_share(per_second: u32) -> u32 {
    per_second.div_ceil((1000 / SLOT_MS) as u32).max(1)
}

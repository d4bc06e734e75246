//! Reconciliation's storage: the ledger's side of a week (every charge, refund and transfer the
//! ledger records, with the provider id and the amount the ledger booked, and the disputes with
//! their postings), the reconciliations kept, and the stray charges with their repair refunds.

use chrono::{DateTime, Utc};

use super::audit::NewAuditEntry;
use super::writes::Writes;
use super::{begin_writing, for_update, now, Db};
use crate::billing::ledger::Transaction;
use crate::with_pool;

/// One movement as the ledger has it: provider id, invoice or payout, user, attempt key, amount
/// the ledger booked (`None` when the attempt succeeded but no ledger transaction exists).
pub type LedgerItem = (String, Option<i64>, Option<String>, Option<String>, Option<i64>);

/// A stored reconciliation.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ReconciliationRow {
    pub id: i64,
    pub week: String,
    pub ran_at: DateTime<Utc>,
    pub ran_by: String,
    pub matched: i64,
    pub unmatched: i64,
    pub items: String,
    pub acknowledged_by: Option<String>,
}

/// A stray charge as stored, with its repair refund's state.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StrayRow {
    pub payment_intent: String,
    pub charge_id: String,
    pub invoice_id: Option<i64>,
    pub user_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub refund_id: Option<i64>,
    pub refund_state: Option<String>,
    pub repaired_by: Option<String>,
    /// Its invoice has an attempt whose outcome is not known yet (started or unknown): repair
    /// waits for it, since that attempt may be the charge the ledger will explain.
    pub undecided: bool,
}

/// A dispute of a week as the product has it: its `disputes` row (none for a withdrawal in the
/// ledger that no recorded dispute explains) and what the ledger posted for it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerDispute {
    /// The provider's dispute id (`dp_…`), the reference of its ledger transactions.
    pub provider_id: String,
    pub invoice_id: Option<i64>,
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub amount_minor: Option<i64>,
    /// What its withdrawal posted to `disputes`, once the provider took the money.
    pub withdrawn_minor: Option<i64>,
    /// What its withdrawal posted to `dispute_fees`.
    pub fee_minor: Option<i64>,
    /// `dispute.won` or `dispute.lost`, once the ledger has the issuer's decision.
    pub decided: Option<String>,
}

/// A stray charge under its lock: invoice, user, amount, currency, repair refund.
type StrayLock = (Option<i64>, Option<String>, i64, String, Option<i64>);

/// A stray charge found by a reconciliation.
#[derive(Clone, Debug)]
pub struct NewStray {
    pub payment_intent: String,
    pub charge_id: String,
    pub invoice_id: Option<i64>,
    pub user_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
}

impl Db {
    /// The week's successful charges as the ledger has them (and the stray charges recorded by
    /// repairs), keyed by payment intent.
    pub async fn ledger_charges(&self, week: &str, each: impl FnMut(LedgerItem)) -> Result<(), sqlx::Error> {
        self.ledger_items(
                "SELECT a.provider_id, i.id, i.user_id, a.idempotency_key, p.amount_minor FROM invoices i \
                 JOIN charge_attempts a ON a.invoice_id = i.id AND a.outcome = 'succeeded' \
                 LEFT JOIN ledger_transactions t ON t.kind = 'charge' AND t.reference = 'invoice-' || CAST(i.id AS TEXT) \
                 LEFT JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'provider_clearing' \
                 WHERE i.week = $1 AND a.provider_id IS NOT NULL \
                 UNION ALL \
                 SELECT s.payment_intent, s.invoice_id, s.user_id, NULL, p.amount_minor FROM stray_charges s \
                 JOIN ledger_transactions t ON t.kind = 'stray_charge' AND t.reference = s.payment_intent \
                 JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'provider_clearing' \
                 WHERE s.week = $1",
            week,
            each,
        )
        .await
    }

    /// The week's refunds the ledger records as made, keyed by the provider's refund id.
    pub async fn ledger_refunds(&self, week: &str, each: impl FnMut(LedgerItem)) -> Result<(), sqlx::Error> {
        self.ledger_items(
                "SELECT r.provider_id, r.invoice_id, r.user_id, r.idempotency_key, -p.amount_minor FROM refunds r \
                 JOIN invoices i ON i.id = r.invoice_id \
                 LEFT JOIN ledger_transactions t ON t.kind = 'refund' AND t.reference = 'refund-' || CAST(r.id AS TEXT) \
                 LEFT JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'provider_clearing' \
                 WHERE i.week = $1 AND r.state = 'succeeded' AND r.provider_id IS NOT NULL",
            week,
            each,
        )
        .await
    }

    /// The week's transfers the ledger records, keyed by the provider's transfer id.
    pub async fn ledger_transfers(
        &self,
        week: &str,
        each: impl FnMut(LedgerItem),
    ) -> Result<(), sqlx::Error> {
        self.ledger_items(
                "SELECT a.provider_id, pa.id, pa.driver_id, a.idempotency_key, -p.amount_minor FROM payouts pa \
                 JOIN transfer_attempts a ON a.payout_id = pa.id AND a.outcome = 'succeeded' \
                 LEFT JOIN ledger_transactions t ON t.kind = 'transfer' AND t.reference = 'payout-' || CAST(pa.id AS TEXT) \
                 LEFT JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'provider_clearing' \
                 WHERE pa.week = $1 AND a.provider_id IS NOT NULL",
            week,
            each,
        )
        .await
    }

    /// The week's disputes as the product recorded them, with their ledger postings, and the
    /// ledger's dispute withdrawals of the week that no recorded dispute explains; by provider id.
    pub async fn ledger_disputes(&self, week: &str) -> Result<Vec<LedgerDispute>, sqlx::Error> {
        let posted = |account: &str| {
            format!(
                "(SELECT CAST(SUM(p.amount_minor) AS BIGINT) FROM ledger_transactions t \
                 JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = '{account}' \
                 WHERE t.kind = 'dispute.withdrawal' AND t.reference = d.provider_id)"
            )
        };
        let query = format!(
            "SELECT d.provider_id, d.invoice_id, d.user_id, d.status, d.amount_minor, {} AS withdrawn_minor, \
             {} AS fee_minor, (SELECT MIN(t.kind) FROM ledger_transactions t WHERE t.reference = d.provider_id \
             AND t.kind IN ('dispute.won', 'dispute.lost')) AS decided FROM disputes d WHERE d.week = $1 \
             UNION ALL \
             SELECT t.reference, NULL, NULL, NULL, NULL, p.amount_minor, NULL, NULL FROM ledger_transactions t \
             JOIN ledger_postings p ON p.transaction_id = t.id AND p.account = 'disputes' \
             WHERE t.kind = 'dispute.withdrawal' AND t.week = $1 \
             AND NOT EXISTS (SELECT 1 FROM disputes d WHERE d.provider_id = t.reference) \
             ORDER BY 1",
            posted("disputes"),
            posted("dispute_fees")
        );
        with_pool!(self, pool => sqlx::query_as(&query).bind(week).fetch_all(pool).await)
    }

    /// The invoice and passenger the product charged with payment intent `payment_intent`.
    pub async fn invoice_of_payment(
        &self,
        payment_intent: &str,
    ) -> Result<Option<(i64, String)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.id, i.user_id FROM charge_attempts a JOIN invoices i ON i.id = a.invoice_id \
                 WHERE a.provider_id = $1 ORDER BY a.invoice_id LIMIT 1",
            )
            .bind(payment_intent)
            .fetch_optional(pool)
            .await
        })
    }

    /// Each row of `sql` (a query of ledger items with the week as `$1`), as it is read.
    async fn ledger_items(
        &self,
        sql: &str,
        week: &str,
        mut each: impl FnMut(LedgerItem),
    ) -> Result<(), sqlx::Error> {
        use futures::TryStreamExt;
        with_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, LedgerItem>(sql).bind(week).fetch(pool);
            while let Some(item) = rows.try_next().await? {
                each(item);
            }
        });
        Ok(())
    }

    /// When every `every`-th attempt of the week's charges, and of its payouts, started (seconds
    /// since 1970, in order): where reconciliation cuts the provider's lists into slices of
    /// about `every` objects, listed side by side.
    pub async fn attempt_marks(&self, week: &str, every: i64) -> Result<(Vec<i64>, Vec<i64>), sqlx::Error> {
        let charges = "charge_attempts a JOIN invoices i ON i.id = a.invoice_id WHERE i.week = $1";
        let transfers = "transfer_attempts a JOIN payouts p ON p.id = a.payout_id WHERE p.week = $1";
        Ok((self.marks(charges, week, every).await?, self.marks(transfers, week, every).await?))
    }

    /// Every `every`-th `a.started_at` of `attempts` (a FROM clause), in seconds since 1970.
    async fn marks(&self, attempts: &str, week: &str, every: i64) -> Result<Vec<i64>, sqlx::Error> {
        let query = format!(
            "SELECT started_at FROM (SELECT a.started_at, ROW_NUMBER() OVER (ORDER BY a.started_at) AS n \
             FROM {attempts}) marks WHERE (n - 1) % $2 = 0 ORDER BY started_at"
        );
        let marks: Vec<(DateTime<Utc>,)> = with_pool!(self, pool => {
            sqlx::query_as(&query).bind(week).bind(every).fetch_all(pool).await
        })?;
        Ok(marks.into_iter().map(|(at,)| at.timestamp()).collect())
    }

    /// Stores a reconciliation and the stray charges it found (each payment intent once).
    pub async fn save_reconciliation(
        &self,
        week: &str,
        ran_by: &str,
        matched: i64,
        unmatched: i64,
        items: &serde_json::Value,
        stray: &[NewStray],
    ) -> Result<i64, sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO reconciliations (week, ran_at, ran_by, matched, unmatched, items) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(week)
            .bind(at)
            .bind(ran_by)
            .bind(matched)
            .bind(unmatched)
            .bind(items.to_string())
            .fetch_one(&mut *tx)
            .await?;
            for s in stray {
                sqlx::query(
                    "INSERT INTO stray_charges (payment_intent, charge_id, week, invoice_id, user_id, amount_minor, currency, found_in, found_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (payment_intent) DO NOTHING",
                )
                .bind(&s.payment_intent)
                .bind(&s.charge_id)
                .bind(week)
                .bind(s.invoice_id)
                .bind(&s.user_id)
                .bind(s.amount_minor)
                .bind(&s.currency)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            if unmatched > 0 {
                let alert = super::alerts::NewAlert {
                    kind: app::model::alerts::AlertKind::Reconciliation,
                    group_key: format!("reconciliation:{week}"),
                    run_id: None,
                    week: Some(week.to_owned()),
                    title: format!("Reconciliation of {week}: {unmatched} item(s) do not match the ledger"),
                    detail: format!("{matched} matched, {unmatched} not matched (reconciled by {ran_by})"),
                    link: Some(format!("/reconcile?week={week}")),
                };
                tx.raise_alert(&alert).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    /// The latest reconciliation of a week.
    pub async fn latest_reconciliation(&self, week: &str) -> Result<Option<ReconciliationRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, week, ran_at, ran_by, matched, unmatched, items, acknowledged_by FROM reconciliations \
                 WHERE week = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(week)
            .fetch_optional(pool)
            .await
        })
    }

    /// The latest reconciliation of each week, when it found mismatches nobody acknowledged.
    pub async fn open_mismatches(&self) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT r.id, r.week, r.unmatched FROM reconciliations r WHERE r.unmatched > 0 AND r.acknowledged_by IS NULL \
                 AND r.id = (SELECT MAX(l.id) FROM reconciliations l WHERE l.week = r.week) ORDER BY r.week",
            )
            .fetch_all(pool)
            .await
        })
    }

    /// Acknowledges a reconciliation's mismatches (they stay on its page), with an audit entry.
    pub async fn acknowledge_reconciliation(
        &self,
        id: i64,
        by: &str,
        audit: &NewAuditEntry,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let done = sqlx::query(
                "UPDATE reconciliations SET acknowledged_by = $2, acknowledged_at = $3 WHERE id = $1 AND acknowledged_by IS NULL",
            )
            .bind(id)
            .bind(by)
            .bind(now())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.audit(audit).await?;
            tx.commit().await?;
            Ok(done == 1)
        })
    }

    /// The week's stray charges, with their repair refunds' states.
    pub async fn stray_charges(&self, week: &str) -> Result<Vec<StrayRow>, sqlx::Error> {
        with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT s.payment_intent, s.charge_id, s.invoice_id, s.user_id, s.amount_minor, s.currency, s.refund_id, \
                 r.state AS refund_state, s.repaired_by, EXISTS (SELECT 1 FROM charge_attempts a WHERE a.invoice_id = s.invoice_id \
                 AND a.outcome IN ('started', 'unknown')) AS undecided FROM stray_charges s LEFT JOIN refunds r ON r.id = s.refund_id \
                 WHERE s.week = $1 ORDER BY s.found_at, s.payment_intent",
            )
            .bind(week)
            .fetch_all(pool)
            .await
        })
    }

    /// Repairs one stray charge, once: records it in the ledger (the provider holds money no
    /// invoice explains) and writes its repair refund (pending; the caller sends it), in one
    /// transaction with the audit entry. Returns the refund id, or `None` when the charge was
    /// repaired before or cannot be (no invoice to file it under, or an attempt of its invoice
    /// still waiting for its outcome).
    pub async fn repair_stray(
        &self,
        payment_intent: &str,
        by: &str,
        by_id: Option<i64>,
        ledger: &Transaction,
        audit: &NewAuditEntry,
    ) -> Result<Option<i64>, sqlx::Error> {
        let at = now();
        with_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_writing(self)).await?;
            let lock = format!(
                "SELECT invoice_id, user_id, amount_minor, currency, refund_id FROM stray_charges WHERE payment_intent = $1{}",
                for_update(self)
            );
            let stray: Option<StrayLock> =
                sqlx::query_as(&lock).bind(payment_intent).fetch_optional(&mut *tx).await?;
            let Some((Some(invoice_id), user_id, amount, currency, None)) = stray else {
                tx.rollback().await?;
                return Ok(None);
            };
            // Never while an attempt of the invoice has no known outcome: it may be the charge
            // the ledger is about to explain, and refunding it would leave the invoice unpaid.
            let undecided: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM charge_attempts WHERE invoice_id = $1 AND outcome IN ('started', 'unknown'))",
            )
            .bind(invoice_id)
            .fetch_one(&mut *tx)
            .await?;
            if undecided {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.ledger_once(ledger, at).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO refunds (request_id, idempotency_key, invoice_id, user_id, amount_minor, currency, reason, note, \
                 state, requested_by, requested_by_id, requested_at, decided_by, decided_at, next_at, updated_at, kind, payment_intent) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'duplicate', $7, 'pending', $8, $9, $10, $8, $10, $11, $10, 'repair', $12) RETURNING id",
            )
            .bind(format!("repair-{payment_intent}"))
            .bind(format!("refund:repair:{payment_intent}"))
            .bind(invoice_id)
            .bind(user_id.unwrap_or_default())
            .bind(amount)
            .bind(&currency)
            .bind(format!("reconciliation repair of {payment_intent}, a charge the ledger does not explain"))
            .bind(by)
            .bind(by_id)
            .bind(at)
            .bind(at + chrono::Duration::seconds(30))
            .bind(payment_intent)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("UPDATE stray_charges SET refund_id = $2, repaired_by = $3, repaired_at = $4 WHERE payment_intent = $1")
                .bind(payment_intent)
                .bind(id)
                .bind(by)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.audit(audit).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }
}

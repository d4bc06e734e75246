//! A payout that failed for a reason other than funds (a closed account, a refused destination)
//! is tried again when finance says so: audited, and by the same exactly-once rules as every
//! attempt (a new attempt with its own key, written before the call; the database refuses a
//! second success).

use crate::error::Error;

use crate::db::audit::Actor;
use crate::db::Db;

/// Puts failed payout `payout_id` of run `run_id` back to be paid. 404 when the run has no
/// such payout; 409 when it is not failed (paid, pending, waiting, or retried by someone else
/// first). The run's workers (or `billing serve`, for a completed run) pay it within seconds.
pub async fn retry(db: &Db, actor: &Actor, run_id: i64, payout_id: i64) -> Result<(), Error> {
    let internal = |e: sqlx::Error| crate::error::Error::internal("retrying a payout", e);
    if db.retry_payout(run_id, payout_id, actor).await.map_err(internal)? {
        return Ok(());
    }
    match db.payout_state(run_id, payout_id).await.map_err(internal)? {
        None => Err(Error::NotFound(format!("payout {payout_id} of run {run_id}"))),
        Some(state) => Err(Error::conflict(
            "payout_id",
            format!("payout {payout_id} is {state}, not failed: there is nothing to retry"),
        )),
    }
}

/// What the provider reports of payout `payout_id` (a transfer event): a transfer `transfer_id`
/// of `amount` minor units was made. Recorded as the payout's success, with its ledger
/// transaction, when the payout's attempt is still waiting for an answer and the amount is the
/// payout's; otherwise nothing changes (another amount is left to the run's guards). Says what
/// it did.
pub async fn provider_reports(
    db: &Db,
    payout_id: i64,
    transfer_id: &str,
    amount: Option<i64>,
) -> Result<&'static str, Error> {
    use app::model::money::{BillingCurrency, Money};
    let internal = |e: sqlx::Error| Error::internal("recording what the provider reports of a payout", e);
    let Some((driver, week, expected, currency, key)) =
        db.payout_awaiting_answer(payout_id).await.map_err(internal)?
    else {
        return Ok("no change");
    };
    if amount != Some(expected) {
        tracing::error!(
            payout_id,
            transfer_id,
            "a transfer event for another amount than the payout's; left to the run's guards"
        );
        return Ok("amount differs");
    }
    let currency =
        BillingCurrency::from_code(&currency).map_err(|e| Error::internal("reading a payout", e))?;
    let ledger = super::transfer_ledger(payout_id, &driver, Money::from_minor(expected, currency), &week)
        .map_err(|e| Error::internal("booking a payout", e))?;
    let recorded = db
        .record_success(crate::db::runs::Work::Transfer, payout_id, &key, transfer_id, Some(&ledger))
        .await
        .map_err(internal)?;
    Ok(if recorded { "transfer made" } else { "no change" })
}

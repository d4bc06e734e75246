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

//! What finance does with a charge or payout held for a person (its attempt is past the
//! key-reuse window and the provider could not be asked what it made): look it up again, or
//! mark it as not made at the provider, which a second member confirms.

use crate::error::Error;

use crate::db::audit::Actor;
use crate::db::held::MarkStep;
use crate::db::runs::Work;
use crate::db::Db;

/// The work of a held item's kind, as the run page and the API name it.
fn work_of(kind: &str) -> Result<Work, Error> {
    match kind {
        "charge" => Ok(Work::Charge),
        "payout" => Ok(Work::Transfer),
        other => Err(Error::invalid("kind", format!("must be charge or payout, not {other:?}"))),
    }
}

fn internal(e: sqlx::Error) -> Error {
    crate::error::Error::internal("settling a held item", e)
}

/// Puts held `kind` `id` of run `run_id` back to be looked up again at once (audited). 404
/// when nothing of that id is held in the run. A paused or stopped run looks it up once resumed.
pub async fn look_again(db: &Db, actor: &Actor, run_id: i64, kind: &str, id: i64) -> Result<(), Error> {
    let work = work_of(kind)?;
    if db.look_again(work, run_id, id, actor).await.map_err(internal)? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("{kind} {id} held in run {run_id}")))
    }
}

/// Asks, or confirms as a second member, that held `kind` `id` of run `run_id` was not made at
/// the provider (audited each step). The answer says which step this was; 404 when nothing of
/// that id is held; 409 when the member who asked tries to confirm too.
pub async fn mark_not_made(
    db: &Db,
    actor: &Actor,
    run_id: i64,
    kind: &str,
    id: i64,
) -> Result<MarkStep, Error> {
    let work = work_of(kind)?;
    match db.mark_not_made(work, run_id, id, actor).await.map_err(internal)? {
        MarkStep::NotHeld => Err(Error::NotFound(format!("{kind} {id} held in run {run_id}"))),
        MarkStep::SamePerson => Err(Error::conflict(
            "id",
            format!("you asked to mark {kind} {id} as not made: another finance member must confirm it"),
        )),
        step => Ok(step),
    }
}

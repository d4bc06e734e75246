//! The run settings as staff change them: one path for the JSON API and the dashboard, each
//! field checked and named on refusal, every change audited with the settings before and after.

use crate::error::Error;

use super::RunSettings;
use crate::db::audit::Actor;
use crate::db::Db;

/// Stores `settings` (every field, each within its range) on behalf of `actor`; a refused value
/// changes nothing. Processes pick the new values up at the next run they work.
pub async fn save(db: &Db, actor: &Actor, settings: RunSettings) -> Result<RunSettings, Error> {
    settings.validate().map_err(|(field, message)| Error::invalid(field, message))?;
    let value = serde_json::to_value(&settings).expect("run settings serialise");
    db.change_setting(actor, RunSettings::KEY, &value)
        .await
        .map_err(|e| crate::error::Error::internal("changing the run settings", e))?;
    Ok(settings)
}

/// The stored run settings, or the defaults.
pub async fn get(db: &Db) -> Result<RunSettings, Error> {
    super::load_settings(db).await.map_err(|e| crate::error::Error::internal("reading the run settings", e))
}

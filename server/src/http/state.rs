//! What every request handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use chrono::{SecondsFormat, Utc};
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::db::Db;
use app::api::{AppError, Backend};
use app::model::system::Overview;

/// Shared by every handler, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub leptos: LeptosOptions,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

/// Logs `error` under a fresh reference and returns an error that shows only the reference, so
/// a person can quote it and nothing internal (SQL, paths) reaches the browser.
pub fn internal_error(context: &str, error: impl std::fmt::Display) -> AppError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(%reference, %error, "{context} failed");
    AppError::Internal(format!("{context} failed (reference {reference})"))
}

#[async_trait::async_trait]
impl Backend for AppState {
    async fn overview(&self) -> Result<Overview, AppError> {
        let migrations =
            self.db.migration_state().await.map_err(|e| internal_error("reading the migration state", e))?;
        let now = Utc::now().with_timezone(&self.config.time_zone);
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION").to_string(),
            backend: self.db.backend(),
            migrations,
            time_zone: self.config.time_zone.name().to_string(),
            local_time: now.to_rfc3339_opts(SecondsFormat::Millis, false),
            currency: self.config.currency.code().to_string(),
        })
    }
}

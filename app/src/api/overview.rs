//! The overview page's data.

use leptos::prelude::*;

use super::AppError;
use crate::model::system::Overview;

/// Facts about the running server: version, database and migration state, business clock.
#[server(prefix = "/api/fn", endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, AppError> {
    super::backend()?.overview().await
}

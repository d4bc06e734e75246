//! The seam between the dashboard's server functions and the server's services.

use std::sync::Arc;

use leptos::prelude::use_context;

use super::AppError;
use crate::model::system::Overview;

/// What the server offers the dashboard. The `server` crate implements it and provides an
/// `Arc<dyn Backend>` as Leptos context for every request.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Facts about the running server for the overview page.
    async fn overview(&self) -> Result<Overview, AppError>;
}

/// The backend of the current request.
pub fn backend() -> Result<Arc<dyn Backend>, AppError> {
    use_context::<Arc<dyn Backend>>()
        .ok_or_else(|| AppError::Internal("the server provided no backend".into()))
}

//! The audit log page's data.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::audit::{AuditPage, AuditQuery};

/// A page of the audit log matching `query`, newest first.
#[server(prefix = "/api/fn", endpoint = "audit", input = server_fn::codec::Json)]
pub async fn list_audit(query: AuditQuery) -> Result<AuditPage, AppError> {
    super::respond(
        async { super::backend()?.audit(&super::staff_caller(<ListAudit as ServerFn>::PATH)?, query).await }
            .await,
    )
}

//! Disputes (finance, admin): the queue, and a dispute's evidence sent to the provider.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::dispute::{DisputeView, DisputesPage};

/// The queue by due date, filtered to `status` when it is not empty, with the counts by status.
#[server(prefix = "/api/fn", endpoint = "disputes/list")]
pub async fn list_disputes(status: String) -> Result<DisputesPage, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<ListDisputes as ServerFn>::PATH)?;
            super::backend()?.disputes(&caller, status).await
        }
        .await,
    )
}

/// Sends dispute `dispute_id`'s evidence (gathered on the server, with `note`) and submits it.
#[server(prefix = "/api/fn", endpoint = "disputes/evidence")]
pub async fn send_evidence(dispute_id: i64, note: String) -> Result<DisputeView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SendEvidence as ServerFn>::PATH)?;
            super::backend()?
                .send_dispute_evidence(&caller, dispute_id, crate::model::dispute::EvidenceRequest { note })
                .await
        }
        .await,
    )
}

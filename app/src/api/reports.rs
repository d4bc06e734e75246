//! Finance's reports from the dashboard.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::report::Report;

/// The report of weeks `from` to `to` (empty `to`: just `from`; empty `from`: the last complete
/// week), from the ledger.
#[server(prefix = "/api/fn", endpoint = "reports/get")]
pub async fn get_report(from: String, to: String) -> Result<Report, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<GetReport as ServerFn>::PATH)?;
            super::backend()?.report(&caller, from, to).await
        }
        .await,
    )
}

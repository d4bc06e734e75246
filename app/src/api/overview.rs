//! The overview page's data, and who is signed in.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::staff::Principal;
use crate::model::system::Overview;

/// Facts about the running server: version, database and migration state, business clock.
#[server(prefix = "/api/fn", endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, AppError> {
    super::respond(
        async {
            super::staff_caller(<GetOverview as ServerFn>::PATH)?;
            super::backend()?.overview().await
        }
        .await,
    )
}

/// The signed-in staff member, or `None`. Public: it says nothing to someone not signed in.
#[server(prefix = "/api/fn", endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Principal>, AppError> {
    super::respond(super::caller(<Whoami as ServerFn>::PATH))
}

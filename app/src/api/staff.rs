//! Staff management (admin).

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
#[cfg(feature = "ssr")]
use crate::model::staff::Role;
use crate::model::staff::Staff;

/// Every staff account, active ones first.
#[server(prefix = "/api/fn", endpoint = "staff/list")]
pub async fn list_staff() -> Result<Vec<Staff>, AppError> {
    super::respond(
        async { super::backend()?.list_staff(&super::staff_caller(<ListStaff as ServerFn>::PATH)?).await }
            .await,
    )
}

/// Adds a staff account with an initial password.
#[server(prefix = "/api/fn", endpoint = "staff/add")]
pub async fn add_staff(email: String, role: String, password: String) -> Result<Staff, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<AddStaff as ServerFn>::PATH)?;
            let role = Role::parse(&role).map_err(|m| AppError::invalid("role", m))?;
            super::backend()?.add_staff(&caller, email, role, password).await
        }
        .await,
    )
}

/// Disables a staff account.
#[server(prefix = "/api/fn", endpoint = "staff/disable")]
pub async fn disable_staff(staff_id: i64) -> Result<Staff, AppError> {
    super::respond(
        async {
            super::backend()?
                .disable_staff(&super::staff_caller(<DisableStaff as ServerFn>::PATH)?, staff_id)
                .await
        }
        .await,
    )
}

//! Staff management (admin).

use leptos::prelude::*;

use super::AppError;
#[cfg(feature = "ssr")]
use crate::model::staff::Role;
use crate::model::staff::Staff;

/// Every staff account, active ones first.
#[server(prefix = "/api/fn", endpoint = "staff/list")]
pub async fn list_staff() -> Result<Vec<Staff>, AppError> {
    super::respond(async { super::backend()?.list_staff(&super::caller()?).await }.await)
}

/// Adds a staff account with an initial password.
#[server(prefix = "/api/fn", endpoint = "staff/add")]
pub async fn add_staff(email: String, role: String, password: String) -> Result<Staff, AppError> {
    super::respond(
        async {
            let role = Role::parse(&role).map_err(|m| AppError::invalid("role", m))?;
            super::backend()?.add_staff(&super::caller()?, email, role, password).await
        }
        .await,
    )
}

/// Disables a staff account.
#[server(prefix = "/api/fn", endpoint = "staff/disable")]
pub async fn disable_staff(staff_id: i64) -> Result<Staff, AppError> {
    super::respond(async { super::backend()?.disable_staff(&super::caller()?, staff_id).await }.await)
}

//! Alerts from the dashboard.

use leptos::prelude::*;
#[cfg(feature = "ssr")]
use leptos::server_fn::ServerFn;

use super::AppError;
use crate::model::alerts::{AlertSettings, AlertView, AlertsPage};

/// Open and past alerts, the latest messages (in state `messages`; empty: all) and their
/// delivery, and (for admins) the channels.
#[server(prefix = "/api/fn", endpoint = "alerts/page")]
pub async fn load_alerts(messages: String) -> Result<AlertsPage, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<LoadAlerts as ServerFn>::PATH)?;
            super::backend()?.alerts_page(&caller, messages).await
        }
        .await,
    )
}

/// The alerts not resolved yet, newest first (at most five), for the banner on every page: whom
/// each waits for, or who acknowledged it; none for anonymous callers.
#[server(prefix = "/api/fn", endpoint = "alerts/open")]
pub async fn open_alerts() -> Result<Vec<AlertView>, AppError> {
    super::respond(
        async {
            match super::caller(<OpenAlerts as ServerFn>::PATH)? {
                Some(caller) => super::backend()?.unresolved_alerts(&caller).await,
                None => Ok(Vec::new()),
            }
        }
        .await,
    )
}

/// Acknowledges (`action` = `acknowledge`) or resolves (`resolve`) alert `id`.
#[server(prefix = "/api/fn", endpoint = "alerts/settle")]
pub async fn settle_alert(id: i64, action: String) -> Result<AlertView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SettleAlert as ServerFn>::PATH)?;
            let resolve = match action.as_str() {
                "acknowledge" => false,
                "resolve" => true,
                other => {
                    return Err(AppError::invalid(
                        "action",
                        format!("{other:?} is not acknowledge or resolve"),
                    ))
                }
            };
            super::backend()?.settle_alert(&caller, id, resolve).await
        }
        .await,
    )
}

/// Stores the channels.
#[server(prefix = "/api/fn", endpoint = "alerts/settings")]
pub async fn save_alert_settings(settings: AlertSettings) -> Result<AlertSettings, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SaveAlertSettings as ServerFn>::PATH)?;
            super::backend()?.save_alert_settings(&caller, settings).await
        }
        .await,
    )
}

/// Sends a test alert to the first contact.
#[server(prefix = "/api/fn", endpoint = "alerts/test")]
pub async fn send_test_alert() -> Result<AlertView, AppError> {
    super::respond(
        async {
            let caller = super::staff_caller(<SendTestAlert as ServerFn>::PATH)?;
            super::backend()?.send_test_alert(&caller).await
        }
        .await,
    )
}

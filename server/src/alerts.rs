//! The alerts page and API: open and past alerts, acknowledge and resolve, the delivery state
//! of every message, the channels, and a test alert.

use crate::error::Error;
use app::model::alerts::{AlertKind, AlertSettings, AlertView, AlertsPage, MessageView, MESSAGE_STATES};
use app::model::staff::Principal;

use crate::config::Config;
use crate::customers::zoned;
use crate::db::alerts::NewAlert;
use crate::db::audit::Actor;
use crate::db::Db;

/// Alerts and messages listed on the page.
const PAGE_ALERTS: i64 = 100;
const PAGE_MESSAGES: i64 = 200;

/// The page for `caller`, its messages in `messages` state (empty: all), every moment in the
/// business time zone; the channels only for those who may change them.
pub async fn page(db: &Db, config: &Config, caller: &Principal, messages: &str) -> Result<AlertsPage, Error> {
    let failed = |e: sqlx::Error| Error::internal("reading alerts", e);
    let state = match messages.trim() {
        "" => None,
        state if MESSAGE_STATES.contains(&state) => Some(state),
        other => {
            let known = MESSAGE_STATES.join(", ");
            return Err(Error::invalid("messages", format!("{other:?} is not one of {known}")));
        }
    };
    let may_configure = caller.staff.role.can(app::auth::Action::ManageSettings);
    let settings = if may_configure { Some(settings(db).await?) } else { None };
    let tz = config.time_zone;
    let alerts = |rows: Vec<AlertView>| rows.into_iter().map(|a| alert_in_zone(a, tz)).collect();
    Ok(AlertsPage {
        open: alerts(db.alerts(true, PAGE_ALERTS).await.map_err(failed)?),
        past: alerts(db.alerts(false, PAGE_ALERTS).await.map_err(failed)?),
        messages: db
            .messages(state, PAGE_MESSAGES)
            .await
            .map_err(failed)?
            .into_iter()
            .map(|m| message_in_zone(m, tz))
            .collect(),
        messages_state: state.map(str::to_owned),
        counts: db.message_counts().await.map_err(failed)?,
        settings,
        smtp_configured: config.smtp.is_some(),
        time_zone: tz.name().to_owned(),
    })
}

/// The alert with its moments in the business time zone `tz` (the same instants).
fn alert_in_zone(a: AlertView, tz: chrono_tz::Tz) -> AlertView {
    AlertView {
        first_at: zoned(a.first_at, tz),
        last_at: zoned(a.last_at, tz),
        acknowledged_at: a.acknowledged_at.map(|at| zoned(at, tz)),
        resolved_at: a.resolved_at.map(|at| zoned(at, tz)),
        escalated_at: a.escalated_at.map(|at| zoned(at, tz)),
        ..a
    }
}

/// The message with its moments in the business time zone `tz`.
fn message_in_zone(m: MessageView, tz: chrono_tz::Tz) -> MessageView {
    MessageView {
        next_attempt_at: zoned(m.next_attempt_at, tz),
        created_at: zoned(m.created_at, tz),
        sent_at: m.sent_at.map(|at| zoned(at, tz)),
        ..m
    }
}

/// The stored channels, or the defaults.
pub async fn settings(db: &Db) -> Result<AlertSettings, Error> {
    db.setting_or_default(AlertSettings::KEY)
        .await
        .map_err(|e| Error::internal("reading the alert settings", e))
}

/// Acknowledges (someone is on it: no escalation) or resolves alert `id`.
pub async fn settle(db: &Db, actor: &Actor, id: i64, resolve: bool) -> Result<AlertView, Error> {
    let failed = |e: sqlx::Error| Error::internal("settling an alert", e);
    let alert = db.alert(id).await.map_err(failed)?.ok_or_else(|| Error::NotFound(format!("alert {id}")))?;
    if !db.settle_alert(id, actor, resolve).await.map_err(failed)? {
        let verb = if resolve { "resolved" } else { "acknowledged" };
        return Err(Error::conflict("alert", format!("alert {id} is {}; it cannot be {verb}", alert.state)));
    }
    db.alert(id).await.map_err(failed)?.ok_or_else(|| Error::NotFound(format!("alert {id}")))
}

/// Checks and stores the channels (with an audit entry).
pub async fn save_settings(db: &Db, actor: &Actor, settings: AlertSettings) -> Result<AlertSettings, Error> {
    let settings = AlertSettings {
        webhook_url: settings.webhook_url.trim().to_owned(),
        email: settings.email.trim().to_owned(),
        second_webhook_url: settings.second_webhook_url.trim().to_owned(),
        second_email: settings.second_email.trim().to_owned(),
        ..settings
    };
    settings.validate().map_err(|(field, message)| Error::invalid(field, message))?;
    let value = serde_json::to_value(&settings).expect("settings serialise");
    db.change_setting(actor, AlertSettings::KEY, &value)
        .await
        .map_err(|e| Error::internal("saving the alert settings", e))?;
    Ok(settings)
}

/// Raises a test alert to the first contact's channels (each a new alert).
pub async fn send_test(db: &Db, actor: &Actor) -> Result<AlertView, Error> {
    let failed = |e: sqlx::Error| Error::internal("sending a test alert", e);
    let alert = NewAlert {
        kind: AlertKind::Test,
        group_key: format!("test:{}", crate::db::alerts::delivery_id()),
        run_id: None,
        week: None,
        title: format!("Test alert from {}", actor.name),
        detail: "If you read this, alerts reach you. Resolve it on the alerts page.".into(),
        link: Some("/alerts".into()),
    };
    let id = db.raise_alert(&alert).await.map_err(failed)?;
    db.alert(id).await.map_err(failed)?.ok_or_else(|| Error::NotFound(format!("alert {id}")))
}

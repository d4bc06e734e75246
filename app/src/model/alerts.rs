//! Alerts to the people on call and the messages (alerts and customer notices) the outbox
//! delivers.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A guard halted a run (amount above the approved total, a passenger above the cap, …).
    RunHalted,
    /// The failure or unknown-outcome rate of a run went above its threshold (the run halted).
    FailureRate,
    /// A person paused a run.
    RunPaused,
    /// A person aborted a run.
    RunAborted,
    /// Reconciliation found items that do not match the ledger.
    Reconciliation,
    /// The week's scheduled run has not started on time.
    RunNotStarted,
    /// Sent from the alerts page to check the channels.
    Test,
    /// Card issuers opened as many disputes on one week's charges as the threshold.
    Disputes,
}

impl AlertKind {
    pub const ALL: [AlertKind; 8] = [
        AlertKind::RunHalted,
        AlertKind::FailureRate,
        AlertKind::RunPaused,
        AlertKind::RunAborted,
        AlertKind::Reconciliation,
        AlertKind::RunNotStarted,
        AlertKind::Test,
        AlertKind::Disputes,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RunHalted => "run_halted",
            AlertKind::FailureRate => "failure_rate",
            AlertKind::RunPaused => "run_paused",
            AlertKind::RunAborted => "run_aborted",
            AlertKind::Reconciliation => "reconciliation",
            AlertKind::RunNotStarted => "run_not_started",
            AlertKind::Test => "test",
            AlertKind::Disputes => "disputes",
        }
    }

    pub fn parse(name: &str) -> Option<AlertKind> {
        AlertKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            AlertKind::RunHalted => "run halted by a guard",
            AlertKind::FailureRate => "failure rate above threshold",
            AlertKind::RunPaused => "run paused",
            AlertKind::RunAborted => "run aborted",
            AlertKind::Reconciliation => "reconciliation mismatch",
            AlertKind::RunNotStarted => "run not started on time",
            AlertKind::Test => "test alert",
            AlertKind::Disputes => "disputes on a week's charges",
        }
    }
}

/// An alert as the dashboard shows it. Its moments are RFC 3339 instants; on the alerts page
/// they are in the business time zone the page names ([`AlertsPage::time_zone`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    pub kind: AlertKind,
    pub run_id: Option<i64>,
    pub week: Option<String>,
    pub title: String,
    pub detail: String,
    /// A path of the dashboard (`/runs/7`).
    pub link: Option<String>,
    /// How many times the alert was raised while open (repeats are grouped, not sent again).
    pub occurrences: i64,
    /// `open`, `acknowledged` or `resolved`.
    pub state: String,
    pub first_at: DateTime<FixedOffset>,
    pub last_at: DateTime<FixedOffset>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<FixedOffset>>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<FixedOffset>>,
    /// When it was sent to the second contact because nobody acknowledged it in time.
    pub escalated_at: Option<DateTime<FixedOffset>>,
}

/// Where a message's delivery stands, in the order the page counts them.
pub const MESSAGE_STATES: [&str; 4] = ["queued", "retrying", "sent", "failed"];

/// One message of the outbox and where its delivery stands (its moments as [`AlertView`]'s).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    pub id: i64,
    /// What the receiver dedupes on; every attempt of the message carries it.
    pub delivery_id: String,
    /// `alert`, `escalation`, `test`, `receipt`, `refund` or `declined`.
    pub kind: String,
    /// `webhook` or `email`.
    pub channel: String,
    pub recipient: String,
    pub alert_id: Option<i64>,
    pub user_id: Option<String>,
    /// `queued`, `retrying`, `sent` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<FixedOffset>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_at: DateTime<FixedOffset>,
    pub sent_at: Option<DateTime<FixedOffset>>,
}

/// Where alerts go, when they go again, and whether customers are told (the `alerts` setting).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// A Slack-compatible incoming webhook (JSON POST with `text`); empty: none.
    #[serde(default)]
    pub webhook_url: String,
    /// The on-call address; empty: none.
    #[serde(default)]
    pub email: String,
    /// The second contact, for alerts nobody acknowledged in time.
    #[serde(default)]
    pub second_webhook_url: String,
    #[serde(default)]
    pub second_email: String,
    /// Seconds an open alert waits for an acknowledgement before it goes to the second contact;
    /// 0: never.
    #[serde(default = "default_escalate_after")]
    pub escalate_after_seconds: u32,
    /// Minutes after the scheduled moment at which a week's run that has not started alerts.
    #[serde(default = "default_not_started_after")]
    pub not_started_after_minutes: u32,
    /// Receipts, refund notices and declined-charge notices by email.
    #[serde(default)]
    pub customer_notices: bool,
    /// Disputes on one week's charges that raise an alert; 0: never.
    #[serde(default = "default_dispute_threshold")]
    pub dispute_threshold: u32,
}

fn default_escalate_after() -> u32 {
    900
}

fn default_not_started_after() -> u32 {
    30
}

fn default_dispute_threshold() -> u32 {
    3
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            webhook_url: String::new(),
            email: String::new(),
            second_webhook_url: String::new(),
            second_email: String::new(),
            escalate_after_seconds: default_escalate_after(),
            not_started_after_minutes: default_not_started_after(),
            customer_notices: false,
            dispute_threshold: default_dispute_threshold(),
        }
    }
}

/// The highest dispute threshold: more disputes than this in a week is an incident however large
/// the week.
pub const MAX_DISPUTE_THRESHOLD: u32 = 10_000;

/// The longest wait before escalation, and before a late run alerts: a week.
pub const MAX_WAIT_SECONDS: u32 = 7 * 24 * 3600;

impl AlertSettings {
    /// The setting's key.
    pub const KEY: &'static str = "alerts";

    /// The first field that is wrong and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (field, url) in
            [("webhook_url", &self.webhook_url), ("second_webhook_url", &self.second_webhook_url)]
        {
            let url = url.trim();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err((field, format!("{url:?} is not an http:// or https:// address")));
            }
            if url.len() > 2000 || url.contains(char::is_whitespace) {
                return Err((field, "at most 2,000 characters, no spaces".into()));
            }
        }
        for (field, email) in [("email", &self.email), ("second_email", &self.second_email)] {
            let email = email.trim();
            let valid = email.is_empty()
                || (email.len() <= 254
                    && !email.contains(char::is_whitespace)
                    && email
                        .split_once('@')
                        .is_some_and(|(user, host)| !user.is_empty() && host.contains('.')));
            if !valid {
                return Err((field, format!("{email:?} is not an email address")));
            }
        }
        if self.escalate_after_seconds > MAX_WAIT_SECONDS {
            return Err(("escalate_after_seconds", format!("at most {MAX_WAIT_SECONDS} (a week)")));
        }
        if self.not_started_after_minutes == 0 || self.not_started_after_minutes > MAX_WAIT_SECONDS / 60 {
            return Err((
                "not_started_after_minutes",
                format!("from 1 to {} (a week)", MAX_WAIT_SECONDS / 60),
            ));
        }
        if self.dispute_threshold > MAX_DISPUTE_THRESHOLD {
            return Err(("dispute_threshold", format!("from 0 (never) to {MAX_DISPUTE_THRESHOLD}")));
        }
        Ok(())
    }

    /// The first contact's channels: `(channel, recipient)`.
    pub fn primary(&self) -> Vec<(&'static str, &str)> {
        channels(&self.webhook_url, &self.email)
    }

    /// The second contact's channels.
    pub fn second(&self) -> Vec<(&'static str, &str)> {
        channels(&self.second_webhook_url, &self.second_email)
    }
}

fn channels<'a>(webhook: &'a str, email: &'a str) -> Vec<(&'static str, &'a str)> {
    [("webhook", webhook.trim()), ("email", email.trim())]
        .into_iter()
        .filter(|(_, to)| !to.is_empty())
        .collect()
}

/// The alerts page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertsPage {
    /// Open and acknowledged alerts, newest first.
    pub open: Vec<AlertView>,
    /// Resolved alerts, newest first.
    pub past: Vec<AlertView>,
    /// The latest messages and their delivery (in `messages_state`, when given).
    pub messages: Vec<MessageView>,
    pub messages_state: Option<String>,
    /// Messages by state, as [`MESSAGE_STATES`] lists them.
    pub counts: [i64; 4],
    /// The channels (for those who may change them).
    pub settings: Option<AlertSettings>,
    /// Whether this server has a mail server (`SMTP_URL`).
    pub smtp_configured: bool,
    /// The business time zone the alerts' and messages' moments are in (empty: UTC).
    #[serde(default)]
    pub time_zone: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_wrong_field() {
        let ok = AlertSettings {
            webhook_url: "http://127.0.0.1:9/hook".into(),
            email: "oncall@example.com".into(),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.primary(),
            vec![("webhook", "http://127.0.0.1:9/hook"), ("email", "oncall@example.com")]
        );
        assert!(ok.second().is_empty());
        let bad = AlertSettings { webhook_url: "ftp://x".into(), ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "webhook_url");
        let bad = AlertSettings { second_email: "nobody".into(), ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "second_email");
        let bad = AlertSettings { escalate_after_seconds: MAX_WAIT_SECONDS + 1, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "escalate_after_seconds");
        let bad = AlertSettings { dispute_threshold: MAX_DISPUTE_THRESHOLD + 1, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "dispute_threshold");
        let bad = AlertSettings { not_started_after_minutes: 0, ..Default::default() };
        assert_eq!(bad.validate().unwrap_err().0, "not_started_after_minutes");
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
        }
    }
}

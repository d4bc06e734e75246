//! Delivery of the outbox: alerts to the people on call (a Slack-compatible webhook, email) and
//! notices to customers (email), each exactly once in effect.
//!
//! Every `billing serve` runs [`deliver_forever`]. A message is claimed with a lease (so two
//! processes never send it side by side, and one killed mid-batch leaves it to the next after
//! the lease), sent carrying its delivery id (the webhook's `Idempotency-Key` header and body,
//! the email's `Message-ID`), and marked sent only once the receiver accepted it. A process
//! killed between the receiver's acceptance and that mark sends it again with the same delivery
//! id, which the receiver dedupes on. A refusal is retried with exponential backoff and shown as
//! retrying; a permanent refusal (a bad address, a 4xx) fails at once, with its reason.

mod content;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;
use crate::db::alerts::{Channel, OutboxRow};
use crate::db::Db;
use crate::psp::stripe::StripeClient;
use app::model::alerts::AlertSettings;

pub use content::Content;

/// Messages claimed at once by one process.
const BATCH: i64 = 20;
/// How long a claimed message is left to its process before another may send it (well above
/// what a batch takes: every send of it times out long before).
const LEASE: Duration = Duration::seconds(20);
/// How long a send may take in all: connecting, the greeting, the data and the answer.
const SEND_TIMEOUT: StdDuration = StdDuration::from_secs(8);
/// The first retry's wait, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::seconds(1);
const MAX_BACKOFF: Duration = Duration::minutes(15);
/// How often an idle process looks for due messages and alerts to escalate.
const IDLE_POLL: StdDuration = StdDuration::from_millis(500);

/// Why a delivery did not happen, and whether trying again can help.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// A permanent refusal: the message fails now.
    pub permanent: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), permanent: false }
    }

    fn permanent(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), permanent: true }
    }
}

/// What one process needs to deliver messages.
pub struct Notifier {
    db: Db,
    worker: String,
    http: reqwest::Client,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, lettre::message::Mailbox)>,
    content: content::Composer,
}

impl Notifier {
    pub fn new(db: Db, config: &Config, provider: Option<StripeClient>) -> anyhow::Result<Notifier> {
        use secrecy::ExposeSecret;
        let smtp = match &config.smtp {
            None => None,
            Some(smtp) => {
                // Plain SMTP (the configuration accepts only smtp://): to a relay on the same
                // host or network, which carries the mail on over TLS.
                let url = url::Url::parse(smtp.url.expose_secret())?;
                let host = url.host_str().unwrap_or("localhost");
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(url.port().unwrap_or(25))
                    .timeout(Some(SEND_TIMEOUT));
                if !url.username().is_empty() {
                    let decode =
                        |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
                    let password = decode(url.password().unwrap_or_default());
                    builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                        decode(url.username()),
                        password,
                    ));
                }
                let transport = builder.build();
                Some((transport, smtp.from.parse()?))
            }
        };
        let http = reqwest::Client::builder().timeout(SEND_TIMEOUT).build()?;
        Ok(Notifier {
            worker: format!("notify-{}-{}", std::process::id(), crate::db::alerts::delivery_id()),
            content: content::Composer::new(db.clone(), config, provider),
            db,
            http,
            smtp,
        })
    }

    /// Delivers up to one batch of due messages of every channel, side by side; returns how
    /// many were claimed.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        self.deliver_due_of(self.every_channel(), false).await
    }

    /// Every channel this process can send on.
    fn every_channel(&self) -> Channel {
        if self.smtp.is_some() {
            Channel::Any
        } else {
            Channel::AnyButEmail
        }
    }

    /// As [`Notifier::deliver_due`], of `channel`'s messages, to staff only with `staff_only`.
    async fn deliver_due_of(&self, channel: Channel, staff_only: bool) -> anyhow::Result<usize> {
        let claimed = self.db.claim_messages(&self.worker, LEASE, BATCH, channel, staff_only).await?;
        let results = futures::future::join_all(claimed.iter().map(|m| self.deliver(m))).await;
        for result in results {
            result?;
        }
        Ok(claimed.len())
    }

    /// Sends one claimed message and records what came of it (each at once: the shorter the
    /// time between acceptance and the mark, the rarer a repeat).
    async fn deliver(&self, message: &OutboxRow) -> Result<(), sqlx::Error> {
        match self.send(message).await {
            Ok(()) => {
                self.db.message_sent(message.id, &self.worker).await?;
                metrics::counter!("billing_messages_sent_total", "channel" => message.channel.clone())
                    .increment(1);
            }
            Err(failure) => {
                let retry_at = crate::db::now() + backoff(message.attempts);
                tracing::warn!(
                    message = message.id,
                    delivery_id = %message.delivery_id,
                    attempt = message.attempts,
                    permanent = failure.permanent,
                    error = %failure.message,
                    "a message was not delivered"
                );
                self.db
                    .message_failed(message.id, &self.worker, &failure.message, retry_at, failure.permanent)
                    .await?;
                metrics::counter!("billing_messages_failed_total", "channel" => message.channel.clone())
                    .increment(1);
            }
        }
        Ok(())
    }

    /// Sends one message, within one deadline for the whole of it: a receiver that accepts the
    /// connection and never answers holds up this message for [`SEND_TIMEOUT`], no longer.
    async fn send(&self, message: &OutboxRow) -> Result<(), Failure> {
        let content = self.content.compose(message).await?;
        let send = async {
            match message.channel.as_str() {
                "webhook" => self.post(message, &content).await,
                "email" => self.mail(message, &content).await,
                other => Err(Failure::permanent(format!("unknown channel {other:?}"))),
            }
        };
        tokio::time::timeout(SEND_TIMEOUT, send).await.unwrap_or_else(|_| {
            Err(Failure::retry(format!("{}: no answer within {} s", message.channel, SEND_TIMEOUT.as_secs())))
        })
    }

    async fn post(&self, message: &OutboxRow, content: &Content) -> Result<(), Failure> {
        let response = self
            .http
            .post(&message.recipient)
            .header("Idempotency-Key", &message.delivery_id)
            .header("X-Delivery-Id", &message.delivery_id)
            .json(&content.webhook_body(&message.delivery_id))
            .send()
            .await
            .map_err(|e| Failure::retry(format!("webhook: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = response.text().await.unwrap_or_default().chars().take(200).collect();
        let failure = format!("webhook answered {status}: {body}");
        // A 4xx other than a timeout or a throttle will not change by itself.
        if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
            Err(Failure::permanent(failure))
        } else {
            Err(Failure::retry(failure))
        }
    }

    async fn mail(&self, message: &OutboxRow, content: &Content) -> Result<(), Failure> {
        let Some((transport, from)) = &self.smtp else {
            return Err(Failure::retry("no mail server is configured here (SMTP_URL)"));
        };
        let to: lettre::message::Mailbox = message.recipient.parse().map_err(|e| {
            Failure::permanent(format!("{:?} is not an email address: {e}", message.recipient))
        })?;
        let email = content
            .email(from.clone(), to, &message.delivery_id)
            .map_err(|e| Failure::permanent(format!("the message could not be built: {e}")))?;
        match transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(Failure::permanent(format!("mail server refused: {e}"))),
            Err(e) => Err(Failure::retry(format!("mail server: {e}"))),
        }
    }
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s … up to 15 minutes, with a little
/// jitter so that messages that failed together do not all come back together.
pub fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let base =
        FIRST_BACKOFF.checked_mul(2_i32.saturating_pow(exponent)).unwrap_or(MAX_BACKOFF).min(MAX_BACKOFF);
    let jitter = i64::from(Utc::now().timestamp_subsec_nanos()) % (base.num_milliseconds() / 10 + 1);
    base + Duration::milliseconds(jitter)
}

/// Delivers the alerts that are due, for at most `limit`, and returns: what `billing run` does
/// when it stops, so that a halt pages the people on call even where no `billing serve` runs.
/// A message refused now is left retrying for the servers; customer notices are left to them.
pub async fn deliver_alerts_before_exit(
    db: &Db,
    config: &Config,
    provider: Option<StripeClient>,
    limit: StdDuration,
) {
    let notifier = match Notifier::new(db.clone(), config, provider) {
        Ok(notifier) => notifier,
        Err(e) => return tracing::warn!(error = %e, "alerts could not be sent"),
    };
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        let channel = notifier.every_channel();
        match tokio::time::timeout_at(deadline, notifier.deliver_due_of(channel, true)).await {
            Ok(Ok(n)) if n > 0 => continue,
            Ok(Err(e)) => tracing::warn!(error = %e, "alerts could not be sent"),
            _ => {}
        }
        return;
    }
}

/// Delivers messages and escalates alerts nobody acknowledged, forever (`billing serve`). Each
/// channel is delivered by a loop of its own, so that a hung or slow receiver (a mail relay that
/// never answers) delays only its own messages: the on-call webhook goes out whatever the mail
/// relay does. Within a channel, alerts to staff go before customer notices.
pub async fn deliver_forever(notifier: Arc<Notifier>) {
    let escalation = async {
        loop {
            if let Err(e) = escalate(&notifier.db).await {
                tracing::warn!(error = %e, "alerts could not be escalated");
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    };
    let mut channels = vec![Channel::Webhook];
    if notifier.smtp.is_some() {
        channels.push(Channel::Email);
    }
    let loops = channels.into_iter().map(|channel| deliver_channel_forever(&notifier, channel));
    tokio::join!(escalation, futures::future::join_all(loops));
}

/// Delivers `channel`'s messages as they fall due, forever.
async fn deliver_channel_forever(notifier: &Notifier, channel: Channel) {
    loop {
        match notifier.deliver_due_of(channel, false).await {
            Ok(n) if n as i64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, ?channel, "the outbox could not be read"),
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
}

async fn escalate(db: &Db) -> Result<(), sqlx::Error> {
    let settings: AlertSettings = db.setting_or_default(AlertSettings::KEY).await?;
    if settings.escalate_after_seconds == 0 || settings.second().is_empty() {
        return Ok(());
    }
    let after = Duration::seconds(i64::from(settings.escalate_after_seconds));
    let escalated = db.escalate_alerts(after).await?;
    if escalated > 0 {
        tracing::warn!(escalated, at = %Utc::now(), "alerts nobody acknowledged went to the second contact");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let seconds = |n| backoff(n).num_seconds();
        assert_eq!(seconds(1), 1);
        assert!((2..=2).contains(&seconds(2)));
        assert!((8..=8).contains(&seconds(4)));
        assert!((900..=990).contains(&seconds(19)));
        assert!(backoff(30) <= MAX_BACKOFF + MAX_BACKOFF / 10);
    }
}

//! What a message says. Alerts are written from their row; customer notices from the
//! templates in `server/templates/notices` (English and Spanish; English where the customer's
//! language has none), filled from the frozen invoice or the refund at the time of sending.

use minijinja::{context, Environment};
use serde::Serialize;

use super::Failure;
use crate::config::Config;
use crate::db::alerts::OutboxRow;
use crate::db::Db;
use crate::psp::stripe::StripeClient;
use app::model::money::{BillingCurrency, Money};
use app::model::pricing::Attendance;

/// The languages the notices are written in; the first is the fallback.
pub const LANGUAGES: [&str; 2] = ["en", "es"];

/// The templates, compiled into the binary.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/notices/layout.html")),
    ("receipt.en.txt", include_str!("../../templates/notices/receipt.en.txt")),
    ("receipt.en.html", include_str!("../../templates/notices/receipt.en.html")),
    ("receipt.es.txt", include_str!("../../templates/notices/receipt.es.txt")),
    ("receipt.es.html", include_str!("../../templates/notices/receipt.es.html")),
    ("declined.en.txt", include_str!("../../templates/notices/declined.en.txt")),
    ("declined.en.html", include_str!("../../templates/notices/declined.en.html")),
    ("declined.es.txt", include_str!("../../templates/notices/declined.es.txt")),
    ("declined.es.html", include_str!("../../templates/notices/declined.es.html")),
    ("add_card.en.txt", include_str!("../../templates/notices/add_card.en.txt")),
    ("add_card.en.html", include_str!("../../templates/notices/add_card.en.html")),
    ("add_card.es.txt", include_str!("../../templates/notices/add_card.es.txt")),
    ("add_card.es.html", include_str!("../../templates/notices/add_card.es.html")),
    ("refund.en.txt", include_str!("../../templates/notices/refund.en.txt")),
    ("refund.en.html", include_str!("../../templates/notices/refund.en.html")),
    ("refund.es.txt", include_str!("../../templates/notices/refund.es.txt")),
    ("refund.es.html", include_str!("../../templates/notices/refund.es.html")),
];

/// A message ready to go: the subject, a plain-text body, an HTML body for email, and what the
/// webhook posts.
#[derive(Clone, Debug, PartialEq)]
pub struct Content {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// For alerts: the alert as JSON, beside the text.
    pub alert: Option<serde_json::Value>,
}

impl Content {
    /// A Slack-compatible body (`text`), with the delivery id and the alert for other receivers.
    pub fn webhook_body(&self, delivery_id: &str) -> serde_json::Value {
        serde_json::json!({ "text": self.text, "delivery_id": delivery_id, "alert": self.alert })
    }

    /// The email, its `Message-ID` made from the delivery id.
    pub fn email(
        &self,
        from: lettre::message::Mailbox,
        to: lettre::message::Mailbox,
        delivery_id: &str,
    ) -> Result<lettre::Message, lettre::error::Error> {
        use lettre::message::{MultiPart, SinglePart};
        let builder = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(&self.subject)
            .message_id(Some(format!("<{delivery_id}@carpool-billing>")));
        match &self.html {
            Some(html) => {
                builder.multipart(MultiPart::alternative_plain_html(self.text.clone(), html.clone()))
            }
            None => builder.singlepart(SinglePart::plain(self.text.clone())),
        }
    }
}

#[derive(Serialize)]
struct Line {
    date: String,
    distance_km: String,
    amount: String,
    note: &'static str,
}

/// Writes messages.
pub struct Composer {
    db: Db,
    provider: Option<StripeClient>,
    public_url: Option<url::Url>,
    time_zone: chrono_tz::Tz,
    templates: Environment<'static>,
}

impl Composer {
    pub fn new(db: Db, config: &Config, provider: Option<StripeClient>) -> Composer {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates.add_template(name, source).expect("the notice templates compile (a test renders each)");
        }
        Composer {
            db,
            provider,
            public_url: config.public_url.clone(),
            time_zone: config.time_zone,
            templates,
        }
    }

    pub async fn compose(&self, message: &OutboxRow) -> Result<Content, Failure> {
        match message.kind.as_str() {
            "alert" | "escalation" | "test" => self.alert(message).await,
            "receipt" | "declined" => self.invoice_notice(message).await,
            "refund" => self.refund_notice(message).await,
            other => Err(Failure::permanent(format!("unknown message kind {other:?}"))),
        }
    }

    async fn alert(&self, message: &OutboxRow) -> Result<Content, Failure> {
        let id = message.alert_id.ok_or_else(|| Failure::permanent("an alert message without its alert"))?;
        let alert = self
            .db
            .alert(id)
            .await
            .map_err(db_failure)?
            .ok_or_else(|| Failure::permanent("the alert is gone"))?;
        let link = alert.link.as_deref().map(|path| match &self.public_url {
            Some(base) => base.join(path).map(|u| u.to_string()).unwrap_or_else(|_| path.to_owned()),
            None => path.to_owned(),
        });
        let escalated = if message.kind == "escalation" { "[not acknowledged] " } else { "" };
        let subject = format!("[Carpool Billing] {escalated}{}", alert.title);
        let mut text = format!("{escalated}{}\n{}", alert.title, alert.detail);
        if let Some(link) = &link {
            text.push_str(&format!("\n{link}"));
        }
        text.push_str(&format!(
            "\nRaised {} (alert {}).",
            alert.first_at.format("%Y-%m-%d %H:%M:%S UTC"),
            alert.id
        ));
        let mut json = serde_json::to_value(&alert).expect("an alert serialises");
        json["url"] = serde_json::json!(link);
        Ok(Content { subject, text, html: None, alert: Some(json) })
    }

    async fn invoice_notice(&self, message: &OutboxRow) -> Result<Content, Failure> {
        let invoice_id =
            message.subject_id.ok_or_else(|| Failure::permanent("a notice without its invoice"))?;
        let invoice = self
            .db
            .invoice_detail(invoice_id)
            .await
            .map_err(db_failure)?
            .ok_or_else(|| Failure::permanent(format!("invoice {invoice_id} is gone")))?;
        let lang = language(&message.language);
        let week = invoice.week.to_string();
        if message.kind == "receipt" {
            let lines: Vec<Line> = invoice
                .lines
                .iter()
                .map(|l| Line {
                    date: l.ended_at.with_timezone(&self.time_zone).format("%Y-%m-%d %H:%M").to_string(),
                    distance_km: format!("{}.{}", l.distance_m / 1000, (l.distance_m % 1000) / 100),
                    amount: l.amount.to_string(),
                    note: note(l.attendance, lang),
                })
                .collect();
            let card_last4 = self.card_last4(&invoice.user_id).await?;
            let subject = match lang {
                "es" => format!("Tu recibo de viajes compartidos de la semana {week}"),
                _ => format!("Your carpool receipt for week {week}"),
            };
            let ctx = context! {
                lang, subject, name => invoice.user_name, week, lines, card_last4,
                total => invoice.total.to_string(), invoice_id,
            };
            self.render("receipt", lang, ctx)
        } else {
            let (state, next_at, reason) = self
                .db
                .charge_state(invoice_id)
                .await
                .map_err(db_failure)?
                .ok_or_else(|| Failure::permanent(format!("invoice {invoice_id} has no charge")))?;
            if reason.as_deref() == Some(crate::db::provider::NO_PAYMENT_METHOD) {
                let subject = match lang {
                    "es" => format!("Añade una tarjeta para pagar tus viajes de la semana {week}"),
                    _ => format!("Add a card to pay for your rides of week {week}"),
                };
                let ctx = context! {
                    lang, subject, name => invoice.user_name, week, total => invoice.total.to_string(), invoice_id,
                };
                return self.render("add_card", lang, ctx);
            }
            let retry_on = (state == "declined")
                .then(|| next_at.with_timezone(&self.time_zone).format("%Y-%m-%d").to_string());
            let subject = match lang {
                "es" => format!("No pudimos cobrar tu tarjeta por la semana {week}"),
                _ => format!("We could not charge your card for week {week}"),
            };
            let ctx = context! {
                lang, subject, name => invoice.user_name, week, retry_on, total => invoice.total.to_string(), invoice_id,
            };
            self.render("declined", lang, ctx)
        }
    }

    async fn refund_notice(&self, message: &OutboxRow) -> Result<Content, Failure> {
        let id = message.subject_id.ok_or_else(|| Failure::permanent("a notice without its refund"))?;
        let refund = self
            .db
            .refund(id)
            .await
            .map_err(db_failure)?
            .ok_or_else(|| Failure::permanent(format!("refund {id} is gone")))?;
        let invoice = self
            .db
            .invoice_detail(refund.invoice_id)
            .await
            .map_err(db_failure)?
            .ok_or_else(|| Failure::permanent(format!("invoice {} is gone", refund.invoice_id)))?;
        let lang = language(&message.language);
        // In the refund's own currency, whatever the configured one.
        let currency = BillingCurrency::from_code(&refund.currency)
            .map_err(|e| Failure::permanent(format!("refund {id}: {e}")))?;
        let amount = Money::from_minor(refund.amount_minor, currency).to_string();
        let subject = match lang {
            "es" => format!("Tu reembolso de {amount}"),
            _ => format!("Your refund of {amount}"),
        };
        let ctx = context! {
            lang, subject, name => invoice.user_name, week => invoice.week.to_string(), amount,
            reason => reason(&refund.reason, lang), invoice_id => refund.invoice_id, refund_id => id,
        };
        self.render("refund", lang, ctx)
    }

    /// Template `name` in `lang`, text and HTML, from `ctx`, whose `subject` is the message's too.
    fn render(&self, name: &str, lang: &str, ctx: minijinja::Value) -> Result<Content, Failure> {
        let subject = ctx.get_attr("subject").map(|v| v.to_string()).unwrap_or_default();
        let render = |ext: &str| {
            self.templates
                .get_template(&format!("{name}.{lang}.{ext}"))
                .and_then(|t| t.render(&ctx))
                .map_err(|e| Failure::permanent(format!("template {name}.{lang}.{ext}: {e}")))
        };
        Ok(Content { subject, text: render("txt")?, html: Some(render("html")?), alert: None })
    }

    /// The last four digits of the passenger's card, from the provider; none when it is not
    /// known (the receipt then does not name the card).
    async fn card_last4(&self, user_id: &str) -> Result<Option<String>, Failure> {
        let (Some(provider), Some((_, card))) =
            (&self.provider, self.db.provider_customer(user_id).await.map_err(db_failure)?)
        else {
            return Ok(None);
        };
        match provider.payment_method(&card).await {
            Ok(found) => Ok(found["card"]["last4"].as_str().map(str::to_owned)),
            Err(e) if e.retryable() => {
                Err(Failure::retry(format!("reading the card from the provider: {e}")))
            }
            Err(_) => Ok(None),
        }
    }
}

fn db_failure(e: sqlx::Error) -> Failure {
    Failure::retry(format!("database: {e}"))
}

/// The notice language for a customer's `language` (`es`, `es-MX` …), English by default.
pub fn language(code: &str) -> &'static str {
    let primary = code.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    LANGUAGES.into_iter().find(|l| *l == primary).unwrap_or(LANGUAGES[0])
}

fn note(attendance: Attendance, lang: &str) -> &'static str {
    match (attendance, lang) {
        (Attendance::Completed, _) => "",
        (Attendance::Cancelled, "es") => "cancelado",
        (Attendance::Cancelled, _) => "cancelled",
        (Attendance::NoShow, "es") => "no se presentó",
        (Attendance::NoShow, _) => "no-show",
    }
}

fn reason(code: &str, lang: &str) -> &'static str {
    match (code, lang) {
        ("duplicate", "es") => "cargo duplicado",
        ("duplicate", _) => "duplicate charge",
        ("fraudulent", "es") => "cargo no autorizado",
        ("fraudulent", _) => "unauthorised charge",
        ("requested_by_customer", "es") => "a petición tuya",
        ("requested_by_customer", _) => "at your request",
        ("service_issue", "es") => "un problema con el servicio",
        ("service_issue", _) => "a problem with the service",
        (_, "es") => "ajuste",
        _ => "adjustment",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_in_every_language() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).unwrap();
        }
        let lines = vec![Line {
            date: "2026-11-20 08:10".into(),
            distance_km: "12.3".into(),
            amount: "4.10 USD".into(),
            note: "",
        }];
        for lang in LANGUAGES {
            for kind in ["receipt", "declined", "add_card", "refund"] {
                for ext in ["txt", "html"] {
                    let ctx = context! {
                        lang, subject => "S", name => "Ana <b>", week => "2026-W47", lines => &lines, card_last4 => "4242",
                        total => "4.10 USD", amount => "1.00 USD", retry_on => "2026-11-29", reason => "r",
                        invoice_id => 7, refund_id => 3,
                    };
                    let out = env.get_template(&format!("{kind}.{lang}.{ext}")).unwrap().render(ctx).unwrap();
                    assert!(out.contains("2026-W47"), "{kind}.{lang}.{ext}: {out}");
                    if ext == "html" {
                        assert!(out.contains("Ana &lt;b&gt;"), "HTML escapes names: {out}");
                    }
                }
            }
        }
        assert_eq!(language("es-MX"), "es");
        assert_eq!(language("fr"), "en");
    }
}

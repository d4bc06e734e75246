//! Typed configuration from the environment.
//!
//! Every variable is optional and has a default that runs the demo. A bad value is rejected
//! once, here, with an error that names the variable; past this point every value is valid.

use std::str::FromStr;

use app::model::money::BillingCurrency;
use chrono_tz::Tz;
use secrecy::SecretString;
use url::Url;

/// The SQLite file used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/billing.db";
/// The sender of alerts and notices when `MAIL_FROM` is not set.
pub const DEFAULT_MAIL_FROM: &str = "Carpool Billing <billing@localhost>";

/// The largest simulated provider latency accepted, in milliseconds.
const MAX_SIM_LATENCY_MS: u64 = 60_000;
/// Where the dashboard's compiled assets are when `LEPTOS_SITE_ROOT` is not set.
pub const DEFAULT_SITE_ROOT: &str = "target/site";

/// An environment variable the configuration reads.
#[derive(Clone, Copy, Debug)]
pub struct EnvVar {
    pub name: &'static str,
    /// What it holds and what happens when it is not set.
    pub meaning: &'static str,
}

/// Every environment variable the product reads: the one list `billing --help` prints, that
/// [`Config::from_lookup`] reads (a test holds the two to each other) and that the README's
/// configuration table names (a test holds that too).
pub const ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "DATABASE_URL", meaning: "sqlite:… (default sqlite://data/billing.db) or postgres://…"
    },
    EnvVar {
        name: "PSP_URL",
        meaning: "the payment provider's base URL (https://api.stripe.com), or `sim` for the simulator \
                  inside the process; required by serve, run and reconcile",
    },
    EnvVar {
        name: "PSP_API_KEY",
        meaning: "the provider's secret key, sk_test_… or sk_live_… (live: an https PSP_URL only)",
    },
    EnvVar {
        name: "PSP_PROVISION",
        meaning: "off | test: make customers, test cards and accounts for users the carpool app sent \
                  none for (test keys only; default off)",
    },
    EnvVar {
        name: "PSP_TEST_CARDS",
        meaning:
            "tokens | numbers: how test provisioning makes cards (default tokens; numbers for localstripe)",
    },
    EnvVar { name: "PSP_SIM_LATENCY_MS", meaning: "latency of the in-process simulator in ms (default 0)" },
    EnvVar {
        name: "STRIPE_WEBHOOK_SECRET",
        meaning: "the webhook endpoint's signing secret (whsec_…); unset, /webhooks/stripe answers 503",
    },
    EnvVar { name: "BILLING_TZ", meaning: "the IANA zone billing weeks are cut in (default UTC)" },
    EnvVar { name: "BILLING_CURRENCY", meaning: "the ISO 4217 code of every amount (default USD)" },
    EnvVar { name: "LOG_FORMAT", meaning: "text | json (default text)" },
    EnvVar { name: "RUST_LOG", meaning: "the log filter (default info)" },
    EnvVar {
        name: "PUBLIC_URL",
        meaning: "the dashboard's public address behind a proxy (https:// makes cookies Secure)",
    },
    EnvVar {
        name: "TRUSTED_PROXIES",
        meaning:
            "proxy addresses, separated by commas, whose X-Forwarded-For names the client (default none)",
    },
    EnvVar {
        name: "REPORT_DIR",
        meaning: "the folder where `billing serve` writes each completed week's CSV and XLSX report",
    },
    EnvVar {
        name: "SMTP_URL",
        meaning: "smtp://[user:password@]host[:port]: the relay alerts and customer notices go through",
    },
    EnvVar {
        name: "MAIL_FROM",
        meaning: "the sender of every message (default Carpool Billing <billing@localhost>)",
    },
    EnvVar {
        name: "LEPTOS_SITE_ROOT",
        meaning: "the folder of the dashboard's compiled assets (default target/site)",
    },
];

/// The environment part of `billing --help`, from [`ENV_VARS`].
pub fn env_help() -> String {
    let width = ENV_VARS.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from("Configuration comes from the environment (all optional):\n");
    // Wrapped here, under its own column, so that no line reaches clap's 100 columns.
    let room = 96 - width - 4;
    for var in ENV_VARS {
        let mut lines = vec![String::new()];
        for word in var.meaning.split_whitespace() {
            let line = lines.last_mut().expect("one line");
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > room {
                lines.push(word.to_owned());
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        for (i, line) in lines.iter().enumerate() {
            let name = if i == 0 { var.name } else { "" };
            text.push_str(&format!("  {name:width$}  {line}\n"));
        }
    }
    text.push_str("\nA bad value stops the command with exit code 2 and names the variable.");
    text
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it and what would be accepted.
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self { variable, message: message.into() }
    }
}

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A validated `DATABASE_URL`.
#[derive(Clone, Debug)]
pub struct DatabaseUrl {
    kind: DatabaseKind,
    url: SecretString,
}

impl DatabaseUrl {
    /// Accepts `sqlite:…` and `postgres://…` / `postgresql://…` URLs that sqlx can use.
    pub fn parse(raw: &str) -> Result<Self, String> {
        use sqlx::postgres::PgConnectOptions;
        use sqlx::sqlite::SqliteConnectOptions;
        let kind = if raw.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(raw).map_err(|e| format!("not a valid SQLite URL: {e}"))?;
            DatabaseKind::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            PgConnectOptions::from_str(raw)
                .map_err(|e| format!("not a valid PostgreSQL URL: {}", redact_url_error(&e.to_string())))?;
            DatabaseKind::Postgres
        } else {
            return Err(
                "must start with sqlite: or postgres:// (for example sqlite://data/billing.db)".into()
            );
        };
        Ok(Self { kind, url: SecretString::from(raw.to_owned()) })
    }

    /// Which database the URL selects.
    pub fn kind(&self) -> &DatabaseKind {
        &self.kind
    }

    /// The URL itself, which may hold a password: never log it.
    pub fn expose(&self) -> &str {
        use secrecy::ExposeSecret;
        self.url.expose_secret()
    }
}

/// Errors from URL parsers may echo the URL; keep only the first clause.
fn redact_url_error(message: &str) -> String {
    message.split(':').next().unwrap_or(message).trim().to_string()
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the provider's API is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderTarget {
    /// `PSP_URL=sim`: the simulator, started inside the process (the demo; test keys only). Not in
    /// builds without the `simulator` feature, which refuse `PSP_URL=sim` with `NO_SIMULATOR`.
    #[cfg(feature = "simulator")]
    InProcessSim,
    /// A Stripe-shaped API: Stripe itself, `billing psp-sim`, localstripe.
    Url(Url),
}

/// Whether money is real: the kind of the secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderMode {
    /// `sk_test_…`: Stripe's test mode, the simulator, an emulator.
    Test,
    /// `sk_live_…`: real cards, real money.
    Live,
}

impl ProviderMode {
    /// `test` or `live`, as the overview and `/readyz` say it.
    pub fn label(self) -> &'static str {
        match self {
            ProviderMode::Test => "test",
            ProviderMode::Live => "live",
        }
    }
}

/// The value of `PSP_URL` that starts the simulator inside the process.
pub const IN_PROCESS_SIM: &str = "sim";

/// What a build without the `simulator` feature answers to `PSP_URL=sim` and `billing psp-sim`.
#[cfg(not(feature = "simulator"))]
pub const NO_SIMULATOR: &str =
    "this build of billing has no simulator (built without the `simulator` feature)";

/// The payment provider the product talks to.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// `None` when `PSP_URL` is not set: commands that call the provider refuse to start.
    pub target: Option<ProviderTarget>,
    /// The secret API key (`sk_test_…` or `sk_live_…`).
    pub api_key: SecretString,
    /// Test or live, from the key.
    pub mode: ProviderMode,
    /// `PSP_PROVISION=test`: the run makes a customer, a test card and a connected account for
    /// users the carpool app sent none for. Test mode only; off by default.
    pub provision: bool,
    /// The in-process simulator's latency.
    pub sim_latency_ms: u64,
    /// The signing secret of the provider's webhooks (`whsec_…`); without it `POST
    /// /webhooks/stripe` refuses every event.
    pub webhook_secret: Option<SecretString>,
    /// How test cards are made for riders provisioned in test mode (`PSP_TEST_CARDS`).
    pub test_cards: crate::psp::stripe::TestCards,
}

impl ProviderConfig {
    /// The provider to call, or the error naming `PSP_URL` when none is configured.
    pub fn require_target(&self) -> Result<&ProviderTarget, ConfigError> {
        self.target.as_ref().ok_or_else(|| {
            ConfigError::new(
                "PSP_URL",
                format!(
                    "not set: name the provider's API (https://api.stripe.com, a `billing psp-sim` \
                     address) or `{IN_PROCESS_SIM}` for the simulator inside this process"
                ),
            )
        })
    }

    /// The provider as people should read it: `Stripe (https://api.stripe.com/)`, `the
    /// in-process simulator`, or `none`.
    pub fn describe(&self) -> String {
        match &self.target {
            None => "none (PSP_URL is not set)".into(),
            #[cfg(feature = "simulator")]
            Some(ProviderTarget::InProcessSim) => "the simulator inside this process".into(),
            Some(ProviderTarget::Url(url)) => url.as_str().trim_end_matches('/').to_owned(),
        }
    }
}

/// Everything `billing` reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    pub database: DatabaseUrl,
    pub provider: ProviderConfig,
    /// The IANA zone billing weeks are cut in.
    pub time_zone: Tz,
    /// The currency everything is billed in (one with a minor unit).
    pub currency: BillingCurrency,
    pub log_format: LogFormat,
    /// A tracing filter directive such as `info,server=debug`.
    pub log_filter: String,
    /// The address people reach the dashboard at, when it is not the one `billing serve`
    /// listens on (behind a proxy). With `https://`, session cookies are marked Secure.
    pub public_url: Option<Url>,
    /// Where `billing serve` writes each completed week's report (CSV and XLSX), if anywhere.
    pub report_dir: Option<std::path::PathBuf>,
    /// The mail server alerts and customer notices go through, if any.
    pub smtp: Option<SmtpConfig>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`, addresses
    /// separated by commas); from anyone else the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The folder of the dashboard's compiled assets (`LEPTOS_SITE_ROOT`).
    pub site_root: String,
}

/// `SMTP_URL` and `MAIL_FROM`.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `smtp://[user:password@]host[:port]`.
    pub url: SecretString,
    /// The sender of every message, such as `Carpool Billing <billing@example.com>`.
    pub from: String,
}

impl Config {
    /// `scheme://host[:port]` of [`Config::public_url`], the only origin allowed to make
    /// cookie-authenticated changes when set.
    pub fn public_origin(&self) -> Option<String> {
        self.public_url.as_ref().map(|u| u.origin().ascii_serialization())
    }

    /// Whether cookies must only travel over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.as_ref().is_some_and(|u| u.scheme() == "https")
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    /// An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database = match get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(raw.trim()).map_err(|m| ConfigError::new("DATABASE_URL", m))?,
            None => DatabaseUrl::parse(DEFAULT_DATABASE_URL).expect("the default database URL is valid"),
        };

        let api_key =
            get("PSP_API_KEY").map(|k| k.trim().to_owned()).unwrap_or_else(|| "sk_test_simulator".into());
        let mode = match api_key.get(..8) {
            Some("sk_test_") if api_key.len() > 8 => ProviderMode::Test,
            Some("sk_live_") if api_key.len() > 8 => ProviderMode::Live,
            _ => {
                return Err(ConfigError::new(
                    "PSP_API_KEY",
                    "must be a secret key starting with sk_test_ or sk_live_",
                ))
            }
        };
        if api_key.chars().any(|c| !c.is_ascii_alphanumeric() && c != '_') {
            return Err(ConfigError::new("PSP_API_KEY", "holds characters a secret key never has"));
        }
        let target = match get("PSP_URL").map(|raw| raw.trim().to_owned()) {
            None => None,
            #[cfg(feature = "simulator")]
            Some(raw) if raw == IN_PROCESS_SIM => Some(ProviderTarget::InProcessSim),
            #[cfg(not(feature = "simulator"))]
            Some(raw) if raw == IN_PROCESS_SIM => {
                return Err(ConfigError::new(
                    "PSP_URL",
                    format!("{NO_SIMULATOR}: name the provider's API, such as https://api.stripe.com"),
                ))
            }
            Some(raw) => {
                Some(ProviderTarget::Url(parse_http_url(&raw).map_err(|m| ConfigError::new("PSP_URL", m))?))
            }
        };
        if mode == ProviderMode::Live {
            match &target {
                None => {
                    return Err(ConfigError::new(
                        "PSP_URL",
                        "not set: a live key (sk_live_…) needs the provider's https:// URL, such as https://api.stripe.com",
                    ))
                }
                #[cfg(feature = "simulator")]
                Some(ProviderTarget::InProcessSim) => {
                    return Err(ConfigError::new(
                        "PSP_URL",
                        "names the simulator, which never takes a live key (sk_live_…): use https://api.stripe.com",
                    ))
                }
                Some(ProviderTarget::Url(url)) if url.scheme() != "https" => {
                    return Err(ConfigError::new(
                        "PSP_URL",
                        format!("{url} is not https://: a live key (sk_live_…) is only sent over TLS"),
                    ))
                }
                Some(ProviderTarget::Url(_)) => {}
            }
        }
        let provision = match get("PSP_PROVISION").as_deref().map(str::trim) {
            None | Some("off") => false,
            Some("test") if mode == ProviderMode::Test => true,
            Some("test") => {
                return Err(ConfigError::new(
                    "PSP_PROVISION",
                    "test provisioning makes customers, cards and accounts for users; a live key (sk_live_…) never does",
                ))
            }
            Some(other) => {
                return Err(ConfigError::new("PSP_PROVISION", format!("{other:?} is not one of off, test")))
            }
        };
        let webhook_secret = match get("STRIPE_WEBHOOK_SECRET") {
            None => None,
            Some(raw) if raw.trim().starts_with("whsec_") && raw.trim().len() > 10 => {
                Some(SecretString::from(raw.trim().to_owned()))
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "STRIPE_WEBHOOK_SECRET",
                    "must be the endpoint's signing secret, starting with whsec_",
                ))
            }
        };
        let test_cards = match get("PSP_TEST_CARDS").as_deref().map(str::trim) {
            None | Some("tokens") => crate::psp::stripe::TestCards::Tokens,
            Some("numbers") => crate::psp::stripe::TestCards::Numbers,
            Some(other) => {
                return Err(ConfigError::new(
                    "PSP_TEST_CARDS",
                    format!("{other:?}: use tokens (Stripe, the simulator) or numbers (localstripe)"),
                ))
            }
        };
        let sim_latency_ms = match get("PSP_SIM_LATENCY_MS") {
            None => 0,
            Some(raw) => {
                raw.trim().parse::<u64>().ok().filter(|ms| *ms <= MAX_SIM_LATENCY_MS).ok_or_else(|| {
                    ConfigError::new(
                        "PSP_SIM_LATENCY_MS",
                        format!(
                            "{raw:?} is not a whole number of milliseconds from 0 to {MAX_SIM_LATENCY_MS}"
                        ),
                    )
                })?
            }
        };

        let time_zone = match get("BILLING_TZ") {
            None => Tz::UTC,
            Some(raw) => raw.trim().parse::<Tz>().map_err(|_| {
                ConfigError::new(
                    "BILLING_TZ",
                    format!("{raw:?} is not an IANA time zone (for example Europe/Paris)"),
                )
            })?,
        };

        let currency = BillingCurrency::from_code(get("BILLING_CURRENCY").as_deref().unwrap_or("USD"))
            .map_err(|e| ConfigError::new("BILLING_CURRENCY", format!("{e} (for example USD or EUR)")))?;

        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new("LOG_FORMAT", format!("{other:?} is not one of text, json")));
            }
        };

        let log_filter = get("RUST_LOG").unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| ConfigError::new("RUST_LOG", format!("{log_filter:?} is not a log filter: {e}")))?;

        let public_url = get("PUBLIC_URL")
            .map(|raw| parse_http_url(raw.trim()))
            .transpose()
            .map_err(|m| ConfigError::new("PUBLIC_URL", m))?;

        let report_dir = get("REPORT_DIR")
            .map(|raw| {
                let path = std::path::PathBuf::from(raw.trim());
                if path.exists() && !path.is_dir() {
                    Err(format!("{raw:?} exists and is not a folder"))
                } else {
                    Ok(path)
                }
            })
            .transpose()
            .map_err(|m| ConfigError::new("REPORT_DIR", m))?;

        let smtp = get("SMTP_URL")
            .map(|raw| {
                let url = Url::parse(raw.trim()).map_err(|e| ConfigError::new("SMTP_URL", format!("not a URL: {e}")))?;
                if url.scheme() != "smtp" || url.host_str().is_none() {
                    return Err(ConfigError::new(
                        "SMTP_URL",
                        "write smtp://[user:password@]host[:port] (TLS: a local relay such as stunnel or postfix)",
                    ));
                }
                let from = get("MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.into());
                from.trim()
                    .parse::<lettre::message::Mailbox>()
                    .map_err(|e| ConfigError::new("MAIL_FROM", format!("{from:?} is not a mailbox: {e}")))?;
                Ok(SmtpConfig { url: SecretString::from(raw.trim().to_owned()), from: from.trim().to_owned() })
            })
            .transpose()?;

        let trusted_proxies = get("TRUSTED_PROXIES")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(|a| a.parse::<std::net::IpAddr>().map_err(|_| format!("{a:?} is not an IP address")))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|m| {
                ConfigError::new("TRUSTED_PROXIES", format!("{m} (write addresses separated by commas)"))
            })?
            .unwrap_or_default();

        let site_root = get("LEPTOS_SITE_ROOT").unwrap_or_else(|| DEFAULT_SITE_ROOT.into());

        Ok(Config {
            site_root,
            public_url,
            report_dir,
            smtp,
            trusted_proxies,
            database,
            provider: ProviderConfig {
                target,
                api_key: SecretString::from(api_key),
                mode,
                provision,
                sim_latency_ms,
                webhook_secret,
                test_cards,
            },
            time_zone,
            currency,
            log_format,
            log_filter,
        })
    }
}

fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} must be an http:// or https:// URL with a host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    /// What `from_lookup` reads is what `ENV_VARS` lists (and so what `--help` prints).
    #[test]
    fn the_variables_read_are_the_ones_listed() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        Config::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            // SMTP_URL set, so that MAIL_FROM is read too.
            (name == "SMTP_URL").then(|| "smtp://relay.example:25".to_owned())
        })
        .unwrap();
        let listed: std::collections::BTreeSet<String> = ENV_VARS.iter().map(|v| v.name.to_owned()).collect();
        assert_eq!(asked.into_inner(), listed);
        let help = env_help();
        assert!(ENV_VARS.iter().all(|v| help.contains(v.name)), "{help}");
        assert!(help.lines().all(|l| l.chars().count() <= 96), "{help}");
    }

    /// The README's configuration table has a row for every variable.
    #[test]
    fn the_readme_names_every_variable() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
        let missing: Vec<&str> = ENV_VARS
            .iter()
            .map(|v| v.name)
            .filter(|name| !readme.lines().any(|l| l.starts_with(&format!("| `{name}`"))))
            .collect();
        assert!(
            missing.is_empty(),
            "no row `| `NAME` |` in the README's configuration table for {missing:?}"
        );
    }

    #[test]
    fn defaults_run_the_demo() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database.kind(), &DatabaseKind::Sqlite);
        assert_eq!(c.database.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(c.time_zone, Tz::UTC);
        assert_eq!(c.currency.code(), "USD");
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.provider.target.is_none());
        assert_eq!(c.provider.mode, ProviderMode::Test);
        assert!(!c.provider.provision);
        assert_eq!(c.provider.sim_latency_ms, 0);
    }

    #[test]
    fn good_values_are_taken() {
        let c = config(&[
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing"),
            ("PSP_URL", "http://127.0.0.1:12111"),
            ("PSP_API_KEY", "sk_test_abc"),
            ("PSP_SIM_LATENCY_MS", "200"),
            ("BILLING_TZ", "Europe/Paris"),
            ("BILLING_CURRENCY", "JPY"),
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "warn,server=debug"),
        ])
        .unwrap();
        assert_eq!(c.database.kind(), &DatabaseKind::Postgres);
        assert_eq!(c.time_zone, chrono_tz::Europe::Paris);
        assert_eq!(c.currency.code(), "JPY");
        assert_eq!(c.currency.exponent(), 0);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.provider.sim_latency_ms, 200);
        assert_eq!(
            c.provider.target,
            Some(ProviderTarget::Url(Url::parse("http://127.0.0.1:12111").unwrap()))
        );
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases = [
            ("DATABASE_URL", "mysql://localhost/db"),
            ("PSP_URL", "not a url"),
            ("PSP_URL", "ftp://example.com"),
            ("PSP_API_KEY", "pk_test_123"),
            ("PSP_SIM_LATENCY_MS", "-5"),
            ("PSP_SIM_LATENCY_MS", "1e3"),
            ("PSP_SIM_LATENCY_MS", "600000"),
            ("BILLING_TZ", "Mars/Olympus_Mons"),
            ("BILLING_CURRENCY", "XYZ"),
            ("BILLING_CURRENCY", "XAU"),
            ("LOG_FORMAT", "yaml"),
            ("RUST_LOG", "info,[[["),
            ("PUBLIC_URL", "billing.example.com"),
            ("REPORT_DIR", "/dev/null"),
            ("STRIPE_WEBHOOK_SECRET", "sk_test_not_a_signing_secret"),
            ("PSP_TEST_CARDS", "cards"),
            ("PSP_PROVISION", "yes"),
            ("PSP_API_KEY", "sk_live_"),
            ("PSP_API_KEY", "sk_test_abc def"),
        ];
        for (variable, value) in cases {
            let error = config(&[(variable, value)]).expect_err(variable);
            assert_eq!(error.variable, variable, "{value}");
            assert!(error.to_string().starts_with(variable), "{error}");
        }
    }

    /// Every combination that could send a live key somewhere other than the provider, or make
    /// up customers with it, is refused naming the variable to change.
    #[test]
    fn a_live_key_only_goes_to_the_provider_over_tls() {
        let live = ("PSP_API_KEY", "sk_live_abc");
        let refused = [
            (vec![live], "PSP_URL"),
            (vec![live, ("PSP_URL", "sim")], "PSP_URL"),
            (vec![live, ("PSP_URL", "http://api.stripe.com")], "PSP_URL"),
            (vec![live, ("PSP_URL", "http://127.0.0.1:12111")], "PSP_URL"),
            (vec![live, ("PSP_URL", "https://api.stripe.com"), ("PSP_PROVISION", "test")], "PSP_PROVISION"),
        ];
        for (pairs, variable) in refused {
            let error = config(&pairs).expect_err(&format!("{pairs:?}"));
            assert_eq!(error.variable, variable, "{pairs:?}: {error}");
        }
        let c = config(&[live, ("PSP_URL", "https://api.stripe.com")]).unwrap();
        assert_eq!(c.provider.mode, ProviderMode::Live);
        assert!(!c.provider.provision);
        #[cfg(feature = "simulator")]
        {
            let c = config(&[("PSP_URL", "sim"), ("PSP_PROVISION", "test")]).unwrap();
            assert_eq!(c.provider.target, Some(ProviderTarget::InProcessSim));
            assert!(c.provider.provision);
        }
        // A test key without PSP_URL is a configuration too, but nothing can be charged with it.
        let c = config(&[]).unwrap();
        assert_eq!(c.provider.require_target().unwrap_err().variable, "PSP_URL");
    }

    #[test]
    fn the_database_password_is_not_shown() {
        let c = config(&[("DATABASE_URL", "postgres://u:hunter2@db/billing")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let error = config(&[("DATABASE_URL", "postgres://u:hunter2@db:notaport/billing")]).unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}

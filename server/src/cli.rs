//! The `billing` command line: one binary for the server, the jobs and the tools.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "billing",
    version,
    about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once.",
    long_about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once.\n\n\
        Configuration comes from the environment (all optional):\n  \
        DATABASE_URL       sqlite:… (default sqlite://data/billing.db) or postgres://…\n  \
        PSP_URL            payment provider base URL (default: the in-process simulator)\n  \
        PSP_API_KEY        provider secret key, sk_test_… or sk_live_…\n  \
        PSP_SIM_LATENCY_MS latency of the in-process simulator (default 0)\n  \
        BILLING_TZ         IANA zone billing weeks are cut in (default UTC)\n  \
        BILLING_CURRENCY   ISO 4217 code (default USD)\n  \
        LOG_FORMAT         text | json (default text)\n  \
        RUST_LOG           log filter (default info)\n  \
        PUBLIC_URL         the dashboard's public address behind a proxy (https:// makes cookies Secure)\n\n\
        A bad value stops the command with exit code 2 and names the variable."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dashboard, the JSON API, health checks and metrics until SIGTERM or Ctrl-C.
    ///
    /// Requests in flight are finished before the process exits. The database must be migrated
    /// first (`billing migrate`); until it is, /readyz answers 503 and the overview says why.
    Serve {
        /// Address to listen on; port 0 picks a free port (the address is printed).
        #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
        addr: SocketAddr,
    },
    /// Staff accounts: add one, issue a personal access token, seed the demo accounts.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// Add deterministic synthetic riders, drivers and rides (the same arguments always make the
    /// same data; running again adds nothing).
    DemoData {
        #[arg(long, default_value_t = 1000)]
        passengers: u32,
        #[arg(long, default_value_t = 100)]
        drivers: u32,
        /// Complete weeks before the current one; the current week so far is added too.
        #[arg(long, default_value_t = 4)]
        weeks: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The week's invoices and payouts exactly as the run would charge and pay them.
    Preview {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
        format: PreviewFormat,
    },
    /// Apply every pending migration to DATABASE_URL, then exit.
    ///
    /// Creates the SQLite file (and its folder) if needed. Safe to run again, and from several
    /// processes at once.
    Migrate,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PreviewFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Add a staff account. The password is read from stdin (one line), never from the command
    /// line; on a terminal it is asked for without echo.
    Add {
        /// The person's email; it is their sign-in name.
        #[arg(long)]
        email: String,
        /// admin, finance or support.
        #[arg(long)]
        role: String,
    },
    /// Issue a personal access token for the staff JSON API. The token is printed once.
    Token {
        #[arg(long)]
        email: String,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Days until the token expires (1 to 366).
        #[arg(long, default_value_t = 90)]
        days: u16,
    },
    /// Create one demo account per role, with random passwords printed once, only when the
    /// database has no staff yet.
    Demo,
}

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("billing: configuration error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    crate::telemetry::init(&config);

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("billing: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { addr } => crate::serve::serve(config, addr).await,
            Command::Migrate => crate::serve::migrate(config).await,
            Command::Staff(command) => staff(config, command).await,
            Command::DemoData { passengers, drivers, weeks, seed } => {
                let size = crate::demo::DemoSize { passengers, drivers, weeks, seed };
                demo_data(config, size).await
            }
            Command::Preview { week, format } => preview(config, &week, format).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("billing: {error:#}");
            if error.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A value given on the command line (or stdin) was refused; the message names the option.
/// Exits with code 2, like a configuration error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

async fn staff(config: Config, command: StaffCommand) -> anyhow::Result<()> {
    use anyhow::{bail, Context};

    use app::model::staff::Role;

    use crate::db::audit::Actor;

    let db = crate::db::Db::connect(&config.database).await.context("cannot open the database")?;
    if !db.migration_state().await?.is_current() {
        bail!("the database is not migrated: run `billing migrate` first");
    }
    let actor = Actor::cli();
    let result = match command {
        StaffCommand::Add { email, role } => {
            let role = Role::parse(&role).map_err(|m| usage(format!("--role: {m}")))?;
            let password = read_password()?;
            let staff = crate::staff::add(&db, &actor, &email, role, password).await.map_err(field_error)?;
            println!("added {} ({}), id {}", staff.email, staff.role, staff.id);
            Ok(())
        }
        StaffCommand::Token { email, name, days } => {
            crate::auth::token::check_days(days).map_err(|m| usage(format!("--days: {m}")))?;
            let name = crate::auth::token::parse_name(&name).map_err(|m| usage(format!("--name: {m}")))?;
            let email = app::model::staff::parse_email(&email).map_err(|m| usage(format!("--email: {m}")))?;
            let staff = db
                .staff_credentials(&email)
                .await?
                .map(|c| c.staff)
                .filter(|s| s.disabled_at.is_none())
                .ok_or_else(|| usage(format!("--email: no active staff account {email}")))?;
            let token = crate::auth::token::generate(crate::auth::token::STAFF_TOKEN_PREFIX);
            let expires = chrono::Utc::now() + chrono::Duration::days(i64::from(days));
            db.add_staff_token(&actor, staff.id, &name, &token.hash, &token.prefix, expires).await?;
            println!("{}", token.secret);
            eprintln!(
                "token for {} ({}), expires {}: shown once, keep it secret",
                staff.email,
                staff.role,
                expires.format("%Y-%m-%d")
            );
            Ok(())
        }
        StaffCommand::Demo => seed_demo_staff(&db, &actor).await,
    };
    db.close().await;
    result
}

/// One account per role with a random password, printed once; nothing when staff exist.
async fn seed_demo_staff(db: &crate::db::Db, actor: &crate::db::audit::Actor) -> anyhow::Result<()> {
    use app::model::staff::Role;
    if db.staff_count().await? > 0 {
        println!("staff accounts exist already: no demo accounts created");
        return Ok(());
    }
    println!("Demo sign-ins (shown once; they are stored only as hashes):");
    for role in [Role::Admin, Role::Finance, Role::Support] {
        let email = format!("{role}@demo.carpool.test");
        let password = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        crate::staff::add(db, actor, &email, role, password.clone()).await.map_err(field_error)?;
        println!("  {:<8} {email:<28} {password}", role.as_str());
    }
    Ok(())
}

/// The password for a new account: one line from stdin, asked for without echo on a terminal.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let line = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password (at least 12 characters): ")?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn field_error(error: app::api::AppError) -> anyhow::Error {
    match error {
        app::api::AppError::Invalid { field, message } => usage(format!("--{field}: {message}")),
        other => anyhow::anyhow!("{other}"),
    }
}

async fn open_migrated(config: &Config) -> anyhow::Result<crate::db::Db> {
    use anyhow::Context;
    let db = crate::db::Db::connect(&config.database).await.context("cannot open the database")?;
    if !db.migration_state().await?.is_current() {
        anyhow::bail!("the database is not migrated: run `billing migrate` first");
    }
    Ok(db)
}

async fn demo_data(config: Config, size: crate::demo::DemoSize) -> anyhow::Result<()> {
    if size.passengers == 0 || size.drivers == 0 {
        return Err(usage("--passengers and --drivers: at least 1"));
    }
    let db = open_migrated(&config).await?;
    let report = crate::demo::generate(&db, config.time_zone, size).await?;
    println!(
        "demo data: {} users added, {} rides added, {} already there",
        report.users_added, report.rides_added, report.rides_already_there
    );
    db.close().await;
    Ok(())
}

async fn preview(config: Config, week: &str, format: PreviewFormat) -> anyhow::Result<()> {
    use crate::preview::PreviewError;
    let week = app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?;
    let db = open_migrated(&config).await?;
    let (stored, plan) = match crate::preview::preview(&db, &config, week).await {
        Ok(found) => found,
        Err(e @ PreviewError::Future(_)) => return Err(usage(format!("--{e}"))),
        Err(e) => return Err(e.into()),
    };
    db.close().await;
    match format {
        PreviewFormat::Json => println!("{}", crate::preview::to_json(&stored, &plan)),
        PreviewFormat::Csv => {
            let mut out = csv::Writer::from_writer(std::io::stdout().lock());
            out.write_record(["invoice_id", "user_id", "lines", "late_lines", "total", "currency"])?;
            for i in &plan.invoices {
                out.write_record([
                    format!("{}/{}", plan.week, i.user_id),
                    i.user_id.clone(),
                    i.lines.len().to_string(),
                    i.lines.iter().filter(|l| l.late).count().to_string(),
                    i.total.to_string(),
                    config.currency.to_string(),
                ])?;
            }
            out.flush()?;
        }
        PreviewFormat::Table => {
            let t = &plan.totals;
            println!(
                "{} ({}), {}: {} invoices, charged {} {}, fees {}, payouts {}",
                plan.week,
                config.time_zone,
                stored.status.as_str(),
                t.invoices,
                t.charged,
                config.currency,
                t.fees,
                t.payouts
            );
            println!("content hash {}", stored.content_hash);
            for anomaly in &stored.anomalies {
                println!("anomaly: {}", anomaly.detail);
            }
            println!("{:<20} {:>6} {:>12}", "user", "lines", "total");
            for i in &plan.invoices {
                println!("{:<20} {:>6} {:>12}", i.user_id, i.lines.len(), i.total.to_string());
            }
        }
    }
    Ok(())
}

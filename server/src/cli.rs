//! The `billing` command line: one binary for the server, the jobs and the tools.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;
use app::model::run::{Control, Phase};

/// Exit code for a configuration or usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `billing run` when the run is paused, halted or aborted.
pub const EXIT_STOPPED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "billing",
    version,
    about = "Carpool Billing: charges passengers and pays drivers once a week, exactly once."
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
        /// Only the complete weeks, not the current week so far (what the benchmarks bill).
        #[arg(long)]
        complete_weeks_only: bool,
    },
    /// The week's invoices and payouts exactly as the run would charge and pay them.
    Preview {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        #[arg(long, value_enum, default_value_t = PreviewFormat::Table)]
        format: PreviewFormat,
    },
    /// Start, resume or join the week's billing run, and stay until it ends.
    ///
    /// The week must be approved (or pass --approve). Any number of `billing run` and `billing
    /// serve` processes may work one run at once. Exit 0 when the run completed; 3 when it is
    /// paused, halted by a guard or aborted; any other non-zero code is an error.
    Run {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// Approve the week's current preview first, as the operating-system user.
        #[arg(long)]
        approve: bool,
        /// Concurrent workers in this process (default: the run settings').
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
    },
    /// Finance's export of a week (or of weeks --week to --to): the invoices with what was
    /// charged and refunded of each, as CSV (RFC 4180) or XLSX (a summary sheet from the ledger
    /// and a detail sheet), to --output or, for CSV, to stdout.
    Export {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// The last week of a range (default: --week).
        #[arg(long, value_name = "YYYY-Www")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
        /// Where to write it; required for XLSX. `--out` is the same.
        #[arg(long, visible_alias = "out", value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Match the provider's charges, refunds and transfers of a week one to one with the ledger.
    ///
    /// Prints every item that does not match, with the user and the attempt. Exit 0 when
    /// everything matched, 3 when something did not (the result is kept for the dashboard,
    /// where finance reviews and approves the repair). Needs PSP_URL: the provider the runs used.
    Reconcile {
        /// An ISO week such as 2026-W48, in BILLING_TZ.
        #[arg(long, value_name = "YYYY-Www")]
        week: String,
        /// A line per item (table), or one JSON object: {"week","matched","unexplained",
        /// "missing","mismatched"}.
        #[arg(long, value_enum, default_value_t = ReconcileFormat::Table)]
        format: ReconcileFormat,
    },
    /// The kill switch: no new provider call is made by any worker within a second; calls in
    /// flight finish and are recorded.
    Pause(ControlArgs),
    /// Let a paused or halted run go on.
    Resume(ControlArgs),
    /// Stop a run for good: nothing more is charged or paid by it.
    Abort(ControlArgs),
    /// Apply every pending migration to DATABASE_URL, then exit.
    ///
    /// Creates the SQLite file (and its folder) if needed. Safe to run again, and from several
    /// processes at once.
    Migrate,
    /// The Stripe-shaped payment-provider simulator as its own process, until SIGTERM or Ctrl-C.
    ///
    /// Prints `psp-sim listening on http://HOST:PORT` once it accepts connections. State lives in
    /// memory; GET /sim/ledger lists every money movement it made. Faults are rolled with --seed.
    PspSim(PspSimArgs),
}

#[derive(Debug, clap::Args)]
struct ControlArgs {
    /// The week whose run to control, such as 2026-W48.
    #[arg(long, value_name = "YYYY-Www")]
    week: String,
    /// Why, for the run's events and the audit log.
    #[arg(long, default_value = "", value_name = "TEXT")]
    reason: String,
}

#[derive(Debug, clap::Args)]
struct PspSimArgs {
    /// Address to listen on; port 0 picks a free port (the address is printed).
    #[arg(long, default_value = "127.0.0.1:4242", value_name = "ADDR")]
    addr: SocketAddr,
    /// Milliseconds the simulator takes to handle each request.
    #[arg(long, default_value_t = 0, value_name = "N")]
    latency_ms: u64,
    /// Probability (0 to 1) that a payment, refund or transfer is made but its answer is held
    /// for --hang-ms, so the client times out.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    timeout_after_charge: f64,
    /// Probability that a POST fails before doing anything (500 api_error or 429 rate_limit_error).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    error_rate: f64,
    /// Probability that a POST which moved money is answered with something that does not say
    /// so: a 408, a 424, a proxy's HTML page, or a connection reset.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    ambiguous_rate: f64,
    /// Probability that a payment with a good card is declined anyway.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    decline_rate: f64,
    /// Seed of the fault rolls: the same seed and the same requests give the same faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Milliseconds an answer is held by --timeout-after-charge.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    hang_ms: u64,
    /// Model the platform's balance: a payment's funds become available to transfer this many
    /// seconds after it, and a transfer beyond the available balance is refused
    /// (`balance_insufficient`), as Stripe does. Without it, funds are there for any transfer.
    #[arg(long, value_name = "N")]
    funds_delay_seconds: Option<u64>,
    /// Send a signed event (as Stripe does) for every payment, refund and transfer to this URL.
    #[arg(long, value_name = "URL")]
    webhook_url: Option<String>,
    /// The signing secret of those events (whsec_…).
    #[arg(long, value_name = "SECRET")]
    webhook_secret: Option<String>,
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
    // The environment's part of `--help` comes from the list the configuration reads.
    let matches = Cli::command().after_long_help(crate::config::env_help()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
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
            Command::DemoData { passengers, drivers, weeks, seed, complete_weeks_only } => {
                let size = crate::demo::DemoSize {
                    passengers,
                    drivers,
                    weeks,
                    seed,
                    current_week: !complete_weeks_only,
                };
                demo_data(config, size).await
            }
            Command::Preview { week, format } => preview(config, &week, format).await,
            Command::PspSim(args) => psp_sim(args).await,
            Command::Run { week, approve, workers } => run(config, &week, approve, workers).await,
            Command::Export { week, to, format, output } => export(config, &week, to, format, output).await,
            Command::Reconcile { week, format } => reconcile(config, &week, format).await,
            Command::Pause(args) => control(config, args, "pause").await,
            Command::Resume(args) => control(config, args, "resume").await,
            Command::Abort(args) => control(config, args, "abort").await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("billing: {error:#}");
            if error.downcast_ref::<UsageError>().is_some()
                || error.downcast_ref::<crate::config::ConfigError>().is_some()
            {
                ExitCode::from(EXIT_USAGE)
            } else if error.downcast_ref::<RunStopped>().is_some() {
                ExitCode::from(EXIT_STOPPED)
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

/// The run did not complete: it is paused, halted or aborted. Exits with code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RunStopped(String);

async fn open_week(
    config: &Config,
    week: &str,
) -> anyhow::Result<(crate::db::Db, app::model::week::BillingWeek)> {
    let week = app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?;
    Ok((open_migrated(config).await?, week))
}

/// How long `billing run` spends sending the alerts it raised before it exits.
const ALERTS_BEFORE_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn run(config: Config, week: &str, approve: bool, workers: Option<usize>) -> anyhow::Result<()> {
    use crate::db::audit::Actor;
    use crate::db::runs::StartError;
    config.provider.require_target()?;
    let (db, week) = open_week(&config, week).await?;
    let actor = Actor::cli();
    if approve {
        let stored = crate::preview::refresh(&db, &config, week).await.map_err(|e| match e {
            e @ (crate::preview::PreviewError::Future(_) | crate::preview::PreviewError::NotEnded(_)) => {
                usage(format!("--week: {e}"))
            }
            other => other.into(),
        })?;
        match crate::preview::approve(&db, &config, &actor, week, &stored.content_hash).await {
            Ok(_) => eprintln!(
                "approved {week}: {} invoices, {} {}",
                stored.totals.invoices, stored.totals.charged, config.currency
            ),
            Err(e @ crate::preview::PreviewError::NotEnded(_)) => return Err(usage(format!("--week: {e}"))),
            Err(e) => return Err(e.into()),
        }
    }
    let mut settings = crate::run::load_settings(&db).await?;
    if let Some(workers) = workers {
        if !(1..=256).contains(&workers) {
            return Err(usage(format!("--workers: from 1 to 256, not {workers}")));
        }
        settings.workers = workers;
    }
    let run = match db.start_run(week, &actor.name, settings.canary_size).await {
        Ok(run) => run,
        Err(e @ StartError::NotApproved(_)) => return Err(usage(format!("--week: {e}"))),
        Err(e) => return Err(e.into()),
    };
    if run.phase == Phase::Completed {
        eprintln!("the run of {week} (id {}) completed before", run.id);
        if run.control == Control::Running {
            let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
            let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
            let tried = crate::run::retry_due(&db, &client, &settings, run).await?;
            if tried > 0 {
                eprintln!("tried {tried} declined invoice(s) or retried payout(s) again");
            }
        }
        return Ok(());
    }
    if run.control != Control::Running {
        let reason = run.reason.clone().unwrap_or_default();
        return Err(RunStopped(format!(
            "the run of {week} is {}: {reason}; `billing resume --week {week}` lets it go on",
            run.control
        ))
        .into());
    }
    eprintln!("working the run of {week} (id {}) with {} workers", run.id, settings.workers);
    let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
    let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
    let progress = tokio::spawn(report_progress(db.clone(), run.id, run.canary_size));
    let (run_id, canary) = (run.id, run.canary_size);
    // A run whose only work left waits a long while (for funds, for accounts) is left to `billing
    // serve` (or to this command run again): stopping between calls is safe.
    let finished = tokio::select! {
        finished = crate::run::work_run(&db, &client, &settings, run) => finished,
        waiting = waiting_long(&db, run_id, canary) => {
            progress.abort();
            for w in &waiting {
                eprintln!("{}", w.sentence());
            }
            db.close().await;
            return Err(RunStopped(format!(
                "the run of {week} waits; `billing serve` tries again at the time given, or run this command again then"
            ))
            .into());
        }
    };
    progress.abort();
    let finished = finished?;
    let counts = db.run_counts(finished.id, finished.canary_size).await?;
    eprintln!(
        "run {}: {} / {}; {} charged, {} declined, {} uncollectible, {} of {} drivers paid",
        finished.id,
        finished.phase,
        finished.control,
        counts.charged,
        counts.declined,
        counts.uncollectible,
        counts.paid,
        counts.transfers
    );
    crate::notify::deliver_alerts_before_exit(&db, &config, Some(client), ALERTS_BEFORE_EXIT).await;
    db.close().await;
    if finished.phase == Phase::Completed {
        Ok(())
    } else {
        let reason = finished.reason.unwrap_or_default();
        Err(RunStopped(format!("the run of {week} is {}: {reason}", finished.control)).into())
    }
}

/// How far ahead the next try must be for `billing run` to leave a waiting run.
const LEAVE_WAITING_AFTER: chrono::Duration = chrono::Duration::seconds(60);

/// Resolves once the run has nothing left to do but payouts that wait, the next of them more
/// than [`LEAVE_WAITING_AFTER`] away: with what they wait for.
async fn waiting_long(db: &crate::db::Db, run_id: i64, canary: i64) -> Vec<app::model::run::RunWaiting> {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (Ok(Some(run)), Ok(counts)) = (db.run(run_id).await, db.run_counts(run_id, canary).await) else {
            continue;
        };
        if run.phase != Phase::PayingOut || counts.pending > 0 || counts.transfers_pending == 0 {
            continue;
        }
        let (Ok(waiting), Ok(currency)) =
            (db.run_waiting(run_id).await, app::model::money::BillingCurrency::from_code(&run.currency))
        else {
            continue;
        };
        let waiting_payouts: i64 = waiting.iter().map(|w| w.payouts).sum();
        let soonest = waiting.iter().map(|w| w.next_at).min();
        if waiting_payouts == counts.transfers_pending
            && soonest.is_some_and(|at| at > chrono::Utc::now() + LEAVE_WAITING_AFTER)
        {
            return crate::run::view::waiting_of(waiting, currency);
        }
    }
}

/// The run's progress on stderr: a progress bar on a terminal (indicatif), a line every five
/// seconds otherwise (logs, CI).
async fn report_progress(db: crate::db::Db, run_id: i64, canary: i64) {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let bar = indicatif::ProgressBar::new(0);
    if terminal {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:28} [{bar:40.cyan/blue}] {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut tick = 0u64;
    let mut last_waiting: Vec<String> = Vec::new();
    loop {
        if let (Ok(Some(run)), Ok(c)) = (db.run(run_id).await, db.run_counts(run_id, canary).await) {
            bar.set_length((c.invoices + c.transfers) as u64);
            bar.set_position(((c.invoices - c.pending) + c.paid) as u64);
            bar.set_message(format!("{} {} ({} declined)", run.phase, run.control, c.declined));
            if !terminal && tick.is_multiple_of(10) {
                eprintln!(
                    "{} {}: charged {}/{} ({} declined, {} pending), paid {}/{}",
                    run.phase, run.control, c.charged, c.invoices, c.declined, c.pending, c.paid, c.transfers
                );
            }
            // What the payouts wait for, each time it changes.
            if let Ok(waiting) = db.run_waiting(run_id).await {
                let said: Vec<String> = waiting
                    .iter()
                    .map(|w| {
                        format!(
                            "{} payout(s) wait for {}: {}",
                            w.payouts,
                            w.waiting_for,
                            w.detail.as_deref().unwrap_or("")
                        )
                    })
                    .collect();
                if said != last_waiting {
                    for line in &said {
                        bar.suspend(|| eprintln!("{line}"));
                    }
                    last_waiting = said;
                }
            }
        }
        tick += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `billing pause|resume|abort --week W`: `action` is the kill switch's word for it.
async fn control(config: Config, args: ControlArgs, action: &str) -> anyhow::Result<()> {
    let (db, week) = open_week(&config, &args.week).await?;
    let run = db
        .run_of_week(&week.to_string())
        .await?
        .ok_or_else(|| usage(format!("--week: {week} has no run")))?;
    match crate::run::apply_control(&db, &crate::db::audit::Actor::cli(), run.id, action, &args.reason).await
    {
        Ok(run) => {
            println!("run {} of {week}: {}", run.id, run.control);
            Ok(())
        }
        Err(crate::error::Error::Conflict { message, .. }) => Err(usage(format!("--week: {message}"))),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

async fn psp_sim(args: PspSimArgs) -> anyhow::Result<()> {
    use crate::psp::sim::SimConfig;
    let config = SimConfig {
        latency_ms: args.latency_ms,
        timeout_after_charge: args.timeout_after_charge,
        error_rate: args.error_rate,
        ambiguous_rate: args.ambiguous_rate,
        decline_rate: args.decline_rate,
        seed: args.seed,
        hang_ms: args.hang_ms,
        // A misbehaving provider is for tests only: set it with PUT /sim/faults.
        overcharge_minor: 0,
        funds_delay_seconds: args.funds_delay_seconds,
        webhook_url: args.webhook_url,
        webhook_secret: args.webhook_secret,
    };
    config.validate().map_err(|e| usage(format!("{}: {}", e.option(), e.message)))?;
    crate::psp::sim::run(args.addr, config).await
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

fn field_error(error: crate::error::Error) -> anyhow::Error {
    match error {
        crate::error::Error::Invalid { field, message } => usage(format!("--{field}: {message}")),
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

/// The formats of `billing reconcile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ReconcileFormat {
    Table,
    Json,
}

/// A reconciliation as the contract's JSON: the items at the provider the ledger does not
/// explain, those of the ledger the provider does not have, and those whose amounts differ.
fn reconciliation_json(result: &app::model::reconcile::Reconciliation) -> serde_json::Value {
    use app::model::reconcile::MatchClass;
    let of = |class: MatchClass| -> Vec<&app::model::reconcile::ReconItem> {
        result.items.iter().filter(|i| i.class == class).collect()
    };
    serde_json::json!({
        "week": result.week,
        "matched": result.matched,
        "unexplained": of(MatchClass::ProviderOnly),
        "missing": of(MatchClass::LedgerOnly),
        "mismatched": of(MatchClass::AmountMismatch),
    })
}

async fn reconcile(config: Config, week: &str, format: ReconcileFormat) -> anyhow::Result<()> {
    let week =
        app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?.to_string();
    if !matches!(config.provider.require_target()?, crate::config::ProviderTarget::Url(_)) {
        return Err(usage(
            "PSP_URL: reconciliation needs the provider the runs used; this command's own in-process simulator has no records",
        ));
    }
    let db = open_migrated(&config).await?;
    let settings = crate::run::load_settings(&db).await?;
    let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
    let (client, _sim) = crate::run::provider::connect(&config, timeout).await?;
    let by = crate::db::audit::Actor::cli().name;
    let result = crate::reconcile::run(&db, &client, config.currency, &week, &by)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    db.close().await;
    if format == ReconcileFormat::Json {
        println!("{}", reconciliation_json(&result));
    } else {
        print_reconciliation(&result);
    }
    if result.unmatched > 0 {
        return Err(RunStopped(format!(
            "{} item(s) of {week} do not match; review the repair on /reconcile?week={week}",
            result.unmatched
        ))
        .into());
    }
    Ok(())
}

fn print_reconciliation(result: &app::model::reconcile::Reconciliation) {
    println!("{}: {} matched, {} not matched", result.week, result.matched, result.unmatched);
    for item in &result.items {
        let amount =
            |m: Option<app::model::money::Money>| m.map(|m| m.to_string()).unwrap_or_else(|| "-".into());
        println!(
            "  {} {} {}: provider {}, ledger {}; user {}, invoice {}, payout {}, attempt {}",
            item.kind,
            item.provider_id,
            item.class.label(),
            amount(item.provider_amount),
            amount(item.ledger_amount),
            item.user_id.as_deref().unwrap_or("-"),
            item.invoice_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            item.payout_id.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            item.attempt_key.as_deref().unwrap_or("-"),
        );
    }
}

/// The formats of `billing export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExportFormat {
    Csv,
    Xlsx,
}

async fn export(
    config: Config,
    week: &str,
    to: Option<String>,
    format: ExportFormat,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let to = to.unwrap_or_else(|| week.to_owned());
    let weeks = crate::reports::range(week, &to).map_err(|e| match e {
        crate::error::Error::Invalid { field, message } => {
            usage(format!("--{}: {message}", if field == "from" { "week" } else { "to" }))
        }
        other => anyhow::anyhow!(other.to_string()),
    })?;
    let (from, to) = (weeks[0].to_string(), weeks.last().expect("one week").to_string());
    let db = open_migrated(&config).await?;
    let mut entry = crate::db::audit::NewAuditEntry::new(
        &crate::db::audit::Actor::cli(),
        "report.export",
        "report",
        format!("{from}..{to}"),
    );
    entry.detail = Some(format!("{format:?}").to_lowercase());
    db.audit(&entry).await?;
    match format {
        ExportFormat::Csv => {
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::stdout().lock()),
            };
            crate::reports::write_csv(&db, (&from, &to), crate::reports::EXPORT_PAGE, &mut out).await?;
        }
        ExportFormat::Xlsx => {
            let path = output.ok_or_else(|| usage("--output: give the XLSX file to write"))?;
            let report = crate::reports::report(&db, config.currency, &from, &to)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            crate::reports::write_xlsx(&db, &report, crate::reports::EXPORT_PAGE, &path)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    db.close().await;
    Ok(())
}

async fn preview(config: Config, week: &str, format: PreviewFormat) -> anyhow::Result<()> {
    use crate::preview::PreviewError;
    use std::io::Write;
    let week = app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?;
    let db = open_migrated(&config).await?;
    let future = |e| match e {
        e @ PreviewError::Future(_) => usage(format!("--week: {e}")),
        e => e.into(),
    };
    let stored = match format {
        PreviewFormat::Json => {
            let (stored, plan) = crate::preview::preview(&db, &config, week).await.map_err(future)?;
            let mut body = crate::preview::to_json(&stored, &plan);
            body["payment_gaps"] = crate::preview::gaps_json(&db, &config, week).await?;
            db.close().await;
            println!("{body}");
            return Ok(());
        }
        // The table and the CSV list the invoices as stored, read as they are printed: a week
        // of a million invoices is never held in memory for them.
        PreviewFormat::Table | PreviewFormat::Csv => {
            crate::preview::refresh(&db, &config, week).await.map_err(future)?
        }
    };
    let currency = config.currency;
    let money = |minor| app::model::money::Money::from_minor(minor, currency).to_string();
    if let PreviewFormat::Csv = format {
        let mut out = csv::Writer::from_writer(std::io::stdout().lock());
        out.write_record(["invoice_id", "user_id", "lines", "late_lines", "total", "currency"])?;
        db.each_invoice_total(week, |user, lines, late, total| -> anyhow::Result<()> {
            let safe = crate::reports::spreadsheet_text(&user).into_owned();
            out.write_record([
                crate::reports::spreadsheet_text(&format!("{week}/{user}")).into_owned(),
                safe,
                lines.to_string(),
                late.to_string(),
                money(total),
                currency.to_string(),
            ])?;
            Ok(())
        })
        .await?;
        out.flush()?;
    } else {
        let t = &stored.totals;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        writeln!(
            out,
            "{} ({}), {}: {} invoices, charged {} {}, fees {}, payouts {}",
            week,
            config.time_zone,
            stored.status.as_str(),
            t.invoices,
            t.charged,
            currency,
            t.fees,
            t.payouts
        )?;
        writeln!(out, "content hash {}", stored.content_hash)?;
        for anomaly in &stored.anomalies {
            writeln!(out, "anomaly: {}", anomaly.detail)?;
        }
        let gaps = crate::preview::payment_gaps(&db, &config, week).await?;
        if gaps.no_payment_method > 0 {
            writeln!(
                out,
                "cannot be charged (no card at the provider; uncollectible in the run): {} passenger(s): {}",
                gaps.no_payment_method,
                gaps.passengers.join(" ")
            )?;
        }
        if gaps.no_payout_account > 0 {
            writeln!(
                out,
                "cannot be paid (no payout account; waits for one): {} driver(s): {}",
                gaps.no_payout_account,
                gaps.drivers.join(" ")
            )?;
        }
        writeln!(out, "{:<20} {:>6} {:>12}", "user", "lines", "total")?;
        db.each_invoice_total(week, |user, lines, _, total| -> anyhow::Result<()> {
            writeln!(out, "{:<20} {:>6} {:>12}", user, lines, money(total))?;
            Ok(())
        })
        .await?;
        out.flush()?;
    }
    db.close().await;
    Ok(())
}

//! `billing staff`: add an account, issue a personal access token, seed the demo accounts.

use clap::Subcommand;

use super::usage;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub(super) enum StaffCommand {
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

pub(super) async fn staff(config: Config, command: StaffCommand) -> anyhow::Result<()> {
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

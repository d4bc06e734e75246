//! Storage: every SQL statement of the product lives under this module.
//!
//! One code base serves SQLite and PostgreSQL. [`Db`] holds the pool of whichever the
//! configuration selected; queries are written once in the SQL both understand (numbered `$1`
//! parameters, `ON CONFLICT`, `RETURNING`) and run through [`with_pool!`], which type-checks the
//! same body against each driver. Where the dialects really differ (DDL, `FOR UPDATE SKIP LOCKED`,
//! catalog queries) the function matches on the variant and says why.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::{DatabaseKind, DatabaseUrl};
use app::model::system::DatabaseBackend;

pub mod alerts;
pub mod audit;
pub mod customers;
pub mod disputes;
pub mod fee_policies;
pub mod held;
pub mod migrations;
pub mod provider;
pub mod reconcile;
pub mod refunds;
pub mod reports;
pub mod rides;
pub mod runs;
pub mod settings;
pub mod staff;
pub mod tokens;
pub mod waivers;
pub mod weeks;
pub mod writes;

/// Runs `$body` with `$pool` bound to the concrete pool, for either backend. The body is
/// compiled once per driver, so a query that does not suit one of them fails to build.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// Now, to the microsecond both databases keep (so a stored time reads back equal).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6)
}

/// The statement that opens a transaction that writes: on SQLite it takes the write lock at
/// once, so no other writer commits between its reads and its writes. Every transaction opens
/// with it: one opened with a plain `BEGIN` that reads before it writes fails at once with
/// "database is locked" when another connection commits in between, whatever the busy timeout
/// (`clippy.toml` forbids `Pool::begin`).
pub fn begin_writing(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "BEGIN IMMEDIATE",
        Db::Postgres(_) => "BEGIN",
    }
}

/// What ends a SELECT that locks the rows it reads until the transaction ends: PostgreSQL's
/// `FOR UPDATE`; nothing on SQLite, whose `BEGIN IMMEDIATE` already made this the only writer.
pub(crate) fn for_update(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => " FOR UPDATE",
    }
}

/// Binds `values` as a comma-separated list and closes the `IN (` the query ends with.
pub(crate) fn push_in_list<'a, DB, T>(
    query: &mut sqlx::QueryBuilder<'a, DB>,
    values: impl IntoIterator<Item = T>,
) where
    DB: sqlx::Database,
    T: 'a + sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut values = values.into_iter().peekable();
    if values.peek().is_none() {
        // `IN ()` is SQLite's empty list and a syntax error on PostgreSQL; `IN (NULL)` matches
        // nothing on both.
        query.push("NULL)");
        return;
    }
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value);
    }
    query.push(")");
}

/// A stored time as the contract writes it: RFC 3339, milliseconds, `Z`.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A connection pool to the product's database.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// How long a statement waits for SQLite's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    /// Opens a pool. SQLite: creates the file (and its folder) if missing, write-ahead log,
    /// foreign keys enforced, a busy timeout, and `synchronous=FULL` so a committed transaction
    /// survives a power cut.
    pub async fn connect(url: &DatabaseUrl) -> Result<Db, sqlx::Error> {
        match url.kind() {
            DatabaseKind::Sqlite => {
                let options = SqliteConnectOptions::from_str(url.expose())?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                if let Some(folder) = options.get_filename().parent() {
                    if !folder.as_os_str().is_empty() {
                        std::fs::create_dir_all(folder)?;
                    }
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Db::Sqlite(pool))
            }
            DatabaseKind::Postgres => {
                let options = PgConnectOptions::from_str(url.expose())?.application_name("billing");
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?;
                Ok(Db::Postgres(pool))
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> DatabaseBackend {
        match self {
            Db::Sqlite(_) => DatabaseBackend::Sqlite,
            Db::Postgres(_) => DatabaseBackend::Postgres,
        }
    }

    /// Answers when the database can run a query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    /// After a bulk change (a stored preview, a run's rows, a completed run), PostgreSQL's
    /// statistics of `tables` are brought up to date at once rather than at autovacuum's next
    /// look: with the statistics of the empty tables, its planner chose nested loops that made
    /// the weekly report quadratic (two minutes at 100,000 invoices). SQLite's planner keeps no
    /// such statistics here; nothing to do.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(_) => Ok(()),
            Db::Postgres(pool) => {
                sqlx::query(&format!("ANALYZE {}", tables.join(", "))).execute(pool).await.map(|_| ())
            }
        }
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

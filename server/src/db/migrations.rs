//! Schema migrations: applying them and telling how far a database is from this build.

use sqlx::migrate::{Migrate, MigrateError, Migrator};

use super::Db;
use crate::with_pool;
use app::model::system::MigrationState;

/// SQLite's migrations, compiled into the binary.
pub static SQLITE: Migrator = sqlx::migrate!("../migrations/sqlite");
/// PostgreSQL's migrations, compiled into the binary.
pub static POSTGRES: Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// This backend's migrations.
    pub fn migrator(&self) -> &'static Migrator {
        match self {
            Db::Sqlite(_) => &SQLITE,
            Db::Postgres(_) => &POSTGRES,
        }
    }

    /// Applies every pending migration. Safe to run from several processes at once: sqlx
    /// takes an advisory lock on PostgreSQL; on SQLite (where sqlx's lock does nothing) an
    /// exclusive lock on a file beside the database serialises the migrators.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        let migrator = self.migrator();
        match self {
            Db::Sqlite(pool) => {
                let _lock = sqlite_migration_lock(pool).await?;
                migrator.run(pool).await
            }
            Db::Postgres(pool) => migrator.run(pool).await,
        }
    }

    /// Compares the migrations recorded in the database with the ones in this build.
    pub async fn migration_state(&self) -> Result<MigrationState, MigrateError> {
        // Asking must not change anything: look for sqlx's table before reading it.
        let exists_sql = match self {
            Db::Sqlite(_) => "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
            Db::Postgres(_) => "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
        };
        let applied = with_pool!(self, pool => {
            let exists: bool = sqlx::query_scalar(exists_sql).fetch_one(pool).await?;
            if exists {
                pool.acquire().await?.list_applied_migrations().await?
            } else {
                Vec::new()
            }
        });
        let known: Vec<_> = self.migrator().iter().filter(|m| m.migration_type.is_up_migration()).collect();

        let pending = known
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| format!("{} {}", m.version, m.description))
            .collect();
        let unexpected = applied
            .iter()
            .filter(|a| !known.iter().any(|m| m.version == a.version && m.checksum == a.checksum))
            .map(|a| format!("{} (not in this build, or changed since it was applied)", a.version))
            .collect();
        Ok(MigrationState {
            known: known.len() as u32,
            applied: applied.iter().filter(|a| known.iter().any(|m| m.version == a.version)).count() as u32,
            latest_version: applied.iter().map(|a| a.version).max(),
            pending,
            unexpected,
        })
    }
}

/// Takes an exclusive lock on `<database file>.migrate-lock`, held until the file is dropped.
/// An in-memory database has no file and needs no lock.
async fn sqlite_migration_lock(pool: &sqlx::SqlitePool) -> Result<Option<std::fs::File>, MigrateError> {
    let path = pool.connect_options().get_filename().to_path_buf();
    if path.as_os_str().is_empty() || path.to_string_lossy().starts_with(":memory:") {
        return Ok(None);
    }
    let mut lock_path = path.into_os_string();
    lock_path.push(".migrate-lock");
    let file = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| MigrateError::Source(Box::new(e)))?
    .map_err(|e| MigrateError::Source(Box::new(e)))?;
    Ok(Some(file))
}

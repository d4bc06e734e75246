//! Server-side sessions in the product's own database (`staff_sessions`, migration 0002),
//! through tower-sessions and its sqlx stores.

use async_trait::async_trait;
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::db::Db;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "billing_session";
/// A session unused this long ends.
pub const IDLE_TIMEOUT_MINUTES: i64 = 30;
/// A session ends this long after sign-in, however active.
pub const ABSOLUTE_TIMEOUT_HOURS: i64 = 12;
/// Activity is written back at most this often (each write extends the idle expiry).
pub const TOUCH_EVERY_SECONDS: i64 = 60;

/// Session keys.
pub const STAFF_ID: &str = "staff_id";
pub const LOGIN_AT: &str = "login_at";
pub const SEEN_AT: &str = "seen_at";

/// The session store of whichever database the product uses.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// The store over the product's `staff_sessions` table.
    pub fn new(db: &Db) -> Store {
        match db {
            Db::Sqlite(pool) => Store::Sqlite(
                SqliteStore::new(pool.clone()).with_table_name("staff_sessions").expect("a valid table name"),
            ),
            Db::Postgres(pool) => Store::Postgres(
                PostgresStore::new(pool.clone())
                    .with_schema_name("public")
                    .and_then(|s| s.with_table_name("staff_sessions"))
                    .expect("a valid table name"),
            ),
        }
    }

    /// The cookie-and-session layer: HttpOnly, SameSite=Lax, Secure when the public address is
    /// https, expiring after [`IDLE_TIMEOUT_MINUTES`] without activity.
    pub fn layer(self, secure: bool) -> SessionManagerLayer<Store> {
        SessionManagerLayer::new(self)
            .with_name(COOKIE_NAME)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_path("/")
            .with_expiry(Expiry::OnInactivity(CookieDuration::minutes(IDLE_TIMEOUT_MINUTES)))
    }
}

macro_rules! delegate {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call,
            Store::Postgres($store) => $call,
        }
    };
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        delegate!(self, s => s.create(record).await)
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        delegate!(self, s => s.save(record).await)
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        delegate!(self, s => s.load(id).await)
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        delegate!(self, s => s.delete(id).await)
    }
}

#[async_trait]
impl ExpiredDeletion for Store {
    async fn delete_expired(&self) -> session_store::Result<()> {
        delegate!(self, s => s.delete_expired().await)
    }
}

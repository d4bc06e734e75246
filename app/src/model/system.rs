//! What the server says about itself: version, database and clock.

use serde::{Deserialize, Serialize};

/// Which database a `billing` process is using.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

impl DatabaseBackend {
    /// The product's name for the backend, as shown to people.
    pub fn label(self) -> &'static str {
        match self {
            DatabaseBackend::Sqlite => "SQLite",
            DatabaseBackend::Postgres => "PostgreSQL",
        }
    }
}

/// How far the database's schema is from the one this build expects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationState {
    /// Migrations this build knows about.
    pub known: u32,
    /// Of those, the ones applied to the database.
    pub applied: u32,
    /// The newest applied migration's version, if any.
    pub latest_version: Option<i64>,
    /// Descriptions of the migrations still to apply, oldest first.
    pub pending: Vec<String>,
    /// Migrations recorded in the database that this build does not know (a newer build ran),
    /// or whose checksum differs from this build's copy.
    pub unexpected: Vec<String>,
}

impl MigrationState {
    /// True when the schema is exactly the one this build expects.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unexpected.is_empty()
    }
}

/// The overview page's facts about the running server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overview {
    /// The `billing` version (Cargo package version).
    pub version: String,
    pub backend: DatabaseBackend,
    pub migrations: MigrationState,
    /// The IANA zone billing weeks are cut in (`BILLING_TZ`).
    pub time_zone: String,
    /// The current time in that zone, RFC 3339 with its offset.
    pub local_time: String,
    /// The ISO 4217 code money is billed in (`BILLING_CURRENCY`).
    pub currency: String,
    /// Which payment provider this process bills through.
    pub provider: ProviderInfo,
}

/// The payment provider a process bills through, as staff and probes see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Its API's address, or "the simulator inside this process".
    pub endpoint: String,
    /// `test` or `live`, from the key.
    pub mode: String,
    /// The platform account the key belongs to (`GET /v1/account`): its id and name, or why it
    /// could not be read.
    pub account: String,
    /// Whether the run makes customers, cards and accounts for users who have none.
    pub provisioning: bool,
}

impl ProviderInfo {
    /// Whether real money moves.
    pub fn live(&self) -> bool {
        self.mode == "live"
    }
}

/// The words of the band every page carries outside live mode (a context the server provides
/// to the document): nobody mistakes a rehearsal for the real run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestModeBand(pub String);

//! Bearer secrets: generated here, shown once, stored only as a SHA-256.

use sha2::{Digest, Sha256};

/// The start of every staff personal access token, so leaked ones are easy to scan for.
pub const STAFF_TOKEN_PREFIX: &str = "cbpat_";

/// The start of every ride-ingestion API key.
pub const INGEST_KEY_PREFIX: &str = "cbkey_";

/// A fresh secret and what is stored of it.
pub struct NewToken {
    /// Shown once to its owner, never stored.
    pub secret: String,
    /// SHA-256 of the secret, hex.
    pub hash: String,
    /// The secret's first characters, to recognise it in a list.
    pub prefix: String,
}

/// A new secret with 244 random bits (two v4 UUIDs from the operating system's generator).
pub fn generate(prefix: &str) -> NewToken {
    let secret = format!("{prefix}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    NewToken { hash: hash(&secret), prefix: secret[..prefix.len() + 6].to_owned(), secret }
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

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

/// The longest a personal access token may live, in days.
pub const MAX_TOKEN_DAYS: u16 = 366;

/// A token's or key's label: trimmed, 1 to 100 characters.
pub fn parse_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err("must be 1 to 100 characters".into());
    }
    Ok(name.to_owned())
}

/// A token's lifetime: 1 to [`MAX_TOKEN_DAYS`] days.
pub fn check_days(days: u16) -> Result<(), String> {
    if (1..=MAX_TOKEN_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(format!("must be from 1 to {MAX_TOKEN_DAYS}"))
    }
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

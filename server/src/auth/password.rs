//! Password hashing with Argon2id (`password-auth`), off the async threads.

use std::sync::OnceLock;

/// The shortest password accepted for a staff account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest, so hashing cannot be used to tie up the server.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the rules; the error is a sentence for the person.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if password.trim() != password {
        return Err("must not start or end with spaces".into());
    }
    Ok(())
}

/// An Argon2id PHC string for `password`.
pub async fn hash(password: String) -> String {
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password))
        .await
        .expect("password hashing does not panic")
}

/// Whether `password` matches `stored`. With no stored hash (unknown account) it still spends
/// the time of a real check, so response times do not reveal which accounts exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password_auth::verify_password(password, &hash).is_ok(),
        None => {
            let _ = password_auth::verify_password(password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password_auth::generate_hash("not a real password, only spends the time"))
}

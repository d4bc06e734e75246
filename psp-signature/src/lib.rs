//! The provider's webhook signature (`Stripe-Signature`): HMAC-SHA256 of `timestamp.body`
//! with the endpoint's secret. The product checks it on every event it receives; the
//! simulator signs the events it sends.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from now, as Stripe's libraries allow.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Why a signature is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no t= timestamp or no v1= signature")]
    Malformed,
    #[error(
        "the signature's timestamp is {0} s from now, outside the {TOLERANCE_SECONDS} s window (a replay?)"
    )]
    OutsideWindow(i64),
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// The `v1` signature of `body` at `timestamp` with `secret`, as hex.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`) against `body` at `now`.
pub fn verify(header: Option<&str>, body: &[u8], secret: &str, now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signatures.extend(hex::decode(s).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::OutsideWindow(now - timestamp));
    }
    let matches = signatures.iter().any(|signature| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(signature).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_is_checked_against_the_body_the_secret_and_the_clock() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let good = format!("t={now},v1={}", sign(SECRET, now, body));
        assert_eq!(verify(Some(&good), body, SECRET, now + 10), Ok(()));
        // Several v1 signatures (a secret being rolled): one matching is enough.
        let rolled = format!("t={now},v1={},v1={}", "00".repeat(32), sign(SECRET, now, body));
        assert_eq!(verify(Some(&rolled), body, SECRET, now), Ok(()));
        assert_eq!(verify(None, body, SECRET, now), Err(SignatureError::Missing));
        assert_eq!(verify(Some("v1=abcd"), body, SECRET, now), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&format!("t={now}")), body, SECRET, now), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&good), br#"{"id":"evt_2"}"#, SECRET, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&good), body, "whsec_other", now), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&good), body, SECRET, now + 301), Err(SignatureError::OutsideWindow(301)));
        assert_eq!(verify(Some(&good), body, SECRET, now - 301), Err(SignatureError::OutsideWindow(-301)));
        // A signature made for another timestamp does not match this one.
        let moved = format!("t={},v1={}", now + 1, sign(SECRET, now, body));
        assert_eq!(verify(Some(&moved), body, SECRET, now), Err(SignatureError::Mismatch));
    }
}

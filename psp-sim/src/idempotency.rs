//! `Idempotency-Key`, as Stripe documents it.
//!
//! A key (scoped to the API key that sent it) remembers the first request made with it. While
//! that request runs, the key is in use (409). Once it has executed, its answer, success or
//! decline, is saved and replayed to every retry with the same endpoint and parameters, and a
//! retry with different ones is refused (400). A request refused before it executed (bad
//! parameters, an injected fault) saves nothing and frees the key, so a retry runs for real.
//!
//! This is what lets a client retry after a timeout without charging twice; sending no key at
//! all is how a duplicate charge happens. As Stripe does, a saved answer is forgotten
//! [`KEY_LIFETIME`] after it was saved (by the simulator's own clock, which tests move with
//! `POST /sim/clock`): the same key then runs again, for real.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::Value;

use super::error::StripeError;

/// How long a saved answer is replayed: Stripe forgets keys after 24 hours.
pub(crate) const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// Stripe's longest accepted idempotency key.
pub(crate) const MAX_KEY_CHARS: usize = 255;

/// A key is remembered per API key: two accounts may use the same key for different requests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub api_key: String,
    pub key: String,
}

/// What a request was: its endpoint, and a digest of its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    pub path: String,
    pub params: String,
}

/// The answer of an executed request, replayed as it was.
#[derive(Clone, Debug)]
pub(crate) struct Saved {
    pub status: StatusCode,
    pub body: Value,
    /// The `Request-Id` of the request that executed, sent back as `Original-Request`.
    pub request_id: String,
    /// When it was saved, by the simulator's clock.
    pub saved_at: chrono::DateTime<chrono::Utc>,
}

enum Entry {
    Running(Fingerprint),
    Done(Fingerprint, Saved),
}

/// What a request with a key may do.
pub(crate) enum Begin {
    /// The key is new (or was freed): it is now reserved for this request.
    Run,
    /// The same request executed before: answer what it answered.
    Replay(Saved),
    /// The key belongs to another request, or its request is still running.
    Refuse(StripeError),
}

/// Every key seen since the simulator started (or was reset).
#[derive(Default)]
pub(crate) struct Keys {
    entries: HashMap<Scope, Entry>,
}

impl Keys {
    /// Looks the key up at `now` and reserves it when it is free (new, or forgotten).
    pub fn begin(
        &mut self,
        scope: &Scope,
        fingerprint: &Fingerprint,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Begin {
        let forgotten = matches!(self.entries.get(scope), Some(Entry::Done(_, saved)) if now - saved.saved_at >= KEY_LIFETIME);
        let (first, saved) = match self.entries.get(scope) {
            None => {
                self.entries.insert(scope.clone(), Entry::Running(fingerprint.clone()));
                return Begin::Run;
            }
            Some(Entry::Done(..)) if forgotten => {
                self.entries.insert(scope.clone(), Entry::Running(fingerprint.clone()));
                return Begin::Run;
            }
            Some(Entry::Running(first)) => (first, None),
            Some(Entry::Done(first, saved)) => (first, Some(saved)),
        };
        let key = &scope.key;
        if first.path != fingerprint.path {
            return Begin::Refuse(StripeError::idempotency(
                StatusCode::BAD_REQUEST,
                format!(
                    "Keys for idempotent requests can only be used for the same endpoint they were first used for \
                     ('{}' vs '{}'). Try using a key other than '{key}' if you meant to execute a different request.",
                    first.path, fingerprint.path
                ),
            ));
        }
        if first.params != fingerprint.params {
            return Begin::Refuse(StripeError::idempotency(
                StatusCode::BAD_REQUEST,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used \
                     with. Try using a key other than '{key}' if you meant to execute a different request."
                ),
            ));
        }
        match saved {
            Some(saved) => Begin::Replay(saved.clone()),
            None => {
                let mut error = StripeError::idempotency(
                    StatusCode::CONFLICT,
                    format!(
                        "There is currently another in-progress request using this Idempotency-Key (that probably \
                         means you submitted twice, and the other is still going through): {key}. Please try again \
                         later."
                    ),
                )
                .with_code("idempotency_key_in_use");
                error.should_retry = true;
                Begin::Refuse(error)
            }
        }
    }

    /// Saves the answer of the request that reserved the key.
    pub fn save(&mut self, scope: &Scope, saved: Saved) {
        if let Some(entry) = self.entries.get_mut(scope) {
            if let Entry::Running(fingerprint) = entry {
                *entry = Entry::Done(fingerprint.clone(), saved);
            }
        }
    }

    /// Frees a reserved key whose request did not execute.
    pub fn release(&mut self, scope: &Scope) {
        if matches!(self.entries.get(scope), Some(Entry::Running(_))) {
            self.entries.remove(scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(key: &str) -> Scope {
        Scope { api_key: "sk_test_a".into(), key: key.into() }
    }

    fn print(path: &str, params: &str) -> Fingerprint {
        Fingerprint { path: path.into(), params: params.into() }
    }

    fn at(hours: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::UNIX_EPOCH + chrono::Duration::hours(hours)
    }

    fn saved() -> Saved {
        Saved {
            status: StatusCode::OK,
            body: serde_json::json!({"id": "pi_1"}),
            request_id: "req_1".into(),
            saved_at: at(0),
        }
    }

    #[test]
    fn a_key_runs_once_then_replays() {
        let mut keys = Keys::default();
        assert!(matches!(keys.begin(&scope("k"), &print("/v1/payment_intents", "a"), at(1)), Begin::Run));
        let Begin::Refuse(busy) = keys.begin(&scope("k"), &print("/v1/payment_intents", "a"), at(1)) else {
            panic!("in use while running")
        };
        assert_eq!((busy.status, busy.code), (StatusCode::CONFLICT, Some("idempotency_key_in_use")));
        keys.save(&scope("k"), saved());
        assert!(matches!(
            keys.begin(&scope("k"), &print("/v1/payment_intents", "a"), at(1)),
            Begin::Replay(_)
        ));
        let Begin::Refuse(other) = keys.begin(&scope("k"), &print("/v1/payment_intents", "b"), at(1)) else {
            panic!("other parameters")
        };
        assert_eq!((other.status, other.kind), (StatusCode::BAD_REQUEST, "idempotency_error"));
        assert!(matches!(keys.begin(&scope("k"), &print("/v1/refunds", "a"), at(1)), Begin::Refuse(_)));
    }

    #[test]
    fn keys_are_per_api_key_and_freed_when_nothing_ran() {
        let mut keys = Keys::default();
        let fingerprint = print("/v1/refunds", "a");
        assert!(matches!(keys.begin(&scope("k"), &fingerprint, at(1)), Begin::Run));
        let other_account = Scope { api_key: "sk_test_b".into(), key: "k".into() };
        assert!(matches!(keys.begin(&other_account, &print("/v1/refunds", "z"), at(1)), Begin::Run));
        keys.release(&scope("k"));
        assert!(matches!(keys.begin(&scope("k"), &print("/v1/refunds", "changed"), at(1)), Begin::Run));
        keys.save(&scope("k"), saved());
        keys.release(&scope("k"));
        assert!(
            matches!(keys.begin(&scope("k"), &print("/v1/refunds", "changed"), at(1)), Begin::Replay(_)),
            "saved stays"
        );
    }

    #[test]
    fn a_key_is_forgotten_after_24_hours() {
        let mut keys = Keys::default();
        let charge = print("/v1/payment_intents", "a");
        assert!(matches!(keys.begin(&scope("k"), &charge, at(0)), Begin::Run));
        keys.save(&scope("k"), saved());
        assert!(matches!(keys.begin(&scope("k"), &charge, at(23)), Begin::Replay(_)), "23 h: replayed");
        assert!(matches!(keys.begin(&scope("k"), &charge, at(24)), Begin::Run), "24 h: runs again");
        // Forgotten, the key takes other parameters too.
        keys.release(&scope("k"));
        assert!(matches!(keys.begin(&scope("k"), &print("/v1/payment_intents", "b"), at(24)), Begin::Run));
    }
}

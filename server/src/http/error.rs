//! Where a service error becomes an answer: the dashboard's `AppError` (and through it the JSON
//! API's `{"error","field"}` body). Internal errors are logged here, once, with a reference the
//! user can quote; nothing else is logged.

use app::api::AppError;

use crate::error::Error;

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unauthenticated => AppError::Unauthenticated,
            Error::Forbidden(message) => AppError::Forbidden(message),
            Error::Invalid { field, message } => AppError::Invalid { field, message },
            Error::Conflict { field, message } => AppError::Conflict { field, message },
            Error::NotFound(what) => AppError::NotFound(what),
            Error::Internal { context, source } => internal(&context, source),
        }
    }
}

/// Logs a failure while `context` with a new reference and answers it without its detail:
/// "`context` failed (reference …)".
pub fn internal(context: &str, error: impl std::fmt::Display) -> AppError {
    let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    tracing::error!(%reference, %error, "{context} failed");
    AppError::Internal(format!("{context} failed (reference {reference})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_is_answered_with_a_reference_and_without_its_detail() {
        let answer = AppError::from(Error::internal("reading the run", "password=hunter2 in a query"));
        let AppError::Internal(text) = answer else { panic!("{answer:?}") };
        assert!(text.starts_with("reading the run failed (reference "), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        let refused = AppError::from(Error::invalid("week", "not a week"));
        assert_eq!(refused, AppError::invalid("week", "not a week"));
    }
}

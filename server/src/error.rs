//! What an operation of the product can fail with, whoever asked for it.
//!
//! The domain modules (staff, customers, refunds, reports, reconciliation, alerts, the run's
//! controls) return [`Error`]; each edge turns it into its own answer in one place: the
//! dashboard's `AppError` and the JSON API's body in `http::error`, a usage message in the
//! CLI. An internal error carries its source and is logged once, at the edge, with a reference
//! the user can quote; the domain never logs what it returns.

/// A failed operation. Invalid values and conflicts name their field as data, never in text
/// to be parsed back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nobody is signed in.
    #[error("please sign in")]
    Unauthenticated,
    /// The caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A value was refused; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The request is valid but the state changed under it; `field` names what to look at again.
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// What was asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Something failed that the caller cannot mend: `context` says what was being done.
    #[error("{context} failed: {source}")]
    Internal { context: String, source: BoxError },
}

/// The source of an internal error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// A refused value: `field` names it.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Error::Invalid { field: field.to_owned(), message: message.into() }
    }

    /// A conflict with the current state: `field` names what to look at again.
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Error::Conflict { field: field.to_owned(), message: message.into() }
    }

    /// A failure while `context` (such as "refunding an invoice"), with what caused it.
    pub fn internal(context: &str, source: impl Into<BoxError>) -> Self {
        Error::Internal { context: context.to_owned(), source: source.into() }
    }

    /// The field an invalid value or a conflict is about.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. } | Error::Conflict { field, .. } => Some(field),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_keeps_its_source_and_context() {
        let error = Error::internal("reading the run", sqlx::Error::PoolTimedOut);
        assert!(matches!(&error, Error::Internal { context, .. } if context == "reading the run"));
        assert!(error.to_string().starts_with("reading the run failed: "), "{error}");
        assert_eq!(error.field(), None);
        assert_eq!(Error::invalid("week", "not a week").field(), Some("week"));
    }
}

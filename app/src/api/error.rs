//! The one error type server functions return to the browser.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a person can read. It never carries SQL, stack traces or internal detail: those are
/// logged on the server under the reference given here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Nobody is signed in.
    #[error("please sign in")]
    Unauthenticated,
    /// Signed in, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A value was rejected; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The request is valid but the state changed under it (someone else acted first, or what
    /// it refers to is out of date); `field` names what to look at again.
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Something failed on the server; the text is safe to show.
    #[error("{0}")]
    Internal(String),
    /// The request did not reach the server or its answer could not be read.
    #[error("request failed: {0}")]
    Transport(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Transport(value.to_string())
    }
}

impl AppError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated => 401,
            AppError::Forbidden(_) => 403,
            AppError::Invalid { .. } => 422,
            AppError::NotFound(_) => 404,
            AppError::Conflict { .. } => 409,
            AppError::Internal(_) => 500,
            AppError::Transport(_) => 502,
        }
    }

    /// A conflict with the current state: `field` names what to look at again.
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        AppError::Conflict { field: field.to_owned(), message: message.into() }
    }

    /// A rejected value: `field` names it.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid { field: field.to_owned(), message: message.into() }
    }
}

//! Server functions, one file per feature: each checks access, calls the backend, maps the
//! result. The backend itself lives in the `server` crate behind [`Backend`].

pub mod error;
pub mod overview;

pub use error::AppError;

#[cfg(feature = "ssr")]
mod backend;
#[cfg(feature = "ssr")]
pub use backend::{backend, Backend};

//! The HTTP side of `billing serve`: router, shared state, health, metrics.

pub mod api;
pub mod assets;
pub mod authenticate;
pub mod csp;
pub mod error;
pub mod health;
pub mod login;
pub mod metrics;
pub mod rides;
pub mod router;
pub mod security;
pub mod state;
pub mod webhooks;

pub use router::router;
pub use state::AppState;

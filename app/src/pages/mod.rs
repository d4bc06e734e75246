//! One file per routed screen.

pub mod not_found;
pub mod overview;

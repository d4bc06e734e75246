//! How figures and states are written on every page.

use crate::model::money::Money;

/// `12.30 USD`.
pub fn money(m: Money) -> String {
    format!("{m} {}", m.currency().code())
}

/// The badge class of a charge, transfer or refund state.
pub fn state_class(state: &str) -> &'static str {
    match state {
        "charged" | "paid" | "succeeded" => "badge badge-success",
        "declined" | "awaiting_approval" | "unknown" => "badge badge-warning",
        "uncollectible" | "failed" => "badge badge-danger",
        "pending" | "started" => "badge badge-info",
        _ => "badge",
    }
}

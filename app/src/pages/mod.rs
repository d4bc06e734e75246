//! One file per routed screen.

pub mod alerts;
pub mod audit;
pub mod customers;
pub mod disputes;
pub mod invoice;
pub mod login;
pub mod not_found;
pub mod overview;
pub mod pricing;
pub mod profile;
pub mod reconcile;
pub mod reports;
pub mod runs;
pub mod staff;
pub mod week;
pub mod week_waivers;

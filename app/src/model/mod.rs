//! Billing and system types shared by the server and the browser (serde on all of them).

pub mod alerts;
pub mod audit;
pub mod billing;
pub mod customer;
pub mod dispute;
pub mod money;
pub mod preview;
pub mod pricing;
pub mod reconcile;
pub mod refund;
pub mod report;
pub mod run;
pub mod staff;
pub mod system;
pub mod waiver;
pub mod week;

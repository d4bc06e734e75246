//! Billing and system types shared by the server and the browser (serde on all of them).

pub mod system;

//! The `billing` server: dashboard, JSON API and the weekly run, over SQLite or PostgreSQL.

pub mod alerts;
pub mod audit_writer;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod customers;
pub mod db;
pub mod demo;
pub mod http;
pub mod notify;
pub mod preview;
pub mod psp;
pub mod reconcile;
pub mod refunds;
pub mod reports;
pub mod run;
pub mod serve;
pub mod staff;
pub mod telemetry;

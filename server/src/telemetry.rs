//! The process around the work: logging (text for people, JSON for log collectors, filtered by
//! `RUST_LOG`) and the shutdown signal every server of the binary stops on.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Resolves on SIGTERM or Ctrl-C; the `shutdown-signal` crate, which the simulator stops on too.
pub use shutdown_signal::shutdown_signal;

/// Installs the process's log subscriber (once; later calls do nothing). Logs go to stderr so
/// that command output on stdout stays machine-readable.
pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

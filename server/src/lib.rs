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
pub mod disputes;
pub mod error;
pub mod fee_policies;
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
pub mod waivers;

/// The dependency arrow inside the server: the HTTP edge (`http/`, and `serve.rs` and `cli/`
/// that start things) may use everything; nothing else uses the HTTP edge or the dashboard's
/// error type. Storage and the domain return their own errors ([`error::Error`]), which the
/// edges turn into answers.
#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn only_the_edges_use_the_http_module_and_its_error_type() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() > 50, "the server's sources were found: {}", files.len());
        let edge = |path: &Path| {
            let relative = path.strip_prefix(&root).unwrap();
            ["http", "cli"].iter().any(|edge| relative.starts_with(edge))
                || ["serve.rs", "lib.rs"].iter().any(|edge| relative == Path::new(edge))
        };
        let mut crossing = Vec::new();
        for path in files.iter().filter(|p| !edge(p)) {
            let text = std::fs::read_to_string(path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if ["crate::http", "super::http", "crate::serve", "AppError"].iter().any(|t| code.contains(t))
                {
                    crossing.push(format!(
                        "{}:{}: {}",
                        path.strip_prefix(&root).unwrap().display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
        assert!(crossing.is_empty(), "outside the HTTP edge:\n{}", crossing.join("\n"));
    }
}

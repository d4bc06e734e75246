//! `billing serve` and `billing migrate`.

use std::net::SocketAddr;

use anyhow::Context;
use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;

use crate::auth::session::Store;
use crate::config::Config;
use crate::db::Db;
use crate::http::{metrics, router, AppState};

/// Applies pending migrations and reports what it did.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let db = Db::connect(&config.database).await.context("cannot open the database")?;
    let before = db.migration_state().await.context("cannot read the migration state")?;
    db.migrate().await.context("migration failed")?;
    let after = db.migration_state().await.context("cannot read the migration state")?;
    println!(
        "{}: {} migration(s) applied now, {} of {} in place",
        db.backend().label(),
        after.applied.saturating_sub(before.applied),
        after.applied,
        after.known
    );
    db.close().await;
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C, then lets requests in flight finish.
pub async fn serve(config: Config, addr: SocketAddr) -> anyhow::Result<()> {
    // Nothing is served without a provider named: a refund or a run would have nowhere to go.
    config.provider.require_target()?;
    let db = Db::connect(&config.database).await.context("cannot open the database")?;
    let migrations = db.migration_state().await.context("cannot read the migration state")?;
    if !migrations.is_current() {
        tracing::warn!(
            pending = migrations.pending.len(),
            unexpected = migrations.unexpected.len(),
            "the database schema is not this build's: run `billing migrate`; /readyz answers 503 until then"
        );
    }

    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // One provider for the runs and the refunds of this process (with the in-process simulator,
    // a refund must reach the simulator that made the charge).
    let settings = crate::run::load_settings(&db).await.unwrap_or_default();
    let timeout = std::time::Duration::from_secs(settings.provider_timeout_seconds);
    let (client, _in_process_sim) = crate::run::provider::connect(&config, timeout)
        .await
        .context("cannot set up the payment provider")?;
    let runs = tokio::spawn(crate::run::work_active_runs(db.clone(), client.clone()));
    let refunds = tokio::spawn(crate::refunds::work_forever(db.clone(), client.clone()));
    let schedule = tokio::spawn(crate::run::schedule::run_forever(db.clone(), config.clone()));
    let reports = config
        .report_dir
        .clone()
        .map(|dir| tokio::spawn(crate::reports::write_forever(db.clone(), config.currency, dir)));
    let notifier = crate::notify::Notifier::new(db.clone(), &config, Some(client.clone()))
        .context("cannot set up the delivery of alerts and notices")?;
    let deliveries = tokio::spawn(crate::notify::deliver_forever(std::sync::Arc::new(notifier)));
    let account = match client.account().await {
        Ok(account) => account,
        Err(e) => {
            tracing::warn!(error = %e, "the provider's account could not be read (GET /v1/account)");
            format!("unknown: {e}")
        }
    };
    tracing::info!(provider = %config.provider.describe(), mode = config.provider.mode.label(), %account, "billing through");
    let leptos = leptos_options(local, &config.site_root);
    let mut state = AppState::new(db.clone(), config, leptos);
    state.provider = Some(client);
    state.provider_account = Some(account.into());
    warn_if_assets_missing(&state.leptos);

    let background = [
        tokio::spawn(metrics::run_upkeep_forever(metrics::handle())),
        tokio::spawn(crate::auth::throttle::clean_forever(state.db.clone())),
        tokio::spawn(delete_expired_sessions(Store::new(&db))),
    ];

    let shutdown = crate::telemetry::shutdown_signal();
    println!("Carpool Billing is serving http://{local} ({})", db.backend().label());
    tracing::info!(%local, backend = db.backend().label(), "serving");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;

    background.iter().for_each(|task| task.abort());
    // Workers stop between provider calls: an attempt in flight is resolved by whoever works
    // the run next, with the same idempotency key.
    runs.abort();
    refunds.abort();
    schedule.abort();
    deliveries.abort();
    if let Some(reports) = reports {
        reports.abort();
    }
    db.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Leptos's settings, built here rather than read from Cargo.toml so the binary runs anywhere.
/// The output name is the bundle's content-named stem (`http::assets`), which the HTML's
/// scripts and stylesheet link point to.
fn leptos_options(addr: SocketAddr, site_root: &str) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(crate::http::assets::bundle_name(site_root))
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(Env::PROD)
        .build()
}

fn warn_if_assets_missing(options: &LeptosOptions) {
    let wasm = std::path::Path::new(options.site_root.as_ref())
        .join("pkg")
        .join(format!("{}.wasm", options.output_name));
    if !wasm.exists() {
        tracing::warn!(
            path = %wasm.display(),
            "the dashboard's WebAssembly is missing: pages render but stay static; build with `cargo leptos build`"
        );
    }
}

/// Removes expired sessions from the database every five minutes.
async fn delete_expired_sessions(store: Store) {
    use tower_sessions::session_store::ExpiredDeletion;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
    loop {
        tick.tick().await;
        if let Err(error) = store.delete_expired().await {
            tracing::warn!(%error, "could not delete expired sessions");
        }
    }
}

//! `billing demo-data`: deterministic synthetic riders, drivers and rides.

use super::{open_migrated, usage};
use crate::config::Config;

pub(super) async fn demo_data(config: Config, size: crate::demo::DemoSize) -> anyhow::Result<()> {
    if size.passengers == 0 || size.drivers == 0 {
        return Err(usage("--passengers and --drivers: at least 1"));
    }
    let db = open_migrated(&config).await?;
    let report = crate::demo::generate(&db, config.time_zone, size).await?;
    println!(
        "demo data: {} users added, {} rides added, {} already there",
        report.users_added, report.rides_added, report.rides_already_there
    );
    db.close().await;
    Ok(())
}

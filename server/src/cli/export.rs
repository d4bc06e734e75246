//! `billing export`: finance's export of a week or a range of weeks, as CSV or XLSX.

use super::{open_migrated, usage};
use crate::config::Config;

/// The formats of `billing export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ExportFormat {
    Csv,
    Xlsx,
}

pub(super) async fn export(
    config: Config,
    week: &str,
    to: Option<String>,
    format: ExportFormat,
    output: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let to = to.unwrap_or_else(|| week.to_owned());
    let weeks = crate::reports::range(week, &to).map_err(|e| match e {
        crate::error::Error::Invalid { field, message } => {
            usage(format!("--{}: {message}", if field == "from" { "week" } else { "to" }))
        }
        other => anyhow::anyhow!(other.to_string()),
    })?;
    let (from, to) = (weeks[0].to_string(), weeks.last().expect("one week").to_string());
    let db = open_migrated(&config).await?;
    let mut entry = crate::db::audit::NewAuditEntry::new(
        &crate::db::audit::Actor::cli(),
        "report.export",
        "report",
        format!("{from}..{to}"),
    );
    entry.detail = Some(format!("{format:?}").to_lowercase());
    db.audit(&entry).await?;
    match format {
        ExportFormat::Csv => {
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::stdout().lock()),
            };
            crate::reports::write_csv(&db, (&from, &to), crate::reports::EXPORT_PAGE, &mut out).await?;
        }
        ExportFormat::Xlsx => {
            let path = output.ok_or_else(|| usage("--output: give the XLSX file to write"))?;
            let report = crate::reports::report(&db, config.currency, &from, &to)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            crate::reports::write_xlsx(&db, &report, crate::reports::EXPORT_PAGE, &path)
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    db.close().await;
    Ok(())
}

//! `billing preview`: the week's invoices and payouts as the run would charge and pay them.

use super::{open_migrated, usage};
use crate::config::Config;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(super) enum PreviewFormat {
    Table,
    Json,
    Csv,
}

pub(super) async fn preview(config: Config, week: &str, format: PreviewFormat) -> anyhow::Result<()> {
    use crate::preview::PreviewError;
    use std::io::Write;
    let week = app::model::week::BillingWeek::parse(week).map_err(|m| usage(format!("--week: {m}")))?;
    let db = open_migrated(&config).await?;
    let future = |e| match e {
        e @ PreviewError::Future(_) => usage(format!("--week: {e}")),
        e => e.into(),
    };
    let stored = match format {
        // Written a page at a time as it is read: flat in memory whatever the week's size.
        PreviewFormat::Json => {
            let stored = crate::preview::refresh(&db, &config, week).await.map_err(future)?;
            let (chunks, mut written) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
            let print = async {
                let mut out = std::io::BufWriter::new(std::io::stdout());
                while let Some(chunk) = written.recv().await {
                    out.write_all(&chunk)?;
                }
                writeln!(out)?;
                out.flush()
            };
            let (made, printed) = tokio::join!(
                crate::preview::write_json(&db, &config, &stored, crate::preview::JSON_PAGE, chunks),
                print
            );
            db.close().await;
            made?;
            printed?;
            return Ok(());
        }
        // The table and the CSV list the invoices as stored, read as they are printed: a week
        // of a million invoices is never held in memory for them.
        PreviewFormat::Table | PreviewFormat::Csv => {
            crate::preview::refresh(&db, &config, week).await.map_err(future)?
        }
    };
    let currency = config.currency;
    let money = |minor| app::model::money::Money::from_minor(minor, currency).to_string();
    if let PreviewFormat::Csv = format {
        let mut out = csv::Writer::from_writer(std::io::stdout().lock());
        out.write_record(["invoice_id", "user_id", "lines", "late_lines", "total", "currency"])?;
        db.each_invoice_total(week, |user, lines, late, total| -> anyhow::Result<()> {
            let safe = crate::reports::spreadsheet_text(&user).into_owned();
            out.write_record([
                crate::reports::spreadsheet_text(&format!("{week}/{user}")).into_owned(),
                safe,
                lines.to_string(),
                late.to_string(),
                money(total),
                currency.to_string(),
            ])?;
            Ok(())
        })
        .await?;
        out.flush()?;
    } else {
        let t = &stored.totals;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        writeln!(
            out,
            "{} ({}), {}: {} invoices, charged {} {}, fees {}, payouts {}",
            week,
            config.time_zone,
            stored.status.as_str(),
            t.invoices,
            t.charged,
            currency,
            t.fees,
            t.payouts
        )?;
        writeln!(out, "content hash {}", stored.content_hash)?;
        for anomaly in &stored.anomalies {
            writeln!(out, "anomaly: {}", anomaly.detail)?;
        }
        let gaps = crate::preview::payment_gaps(&db, &config, week).await?;
        if gaps.no_payment_method > 0 {
            writeln!(
                out,
                "cannot be charged (no card at the provider; uncollectible in the run): {} passenger(s): {}",
                gaps.no_payment_method,
                gaps.passengers.join(" ")
            )?;
        }
        if gaps.no_payout_account > 0 {
            writeln!(
                out,
                "cannot be paid (no payout account; waits for one): {} driver(s): {}",
                gaps.no_payout_account,
                gaps.drivers.join(" ")
            )?;
        }
        writeln!(out, "{:<20} {:>6} {:>12}", "user", "lines", "total")?;
        db.each_invoice_total(week, |user, lines, _, total| -> anyhow::Result<()> {
            writeln!(out, "{:<20} {:>6} {:>12}", user, lines, money(total))?;
            Ok(())
        })
        .await?;
        out.flush()?;
    }
    db.close().await;
    Ok(())
}

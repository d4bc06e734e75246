//! Finance's reports and exports. Every figure of a report comes from the double-entry ledger
//! (transactions carry the billing week that caused them); exports list the invoices of the
//! weeks with what was charged and refunded of each.
//!
//! CSV (RFC 4180, one header row, amounts in major units with the currency's exact decimals and
//! an ISO 4217 column, timestamps RFC 3339 with their offset) is streamed page by page: it starts
//! at once and holds one page in memory. XLSX (a summary sheet and a detail sheet, amounts as
//! numbers with a currency format) is written by `rust_xlsxwriter` in its constant-memory mode.

use std::collections::BTreeMap;

use chrono::SecondsFormat;

use crate::db::reports::{ExportRow, LedgerSum};
use crate::db::Db;
use crate::error::Error;
use app::model::money::{BillingCurrency, Money};
use app::model::refund::RefundReason;
use app::model::report::{ReasonTotal, Report, ReportFigures, WeekBar};
use app::model::week::BillingWeek;

/// Invoices per page of an export.
pub const EXPORT_PAGE: i64 = 5_000;
/// The most weeks one report covers.
pub const MAX_WEEKS: usize = 104;

/// The CSV's columns.
pub const CSV_HEADER: [&str; 12] = [
    "invoice_id",
    "week",
    "user_id",
    "user_name",
    "currency",
    "total",
    "charged",
    "refunded",
    "net",
    "charge_state",
    "charged_at",
    "payment_intent",
];

/// The weeks `from` to `to`, checked: each a week, in order, at most [`MAX_WEEKS`].
pub fn range(from: &str, to: &str) -> Result<Vec<BillingWeek>, Error> {
    let first = BillingWeek::parse(from.trim()).map_err(|m| Error::invalid("from", m))?;
    let last = BillingWeek::parse(to.trim()).map_err(|m| Error::invalid("to", m))?;
    if last < first {
        return Err(Error::invalid("to", format!("{last} is before {first}")));
    }
    let mut weeks = vec![first];
    while *weeks.last().expect("one week") < last {
        if weeks.len() >= MAX_WEEKS {
            return Err(Error::invalid("to", format!("at most {MAX_WEEKS} weeks in one report")));
        }
        weeks.push(weeks.last().expect("one week").next());
    }
    Ok(weeks)
}

fn sum(sums: &[LedgerSum], kind: &str, class: &str) -> (i64, i64) {
    sums.iter()
        .filter(|(k, c, _, _)| (kind.is_empty() || k == kind) && c == class)
        .fold((0, 0), |(total, count), (_, _, s, n)| (total + s, count + n))
}

/// The figures of a set of ledger sums.
pub fn figures(sums: &[LedgerSum], currency: BillingCurrency) -> ReportFigures {
    let money = |minor: i64| Money::from_minor(minor, currency);
    let (invoiced, invoices) = sum(sums, "week.freeze", "passenger_receivable");
    let (charged, charges) = sum(sums, "charge", "provider_clearing");
    let (uncollectible, uncollectible_count) = sum(sums, "write_off", "bad_debt");
    let (refunded, refunds) = sum(sums, "refund", "refunds");
    let (fees, _) = sum(sums, "", "platform_fees");
    let (payouts, transfers) = sum(sums, "transfer", "driver_payable");
    let (receivable, _) = sum(sums, "", "passenger_receivable");
    let (payable, _) = sum(sums, "", "driver_payable");
    let (clearing, _) = sum(sums, "", "provider_clearing");
    let (disputed, disputes) = sum(sums, "dispute.withdrawal", "disputes");
    let (dispute_fees, _) = sum(sums, "dispute.withdrawal", "dispute_fees");
    let (won, won_count) = sum(sums, "dispute.won", "provider_clearing");
    let (lost, lost_count) = sum(sums, "dispute.lost", "dispute_losses");
    ReportFigures {
        invoices,
        invoiced: money(invoiced),
        charges,
        charged: money(charged),
        outstanding: money(receivable),
        uncollectible_count,
        uncollectible: money(uncollectible),
        no_payment_method_count: 0,
        refunds,
        refunded: money(refunded),
        net: money(charged - refunded),
        platform_fees: money(-fees),
        transfers,
        driver_payouts: money(payouts),
        payable: money(-payable),
        provider_clearing: money(clearing),
        provider_fees: None,
        disputes,
        disputed: money(disputed),
        dispute_fees: money(dispute_fees),
        disputes_won_count: won_count,
        disputes_won: money(won),
        disputes_lost_count: lost_count,
        disputes_lost: money(lost),
        disputes_by_status: Vec::new(),
    }
}

/// The report of weeks `from` to `to`, with the same number of weeks before it and the twelve
/// weeks ending with `to`.
pub async fn report(db: &Db, currency: BillingCurrency, from: &str, to: &str) -> Result<Report, Error> {
    let weeks = range(from, to)?;
    let (first, last) = (weeks[0], *weeks.last().expect("one week"));
    let failed = |e: sqlx::Error| Error::internal("computing a report", e);
    let code = currency.code();
    let sums = db.ledger_sums(&first.to_string(), &last.to_string(), code).await.map_err(failed)?;
    let mut previous_first = first;
    for _ in 0..weeks.len() {
        previous_first = previous_first.previous();
    }
    let previous_last = first.previous();
    let previous = db
        .ledger_sums(&previous_first.to_string(), &previous_last.to_string(), code)
        .await
        .map_err(failed)?;
    let reasons = db.refunds_by_reason(&first.to_string(), &last.to_string(), code).await.map_err(failed)?;
    let refunds_by_reason = reasons
        .into_iter()
        .map(|(reason, count, amount)| {
            Ok(ReasonTotal {
                reason: RefundReason::parse(&reason).map_err(|e| Error::internal("computing a report", e))?,
                count,
                amount: Money::from_minor(amount, currency),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut chart_first = last;
    for _ in 0..11 {
        chart_first = chart_first.previous();
    }
    let by_week =
        db.ledger_by_week(&chart_first.to_string(), &last.to_string(), code).await.map_err(failed)?;
    let mut bars: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut week = chart_first;
    loop {
        bars.insert(week.to_string(), (0, 0));
        if week == last {
            break;
        }
        week = week.next();
    }
    for (week, kind, amount) in by_week {
        if let Some(bar) = bars.get_mut(&week) {
            if kind == "charge" {
                bar.0 += amount;
            } else {
                bar.1 += amount;
            }
        }
    }
    let no_card = |from: BillingWeek, to: BillingWeek| async move {
        db.no_payment_method_count(&from.to_string(), &to.to_string()).await.map_err(failed)
    };
    let statuses = |from: BillingWeek, to: BillingWeek| async move {
        db.disputes_by_status(&from.to_string(), &to.to_string(), code).await.map_err(failed)
    };
    let mut figures_now = figures(&sums, currency);
    figures_now.no_payment_method_count = no_card(first, last).await?;
    figures_now.disputes_by_status = statuses(first, last).await?;
    let mut figures_before = figures(&previous, currency);
    figures_before.no_payment_method_count = no_card(previous_first, previous_last).await?;
    figures_before.disputes_by_status = statuses(previous_first, previous_last).await?;
    Ok(Report {
        from: first.to_string(),
        to: last.to_string(),
        currency: code.to_owned(),
        figures: figures_now,
        previous_from: previous_first.to_string(),
        previous_to: previous_last.to_string(),
        previous: figures_before,
        refunds_by_reason,
        history: bars
            .into_iter()
            .map(|(week, (charged, refunded))| WeekBar {
                week,
                charged: Money::from_minor(charged, currency),
                refunded: Money::from_minor(refunded, currency),
            })
            .collect(),
    })
}

/// An export row's amounts: (total, charged, refunded, net) in minor units.
fn amounts(row: &ExportRow) -> (i64, i64, i64, i64) {
    let charged = if row.charge_state.as_deref() == Some("charged") { row.total_minor } else { 0 };
    (row.total_minor, charged, row.refunded_minor, charged - row.refunded_minor)
}

/// A text cell as it may go into a CSV file that finance opens in a spreadsheet: one that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a formula, so it
/// is written with a leading `'` (OWASP's advice on CSV injection). Money columns are numbers
/// written by the product and never go through here.
pub fn spreadsheet_text(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// The CSV text of `rows` (no header), RFC 4180; text cells made safe for spreadsheets.
pub fn csv_rows(rows: &[ExportRow], header: bool) -> Result<Vec<u8>, Error> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let failed = |e: csv::Error| Error::internal("writing CSV", e);
    if header {
        writer.write_record(CSV_HEADER).map_err(failed)?;
    }
    for row in rows {
        let currency =
            BillingCurrency::from_code(&row.currency).map_err(|e| Error::internal("writing CSV", e))?;
        let money = |minor: i64| Money::from_minor(minor, currency).to_string();
        let (total, charged, refunded, net) = amounts(row);
        let charged_at =
            row.charged_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, false)).unwrap_or_default();
        let (id, total, charged, refunded, net) =
            (row.invoice_id.to_string(), money(total), money(charged), money(refunded), money(net));
        let (user_id, user_name) = (spreadsheet_text(&row.user_id), spreadsheet_text(&row.user_name));
        let payment_intent = spreadsheet_text(row.payment_intent.as_deref().unwrap_or_default());
        let fields: [&str; 12] = [
            &id,
            &row.week,
            &user_id,
            &user_name,
            &row.currency,
            &total,
            &charged,
            &refunded,
            &net,
            row.charge_state.as_deref().unwrap_or("not_run"),
            &charged_at,
            &payment_intent,
        ];
        writer.write_record(fields).map_err(failed)?;
    }
    writer.into_inner().map_err(|e| Error::internal("writing CSV", e.to_string()))
}

/// Pages of an export read ahead of the writer, so that the database reads the next page while
/// the one before is written out (on two cores, side by side rather than one after the other).
/// At most [`PAGES_AHEAD`] pages wait; the reader stops when the stream is dropped.
fn export_pages(
    db: Db,
    from: String,
    to: String,
    page_size: i64,
) -> impl futures::Stream<Item = Result<Vec<ExportRow>, sqlx::Error>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    tokio::spawn(async move {
        let mut after = (from, 0i64);
        loop {
            let page = db.export_page(&to, (&after.0, after.1), page_size).await;
            let next = page.as_ref().ok().and_then(|rows| next_page(rows, page_size));
            let last = next.is_none();
            if sender.send(page).await.is_err() || last {
                return;
            }
            after = next.expect("a next page");
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|page| (page, receiver))
    })
}

/// Pages read ahead of an export's writer.
const PAGES_AHEAD: usize = 2;

/// The CSV of weeks `from` to `to` as a stream of chunks: the header at once, then one chunk per
/// page of `page_size` invoices ([`EXPORT_PAGE`] but in tests).
pub fn csv_stream(
    db: Db,
    from: String,
    to: String,
    page_size: i64,
) -> impl futures::Stream<Item = Result<bytes::Bytes, Error>> + Send + 'static {
    use futures::StreamExt;
    let header = futures::stream::once(async { csv_rows(&[], true).map(bytes::Bytes::from) });
    let pages = export_pages(db, from, to, page_size)
        .take_while(|page| std::future::ready(!matches!(page, Ok(rows) if rows.is_empty())))
        .map(|page| match page {
            Ok(rows) => csv_rows(&rows, false).map(bytes::Bytes::from),
            Err(e) => Err(Error::internal("exporting invoices", e)),
        });
    header.chain(pages)
}

/// Where the page after `rows` starts: after its last (week, invoice), unless it was the last.
fn next_page(rows: &[ExportRow], page_size: i64) -> Option<(String, i64)> {
    let last = rows.last().filter(|_| rows.len() as i64 == page_size)?;
    Some((last.week.clone(), last.invoice_id))
}

/// Writes the CSV of weeks `from` to `to` to `out`, in pages of `page_size` invoices, and
/// flushes it.
pub async fn write_csv<W: std::io::Write + ?Sized>(
    db: &Db,
    (from, to): (&str, &str),
    page_size: i64,
    out: &mut W,
) -> anyhow::Result<()> {
    use futures::StreamExt;
    let mut stream = std::pin::pin!(csv_stream(db.clone(), from.to_owned(), to.to_owned(), page_size));
    while let Some(chunk) = stream.next().await {
        out.write_all(&chunk.map_err(|e| anyhow::anyhow!(e.to_string()))?)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes the XLSX of `report` (summary sheet) and the invoices of its weeks (detail sheet, read
/// in pages of `page_size`) to `path`, in constant memory.
pub async fn write_xlsx(
    db: &Db,
    report: &Report,
    page_size: i64,
    path: &std::path::Path,
) -> Result<(), Error> {
    use rust_xlsxwriter::{Format, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| Error::internal("writing XLSX", e);
    let currency =
        BillingCurrency::from_code(&report.currency).map_err(|e| Error::internal("writing XLSX", e))?;
    let decimals = currency.exponent() as usize;
    let number = if decimals == 0 { "#,##0".to_owned() } else { format!("#,##0.{}", "0".repeat(decimals)) };
    let money_format = Format::new().set_num_format(format!("{number} \"{}\"", currency.code()));
    let bold = Format::new().set_bold();
    let amount = |m: Money| -> f64 {
        // The cell holds a number (XLSX has only doubles); the text of the exact amount is
        // what is parsed, so nothing is computed in floating point.
        m.to_string().parse::<f64>().unwrap_or_default()
    };
    let mut workbook = Workbook::new();
    // Compressing the XML was a quarter of a 1M export's CPU at the default level 6 (`perf`);
    // level 3 is what Excel uses and what rust_xlsxwriter's performance notes suggest, for a file
    // a few per cent larger.
    workbook.set_zip_compression_level(3);
    let summary = workbook.add_worksheet().set_name("Summary").map_err(failed)?;
    summary.write_with_format(0, 0, "Carpool Billing report", &bold).map_err(failed)?;
    summary.write(1, 0, "Weeks").map_err(failed)?;
    summary.write(1, 1, format!("{} to {}", report.from, report.to)).map_err(failed)?;
    summary.write(2, 0, "Currency").map_err(failed)?;
    summary.write(2, 1, report.currency.as_str()).map_err(failed)?;
    summary.write_with_format(4, 0, "Figure", &bold).map_err(failed)?;
    summary.write_with_format(4, 1, "This period", &bold).map_err(failed)?;
    summary.write_with_format(4, 2, "Previous period", &bold).map_err(failed)?;
    let (f, p) = (&report.figures, &report.previous);
    let rows: [(&str, Money, Money); 10] = [
        ("Invoiced", f.invoiced, p.invoiced),
        ("Charged", f.charged, p.charged),
        ("Outstanding (declined)", f.outstanding, p.outstanding),
        ("Uncollectible", f.uncollectible, p.uncollectible),
        ("Refunded", f.refunded, p.refunded),
        ("Net", f.net, p.net),
        ("Platform fees", f.platform_fees, p.platform_fees),
        ("Driver payouts", f.driver_payouts, p.driver_payouts),
        ("Owed to drivers", f.payable, p.payable),
        ("Held at the provider", f.provider_clearing, p.provider_clearing),
    ];
    for (i, (label, now, before)) in rows.iter().enumerate() {
        let r = 5 + i as u32;
        summary.write(r, 0, *label).map_err(failed)?;
        summary.write_number_with_format(r, 1, amount(*now), &money_format).map_err(failed)?;
        summary.write_number_with_format(r, 2, amount(*before), &money_format).map_err(failed)?;
    }
    let counts: [(&str, i64, i64); 5] = [
        ("Invoices", f.invoices, p.invoices),
        ("Charges", f.charges, p.charges),
        ("Refunds", f.refunds, p.refunds),
        ("Uncollectible invoices", f.uncollectible_count, p.uncollectible_count),
        ("Transfers", f.transfers, p.transfers),
    ];
    for (i, (label, now, before)) in counts.iter().enumerate() {
        let r = 16 + i as u32;
        summary.write(r, 0, *label).map_err(failed)?;
        summary.write_number(r, 1, *now as f64).map_err(failed)?;
        summary.write_number(r, 2, *before as f64).map_err(failed)?;
    }
    // Disputes in a block of their own below, so that every cell above stays where it was.
    let still_open = |f: &ReportFigures| -> i64 {
        f.disputes_by_status
            .iter()
            .filter(|(status, _)| app::model::dispute::is_open(status))
            .map(|(_, n)| n)
            .sum()
    };
    let dispute_rows: [(&str, Money, Money); 4] = [
        ("Disputed", f.disputed, p.disputed),
        ("Dispute fees", f.dispute_fees, p.dispute_fees),
        ("Reinstated (disputes won)", f.disputes_won, p.disputes_won),
        ("Lost in disputes", f.disputes_lost, p.disputes_lost),
    ];
    let dispute_start = 16 + counts.len() as u32 + 1;
    for (i, (label, now, before)) in dispute_rows.iter().enumerate() {
        let r = dispute_start + i as u32;
        summary.write(r, 0, *label).map_err(failed)?;
        summary.write_number_with_format(r, 1, amount(*now), &money_format).map_err(failed)?;
        summary.write_number_with_format(r, 2, amount(*before), &money_format).map_err(failed)?;
    }
    let dispute_counts: [(&str, i64, i64); 4] = [
        ("Disputes", f.disputes, p.disputes),
        ("Disputes won", f.disputes_won_count, p.disputes_won_count),
        ("Disputes lost", f.disputes_lost_count, p.disputes_lost_count),
        ("Disputes still open", still_open(f), still_open(p)),
    ];
    for (i, (label, now, before)) in dispute_counts.iter().enumerate() {
        let r = dispute_start + dispute_rows.len() as u32 + 1 + i as u32;
        summary.write(r, 0, *label).map_err(failed)?;
        summary.write_number(r, 1, *now as f64).map_err(failed)?;
        summary.write_number(r, 2, *before as f64).map_err(failed)?;
    }
    summary.set_column_width(0, 26).map_err(failed)?;
    summary.set_column_width(1, 18).map_err(failed)?;
    summary.set_column_width(2, 18).map_err(failed)?;

    let detail = workbook
        .add_worksheet_with_constant_memory()
        .map_err(failed)?
        .set_name("Invoices")
        .map_err(failed)?;
    for (c, name) in CSV_HEADER.iter().enumerate() {
        detail.write_with_format(0, c as u16, *name, &bold).map_err(failed)?;
    }
    let mut row_number = 1u32;
    let mut pages =
        std::pin::pin!(export_pages(db.clone(), report.from.clone(), report.to.clone(), page_size));
    while let Some(rows) = futures::StreamExt::next(&mut pages).await {
        let rows = rows.map_err(|e| Error::internal("exporting invoices", e))?;
        for row in &rows {
            let (total, charged, refunded, net) = amounts(row);
            let m = |minor: i64| amount(Money::from_minor(minor, currency));
            let r = row_number;
            detail.write_number(r, 0, row.invoice_id as f64).map_err(failed)?;
            detail.write(r, 1, row.week.as_str()).map_err(failed)?;
            detail.write(r, 2, row.user_id.as_str()).map_err(failed)?;
            detail.write(r, 3, row.user_name.as_str()).map_err(failed)?;
            detail.write(r, 4, row.currency.as_str()).map_err(failed)?;
            for (c, value) in [(5u16, total), (6, charged), (7, refunded), (8, net)] {
                detail.write_number_with_format(r, c, m(value), &money_format).map_err(failed)?;
            }
            detail.write(r, 9, row.charge_state.as_deref().unwrap_or("not_run")).map_err(failed)?;
            if let Some(at) = row.charged_at {
                detail.write(r, 10, at.to_rfc3339_opts(SecondsFormat::Millis, false)).map_err(failed)?;
            }
            detail.write(r, 11, row.payment_intent.as_deref().unwrap_or_default()).map_err(failed)?;
            row_number += 1;
        }
    }
    workbook.save(path).map_err(failed)?;
    Ok(())
}

/// Writes the report files (CSV and XLSX) of every completed run's week that `dir` does not
/// have yet; each file is written beside its final name and renamed into place, so a reader never
/// sees half a file and two processes writing at once leave one whole file. Returns the files
/// written.
pub async fn write_completed(
    db: &Db,
    currency: BillingCurrency,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for week in db.completed_weeks(52).await? {
        let csv = dir.join(format!("carpool-billing-{week}.csv"));
        let xlsx = dir.join(format!("carpool-billing-{week}.xlsx"));
        if !csv.exists() {
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            write_csv(db, (&week, &week), EXPORT_PAGE, &mut file).await?;
            file.persist(&csv)?;
            written.push(csv);
        }
        if !xlsx.exists() {
            let report =
                report(db, currency, &week, &week).await.map_err(|e| anyhow::anyhow!(e.to_string()))?;
            let file = tempfile::NamedTempFile::new_in(dir)?;
            write_xlsx(db, &report, EXPORT_PAGE, file.path())
                .await
                .map_err(|e| anyhow::anyhow!(e.to_string()))?;
            file.persist(&xlsx)?;
            written.push(xlsx);
        }
    }
    Ok(written)
}

/// The scheduled weekly report of `billing serve`: every few seconds, the files of weeks whose
/// run completed since.
pub async fn write_forever(db: Db, currency: BillingCurrency, dir: std::path::PathBuf) {
    loop {
        match write_completed(&db, currency, &dir).await {
            Ok(files) => {
                files.iter().for_each(|f| tracing::info!(file = %f.display(), "wrote a weekly report"))
            }
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "writing the weekly reports failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_text;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_quoted() {
        for (text, cell) in [
            ("=HYPERLINK(\"https://evil.example\")", "'=HYPERLINK(\"https://evil.example\")"),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tTabbed", "'\tTabbed"),
            ("\rReturn", "'\rReturn"),
            ("Ana", "Ana"),
            ("p12", "p12"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(spreadsheet_text(text), cell, "{text:?}");
        }
    }
}

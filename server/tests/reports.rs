//! Finance's report and exports, on each database, after a run against `billing psp-sim` with
//! declines and a refund: the report's figures equal the ledger's balances and the provider's
//! own records; the CSV export parses back to the same figures (RFC 4180, exact decimals, ISO
//! 4217, RFC 3339); the XLSX opens with a real reader (calamine) and holds the same figures; the
//! CLI writes the same CSV; bad requests are refused by name.

mod support;

use std::collections::BTreeMap;
use std::io::Cursor;

use app::model::staff::Role;
use calamine::Reader;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{charged_week_with, email_of, last_week, rows, Charged, PspSim, TestDb};

/// Major-unit text to minor units, refusing anything but exactly two decimals (USD).
fn minor(text: &str) -> i64 {
    let (units, cents) = text.split_once('.').unwrap_or_else(|| panic!("{text:?} has no decimals"));
    assert_eq!(cents.len(), 2, "{text:?} has the currency's two decimals");
    let sign = if units.starts_with('-') { -1 } else { 1 };
    units.parse::<i64>().unwrap() * 100 + sign * cents.parse::<i64>().unwrap()
}

fn amount(v: &Value) -> i64 {
    assert_eq!(v["currency"], "USD");
    minor(v["amount"].as_str().unwrap())
}

on_both_databases! {
    async fn the_report_equals_the_ledger_and_the_provider_and_the_exports_say_the_same(kind: Kind) {
        let reports = tempfile::tempdir().unwrap();
        let dir = reports.path().join("weekly");
        let Charged { app, sim } = charged_week_with(kind, &["--decline-rate", "0.4", "--seed", "3"], &[("REPORT_DIR", dir.to_str().unwrap())]).await;
        let week = last_week();
        let http = reqwest::Client::new();
        let finance = app.token_for(&email_of(Role::Finance)).await;
        // A refund, so that the report has one.
        let charged: Vec<(i64, i64)> = rows(&app.db, "SELECT invoice_id, amount_minor FROM charges WHERE state = 'charged' ORDER BY invoice_id").await;
        let (invoice, _) = charged[0];
        let refund = http
            .post(app.url(&format!("/api/v1/invoices/{invoice}/refunds")))
            .bearer_auth(&finance)
            .json(&json!({ "amount": "1.25", "reason": "service_issue", "request_id": "report-refund" }))
            .send()
            .await
            .unwrap();
        assert_eq!(refund.status(), StatusCode::CREATED);

        let response = http.get(app.url(&format!("/api/v1/reports/{week}"))).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let report: Value = response.json().await.unwrap();
        let f = &report["figures"];

        // The provider's own records of the week.
        let ledger = sim.ledger().await;
        let provider = |kind: &str| -> (usize, i64) {
            let of: Vec<&Value> = ledger.iter().filter(|e| e["kind"] == kind && e["metadata"]["week"].as_str().is_none_or(|w| w == week)).collect();
            (of.len(), of.iter().map(|e| e["amount"].as_i64().unwrap()).sum())
        };
        let (charges, charged_sum) = provider("charge");
        let (refunds, refunded_sum) = provider("refund");
        let (transfers, transferred) = provider("transfer");
        assert_eq!((f["charges"].as_i64().unwrap() as usize, amount(&f["charged"])), (charges, charged_sum), "charged = the provider's charges");
        assert_eq!((f["refunds"].as_i64().unwrap() as usize, amount(&f["refunded"])), (refunds, refunded_sum), "refunded = the provider's refunds");
        assert_eq!(amount(&f["refunded"]), 125);
        assert_eq!((f["transfers"].as_i64().unwrap() as usize, amount(&f["driver_payouts"])), (transfers, transferred));

        // The ledger's balances for the same week, account by account.
        let balances: Vec<(String, i64)> = rows(
            &app.db,
            &format!(
                "SELECT p.account, CAST(SUM(p.amount_minor) AS BIGINT) FROM ledger_postings p \
                 JOIN ledger_transactions t ON t.id = p.transaction_id WHERE t.week = '{week}' GROUP BY p.account"
            ),
        )
        .await;
        let mut by_class: BTreeMap<String, i64> = BTreeMap::new();
        for (account, sum) in balances {
            *by_class.entry(account.split(':').next().unwrap().to_owned()).or_default() += sum;
        }
        assert_eq!(amount(&f["outstanding"]), by_class["passenger_receivable"], "owed by passengers");
        assert_eq!(-amount(&f["platform_fees"]), by_class["platform_fees"]);
        assert_eq!(amount(&f["provider_clearing"]), by_class["provider_clearing"]);
        assert_eq!(amount(&f["refunded"]), by_class["refunds"]);
        assert_eq!(-amount(&f["payable"]), by_class.get("driver_payable").copied().unwrap_or(0));
        assert_eq!(amount(&f["uncollectible"]), by_class.get("bad_debt").copied().unwrap_or(0));
        // And the figures add up among themselves.
        let invoiced: i64 = rows::<(i64,)>(&app.db, &format!("SELECT total_minor FROM invoices WHERE week = '{week}'")).await.iter().map(|r| r.0).sum();
        assert_eq!(amount(&f["invoiced"]), invoiced);
        assert_eq!(amount(&f["invoiced"]), amount(&f["charged"]) + amount(&f["outstanding"]) + amount(&f["uncollectible"]));
        assert_eq!(amount(&f["net"]), amount(&f["charged"]) - amount(&f["refunded"]));
        assert!(amount(&f["outstanding"]) > 0, "some cards were declined: {f}");
        assert_eq!(report["history"].as_array().unwrap().len(), 12);
        assert_eq!(report["refunds_by_reason"], json!([{ "reason": "service_issue", "count": 1, "amount": { "amount": "1.25", "currency": "USD" } }]));

        // CSV: RFC 4180, one header row, parsed back to the same figures.
        let response = http.get(app.url(&format!("/api/v1/reports/{week}?format=csv"))).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        assert!(response.headers()["content-disposition"].to_str().unwrap().contains(&format!("carpool-billing-{week}.csv")));
        let csv_bytes = response.bytes().await.unwrap();
        let text = std::str::from_utf8(&csv_bytes).unwrap();
        assert!(text.contains("\r\n"), "CRLF line ends");
        let mut reader = csv::Reader::from_reader(csv_bytes.as_ref());
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), server::reports::CSV_HEADER);
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len() as i64, f["invoices"].as_i64().unwrap());
        let column = |i: usize| records.iter().map(|r| minor(&r[i])).sum::<i64>();
        assert_eq!(column(5), invoiced);
        assert_eq!(column(6), amount(&f["charged"]));
        assert_eq!(column(7), amount(&f["refunded"]));
        assert_eq!(column(8), amount(&f["net"]));
        for record in &records {
            assert_eq!(&record[4], "USD");
            if &record[9] == "charged" {
                chrono::DateTime::parse_from_rfc3339(&record[10]).unwrap_or_else(|e| panic!("{:?}: {e}", &record[10]));
                assert!(record[10].ends_with("+00:00"), "with its offset: {}", &record[10]);
            } else {
                assert_eq!(&record[10], "");
            }
        }

        // The CLI writes the same CSV.
        let out = support::billing().args(["export", "--week", &week]).env("DATABASE_URL", &app.test_db.url).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, csv_bytes.as_ref());
        // Read in pages of any size (read ahead of the writer), the same bytes: pages of one, a
        // size that leaves a last short page, and one that divides the invoices exactly (an
        // empty page after the last full one).
        let invoices = records.len() as i64;
        assert!(invoices > 3, "several pages: {invoices}");
        let exact = (2..invoices).find(|size| invoices % size == 0).unwrap_or(1);
        for page_size in [1, 3, exact, invoices, invoices + 1] {
            let mut paged = Vec::new();
            server::reports::write_csv(&app.db, (&week, &week), page_size, &mut paged).await.unwrap();
            assert_eq!(paged, csv_bytes.as_ref(), "pages of {page_size}");
        }

        // XLSX, read by calamine: the same figures, numbers as numbers.
        let response = http.get(app.url(&format!("/api/v1/reports/{week}?format=xlsx"))).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.bytes().await.unwrap();
        let mut book = calamine::Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
        let summary = book.worksheet_range("Summary").unwrap();
        let figure = |label: &str| -> i64 {
            let row = summary.rows().find(|r| r[0] == label).unwrap_or_else(|| panic!("{label} in the summary"));
            match &row[1] {
                calamine::Data::Float(v) => (v * 100.0).round() as i64,
                other => panic!("{label} is a number, not {other:?}"),
            }
        };
        assert_eq!(figure("Charged"), amount(&f["charged"]));
        assert_eq!(figure("Refunded"), amount(&f["refunded"]));
        assert_eq!(figure("Platform fees"), amount(&f["platform_fees"]));
        let detail = book.worksheet_range("Invoices").unwrap();
        assert_eq!(detail.height() as i64, f["invoices"].as_i64().unwrap() + 1, "a header row and one row per invoice");
        let charged_cells: i64 = detail.rows().skip(1).map(|r| match &r[6] { calamine::Data::Float(v) => (v * 100.0).round() as i64, other => panic!("{other:?}") }).sum();
        assert_eq!(charged_cells, amount(&f["charged"]));

        // The scheduled weekly report: `billing serve` wrote the completed week's files.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (csv_file, xlsx_file) = (dir.join(format!("carpool-billing-{week}.csv")), dir.join(format!("carpool-billing-{week}.xlsx")));
        while !(csv_file.exists() && xlsx_file.exists()) {
            assert!(std::time::Instant::now() < deadline, "the weekly report was not written to {}", dir.display());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let written = std::fs::read(&csv_file).unwrap();
        assert!(written.starts_with(b"invoice_id,week,"), "a whole CSV");
        calamine::open_workbook::<calamine::Xlsx<_>, _>(&xlsx_file).unwrap().worksheet_range("Summary").unwrap();

        // Refused by name; support may not.
        for (query, field) in [("?format=pdf", "format"), ("?to=1999-W01", "to")] {
            let response = http.get(app.url(&format!("/api/v1/reports/{week}{query}"))).bearer_auth(&finance).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
            assert_eq!(response.json::<Value>().await.unwrap()["field"], field);
        }
        let response = http.get(app.url("/api/v1/reports/2026-W99")).bearer_auth(&finance).send().await.unwrap();
        assert_eq!(response.json::<Value>().await.unwrap()["field"], "from");
        let support_token = app.token_for(&email_of(Role::Support)).await;
        let response = http.get(app.url(&format!("/api/v1/reports/{week}"))).bearer_auth(&support_token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let bad = support::billing().args(["export", "--week", "soon"]).env("DATABASE_URL", &app.test_db.url).output().await.unwrap();
        assert_eq!(bad.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--week"));
    }
}

/// Rides of a fixed past week, made the same way every time, for the golden files.
async fn fixed_week(db: &server::db::Db) {
    use app::model::billing::{Ride, Seat};
    use app::model::pricing::Attendance;
    use server::db::rides::NewUser;
    let user = |id: &str, name: &str| NewUser {
        id: id.into(),
        name: name.into(),
        email: Some(format!("{id}@golden.example")),
        phone: None,
        language: "en".into(),
        provider: Default::default(),
    };
    db.add_users(&[
        user("d1", "Dana Driver"),
        user("p1", "Ana \"Quotes\", Comma"),
        user("p2", "Bo Li"),
        user("p3", "Chloé Brûlée"),
        // Names a spreadsheet would run as formulas (CSV injection): written with a leading '.
        user("p4", "=HYPERLINK(\"https://evil.example\",\"Refund\")"),
        user("p5", "@SUM(1+1)"),
        user("p6", "-2+3"),
    ])
    .await
    .unwrap();
    let at = |day: u32, hour: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap().and_hms_opt(hour, 15, 0).unwrap().and_utc()
    };
    let rides = [
        ("g1", 2, 8, 12_300, vec![("p1", Attendance::Completed), ("p2", Attendance::Completed)]),
        ("g2", 3, 18, 7_050, vec![("p1", Attendance::Completed), ("p3", Attendance::NoShow)]),
        (
            "g3",
            5,
            9,
            31_000,
            vec![("p2", Attendance::Completed), ("p3", Attendance::Completed), ("p1", Attendance::Cancelled)],
        ),
        ("g4", 8, 20, 4_200, vec![("p3", Attendance::Completed)]),
        (
            "g5",
            6,
            7,
            9_900,
            vec![("p4", Attendance::Completed), ("p5", Attendance::Completed), ("p6", Attendance::Completed)],
        ),
    ];
    for (id, day, hour, distance_m, seats) in rides {
        let ride = Ride {
            ride_id: id.into(),
            driver_id: "d1".into(),
            distance_m,
            started_at: at(day, hour) - chrono::Duration::minutes(30),
            ended_at: at(day, hour),
            seats: seats
                .into_iter()
                .map(|(p, attendance)| Seat { passenger_id: p.into(), attendance })
                .collect(),
        };
        db.store_ride(&ride).await.unwrap();
    }
}

/// The file under `server/tests/golden/`, or (with `UPDATE_GOLDEN=1`) writes it.
fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{name} differs from the golden file");
}

on_both_databases! {
    async fn exports_of_a_fixed_week_match_the_golden_files(kind: Kind) {
        let (test_db, db) = TestDb::migrated(kind).await;
        fixed_week(&db).await;
        let sim = PspSim::start(&[]).await;
        let run = sim.billing(&test_db.url).args(["run", "--week", "2026-W10", "--approve"]).output().await.unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        // What changes from run to run (the provider's ids, the time of the charge) is checked,
        // then written as a placeholder; everything else is compared byte for byte.
        let out = sim.billing(&test_db.url).args(["export", "--week", "2026-W10"]).output().await.unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
        writer.write_record(reader.headers().unwrap()).unwrap();
        for record in reader.records() {
            let mut fields: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
            chrono::DateTime::parse_from_rfc3339(&fields[10]).unwrap();
            assert!(fields[11].starts_with("pi_"), "{}", fields[11]);
            fields[10] = "<charged_at>".into();
            fields[11] = "<payment_intent>".into();
            writer.write_record(&fields).unwrap();
        }
        golden("export-2026-W10.csv", &String::from_utf8(writer.into_inner().unwrap()).unwrap());

        let file = tempfile::NamedTempFile::new().unwrap();
        let out = sim.billing(&test_db.url).args(["export", "--week", "2026-W10", "--format", "xlsx", "--out", file.path().to_str().unwrap()]).output().await.unwrap();
        assert!(out.status.success(), "`--out`, the contract's name of `--output`: {}", String::from_utf8_lossy(&out.stderr));
        let mut book: calamine::Xlsx<_> = calamine::open_workbook(file.path()).unwrap();
        let mut dump = String::new();
        for sheet in ["Summary", "Invoices"] {
            dump.push_str(&format!("[{sheet}]\n"));
            for (r, row) in book.worksheet_range(sheet).unwrap().rows().enumerate() {
                let cells: Vec<String> = row.iter().enumerate().map(|(c, cell)| match (sheet, r, c, cell) {
                    ("Invoices", r, 10 | 11, cell) if r > 0 && *cell != calamine::Data::Empty => "<varies>".to_owned(),
                    (_, _, _, calamine::Data::Float(v)) => format!("{v:.2}"),
                    (_, _, _, other) => other.to_string(),
                }).collect();
                dump.push_str(&cells.join(" | "));
                dump.push('\n');
            }
        }
        golden("export-2026-W10.xlsx.txt", &dump);
    }
}

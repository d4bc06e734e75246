//! `/reports` (finance and admin): a week or a range of weeks from the ledger, against the same
//! number of weeks before, with the last twelve weeks as bars, refunds by reason, the weeks'
//! disputes, and the CSV and XLSX downloads. The weeks live in the query string.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::reports::get_report;
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::components::format::{grouped, money};
use crate::components::link::with_query;
use crate::model::money::Money;
use crate::model::report::{ReasonTotal, Report, ReportFigures, WeekBar};

/// `/reports?from=&to=`.
#[component]
pub fn ReportsPage() -> impl IntoView {
    let query = use_query_map();
    let from = Memo::new(move |_| query.with(|q| q.get("from").unwrap_or_default().trim().to_string()));
    let to = Memo::new(move |_| query.with(|q| q.get("to").unwrap_or_default().trim().to_string()));
    let report = resource(move || (from.get(), to.get()), |(from, to)| get_report(from, to));
    view! {
        <Title text="Reports" />
        <Transition fallback=|| view! { <p class="muted">"Adding up the ledger…"</p> }>
            {move || report.get().map(|result| match result {
                Ok(report) => view! { <ReportView report /> }.into_any(),
                Err(error) => {
                    // A refused role gets the way out; a bad week, the default one.
                    let (href, label) = match error {
                        crate::api::AppError::Forbidden(_) | crate::api::AppError::Unauthenticated => ("/", "Back to the overview"),
                        _ => ("/reports", "The last complete week"),
                    };
                    view! {
                        <div class="page-header"><h1>"Reports"</h1></div>
                        <ErrorNotice error />
                        <p><a href=href data-testid="report-way-out">{label}</a></p>
                    }.into_any()
                }
            })}
        </Transition>
    }
}

#[component]
fn ReportView(report: Report) -> impl IntoView {
    let title = if report.from == report.to {
        format!("Week {}", report.from)
    } else {
        format!("Weeks {} to {}", report.from, report.to)
    };
    let download = |format: &str| {
        with_query(&format!("/api/v1/reports/{}", report.from), &[("to", &report.to), ("format", format)])
    };
    let (csv, xlsx) = (download("csv"), download("xlsx"));
    let f = report.figures.clone();
    let p = report.previous.clone();
    let compared = format!("against {} to {}", report.previous_from, report.previous_to);
    view! {
        <div class="page-header">
            <div>
                <h1>"Report · " {title}</h1>
                <p class="muted">"Every figure from the double-entry ledger, in " {report.currency.clone()} "; changes " {compared} "."</p>
            </div>
            <div class="week-nav">
                <a class="btn" href=csv download data-testid="download-csv">"Download CSV"</a>
                <a class="btn" href=xlsx download data-testid="download-xlsx">"Download XLSX"</a>
            </div>
        </div>
        <form method="get" action="/reports" class="card filters" data-testid="report-range">
            <label>"From week" <input name="from" value=report.from.clone() placeholder="2026-W47" pattern="\\d{4}-W\\d{2}" data-testid="report-from" /></label>
            <label>"To week" <input name="to" value=report.to.clone() placeholder="2026-W47" pattern="\\d{4}-W\\d{2}" data-testid="report-to" /></label>
            <div class="filter-actions"><button type="submit" class="btn btn-primary" data-testid="report-show">"Show"</button></div>
        </form>
        <div class="table-wrap">
            <table class="table" data-testid="report-figures">
                <thead><tr><th>"Figure"</th><th class="num">"This period"</th><th class="num">"Previous"</th><th class="num">"Change"</th></tr></thead>
                <tbody>
                    {figure_rows(&f, &p).into_iter().map(|(label, testid, now, before)| view! {
                        <tr>
                            <td>{label}</td>
                            <td class="num" data-testid=testid>{money(now)}</td>
                            <td class="num muted">{money(before)}</td>
                            <td class="num">{change(now, before)}</td>
                        </tr>
                    }).collect_view()}
                    {count_rows(&f, &p).into_iter().map(|(label, testid, now, before)| view! {
                        <tr>
                            <td>{label}</td>
                            <td class="num" data-testid=testid>{now}</td>
                            <td class="num muted">{before}</td>
                            <td class="num">{signed(now - before)}</td>
                        </tr>
                    }).collect_view()}
                    <tr><td>"Provider fees"</td><td class="num muted" colspan="3">{f.provider_fees.map(money).unwrap_or_else(|| "not reported by the provider".into())}</td></tr>
                </tbody>
            </table>
        </div>
        <DisputesBlock f=f.clone() p=p.clone() currency=report.currency.clone() />
        <div class="grid-2">
            <section class="card">
                <h2>"Last twelve weeks"</h2>
                <HistoryChart bars=report.history.clone() />
            </section>
            <section class="card">
                <h2>"Refunds by reason"</h2>
                <ReasonChart reasons=report.refunds_by_reason.clone() />
            </section>
        </div>
    }
}

fn figure_rows(f: &ReportFigures, p: &ReportFigures) -> Vec<(&'static str, &'static str, Money, Money)> {
    vec![
        ("Invoiced", "fig-invoiced", f.invoiced, p.invoiced),
        ("Charged (gross)", "fig-charged", f.charged, p.charged),
        ("Declined, still owed", "fig-outstanding", f.outstanding, p.outstanding),
        ("Uncollectible", "fig-uncollectible", f.uncollectible, p.uncollectible),
        ("Refunded", "fig-refunded", f.refunded, p.refunded),
        ("Net (charged − refunded)", "fig-net", f.net, p.net),
        ("Platform fees", "fig-fees", f.platform_fees, p.platform_fees),
        ("Paid to drivers", "fig-payouts", f.driver_payouts, p.driver_payouts),
        ("Still owed to drivers", "fig-payable", f.payable, p.payable),
        (
            "Held at the provider (negative: advanced to drivers)",
            "fig-clearing",
            f.provider_clearing,
            p.provider_clearing,
        ),
    ]
}

fn count_rows(f: &ReportFigures, p: &ReportFigures) -> Vec<(&'static str, &'static str, i64, i64)> {
    vec![
        ("Invoices", "count-invoices", f.invoices, p.invoices),
        ("Charges", "count-charges", f.charges, p.charges),
        ("Refunds", "count-refunds", f.refunds, p.refunds),
        ("Uncollectible invoices", "count-uncollectible", f.uncollectible_count, p.uncollectible_count),
        (
            "… of which no card at the provider",
            "count-no-payment-method",
            f.no_payment_method_count,
            p.no_payment_method_count,
        ),
        ("Transfers to drivers", "count-transfers", f.transfers, p.transfers),
    ]
}

/// The weeks' disputes: what card issuers took back, the provider's fees, what came back (won)
/// and what is gone (lost), from the ledger, against the weeks before; and how many disputes are
/// in each status now.
#[component]
fn DisputesBlock(f: ReportFigures, p: ReportFigures, currency: String) -> impl IntoView {
    if f.disputes_by_status.is_empty() && f.disputes == 0 && p.disputes == 0 {
        return view! {
            <section class="card section" data-testid="report-disputes">
                <h2>"Disputes"</h2>
                <p class="muted" data-testid="no-disputes">"No disputes in these weeks."</p>
            </section>
        }
        .into_any();
    }
    let amounts = [
        ("Disputed (taken back by issuers)", "dispute-disputed", Some(f.disputes), f.disputed, p.disputed),
        ("Dispute fees", "dispute-fees", None, f.dispute_fees, p.dispute_fees),
        ("Won (given back)", "dispute-won", Some(f.disputes_won_count), f.disputes_won, p.disputes_won),
        ("Lost", "dispute-lost", Some(f.disputes_lost_count), f.disputes_lost, p.disputes_lost),
    ];
    let statuses = if f.disputes_by_status.is_empty() {
        "none. ".into_any()
    } else {
        f.disputes_by_status
            .iter()
            .map(|(status, count)| {
                view! { <span class="badge" data-testid=format!("dispute-status-{status}")>{status.replace('_', " ")} " " {*count}</span> " " }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <section class="card section" data-testid="report-disputes">
            <h2>"Disputes"</h2>
            <table class="table">
                <thead><tr><th></th><th class="num">"Disputes"</th><th class="num">"This period (" {currency.clone()} ")"</th><th class="num">"Previous (" {currency} ")"</th></tr></thead>
                <tbody>
                    {amounts.into_iter().map(|(label, testid, count, now, before)| view! {
                        <tr>
                            <td>{label}</td>
                            <td class="num">{count}</td>
                            <td class="num" data-testid=testid>{grouped(now)}</td>
                            <td class="num muted">{grouped(before)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <p class="small">"By status now: " {statuses} <a href="/disputes">"the disputes queue"</a></p>
        </section>
    }
    .into_any()
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// The change in money, and in whole percent of the previous figure (integers only).
fn change(now: Money, before: Money) -> String {
    let delta = now.minor() - before.minor();
    let amount = Money::from_minor(delta, now.currency());
    let sign = if delta > 0 { "+" } else { "" };
    if before.minor() == 0 {
        format!("{sign}{amount}")
    } else {
        let pct = (i128::from(delta) * 100 + i128::from(before.minor().abs()) / 2)
            / i128::from(before.minor().abs());
        format!("{sign}{amount} ({sign}{pct}%)")
    }
}

/// Charged and refunded per week, as bars (SVG; colours from the theme).
#[component]
fn HistoryChart(bars: Vec<WeekBar>) -> impl IntoView {
    const W: i64 = 600;
    const H: i64 = 160;
    let most = bars.iter().map(|b| b.charged.minor()).max().unwrap_or(0).max(1);
    let slot = W / bars.len().max(1) as i64;
    let drawn = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = i as i64 * slot + slot / 8;
            let width = slot * 3 / 8;
            let height = |m: i64| m * (H - 24) / most;
            let (charged, refunded) = (height(b.charged.minor()), height(b.refunded.minor()));
            let title = format!("{}: charged {}, refunded {}", b.week, money(b.charged), money(b.refunded));
            view! {
                <g data-testid="history-bar">
                    <title>{title}</title>
                    <rect x=x y=H - 18 - charged width=width height=charged class="bar-charged" />
                    <rect x=x + width y=H - 18 - refunded width=width height=refunded class="bar-refunded" />
                    <text x=x + width y=H - 4 text-anchor="middle" class="chart-label">{b.week.get(6..).unwrap_or_default().to_string()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label="Charged and refunded, last twelve weeks" data-testid="history-chart">{drawn}</svg>
        <p class="muted small chart-legend"><span class="legend legend-charged">"charged"</span> " " <span class="legend legend-refunded">"refunded"</span></p>
    }
}

/// Refunds by reason, as horizontal bars.
#[component]
fn ReasonChart(reasons: Vec<ReasonTotal>) -> impl IntoView {
    if reasons.is_empty() {
        return view! { <p class="muted" data-testid="no-refund-reasons">"No refunds in these weeks."</p> }
            .into_any();
    }
    const W: i64 = 600;
    let row = 28;
    let most = reasons.iter().map(|r| r.amount.minor()).max().unwrap_or(1).max(1);
    let height = row * reasons.len() as i64;
    let drawn = reasons
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let y = i as i64 * row;
            let width = r.amount.minor() * (W - 340) / most;
            view! {
                <g data-testid="reason-bar">
                    <text x=0 y=y + 18 class="chart-text">{r.reason.label()}</text>
                    <rect x=200 y=y + 6 width=width.max(2) height=16 class="bar-refunded" />
                    <text x=206 + width y=y + 18 class="chart-text">{money(r.amount)} " · " {r.count}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {height}") role="img" aria-label="Refunds by reason" data-testid="reason-chart">{drawn}</svg>
    }
    .into_any()
}

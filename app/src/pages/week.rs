//! `/weeks/:week`: the week's invoices and payouts exactly as the run will charge and pay them,
//! their totals and anomalies, and the approval that freezes them. The view's state (search,
//! page, open invoice, tab) lives in the query string, so every view can be shared and reloaded;
//! search runs as you type once the page is interactive, and as a plain form before.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::params::ParamsMap;
use leptos_router::NavigateOptions;

use crate::api::resource;
use crate::api::runs::StartRun;
use crate::api::weeks::{get_week_summary, week_invoice, week_invoices, week_payouts, ApproveWeek};
use crate::auth::Action;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{money, state_class};
use crate::components::link::with_query;
use crate::components::stat::Stat;
use crate::model::preview::{
    Anomaly, InvoiceDetail, InvoicePage, InvoiceQuery, PayoutPage, WeekStatus, WeekSummary,
};
use crate::model::pricing::Attendance;
use crate::pages::week_waivers::{waived_rows, InvoiceWaivers, WeekWaivers};

/// What brings the week's figures up to date while its run moves: the tables are fetched again
/// at each change of the run's counts, the whole week once when the run ends.
#[derive(Clone, Copy)]
struct Refresh {
    tables: RwSignal<u32>,
    week: RwSignal<u32>,
}

fn param(q: &ParamsMap, name: &str) -> String {
    q.get(name).map(|v| v.trim().to_string()).unwrap_or_default()
}

/// What the query string says to show.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    q: String,
    after: String,
    flagged: bool,
    invoice: String,
    payouts: bool,
}

impl View {
    fn from(q: &ParamsMap) -> View {
        View {
            q: param(q, "q"),
            after: param(q, "after"),
            flagged: param(q, "flagged") == "1",
            invoice: param(q, "invoice"),
            payouts: param(q, "tab") == "payouts",
        }
    }

    /// The link to this week's page with `self`'s state.
    fn href(&self, week: &str) -> String {
        let path = format!("/weeks/{week}");
        let flagged = if self.flagged { "1" } else { "" };
        let tab = if self.payouts { "payouts" } else { "" };
        with_query(
            &path,
            &[
                ("q", &self.q),
                ("flagged", flagged),
                ("after", &self.after),
                ("invoice", &self.invoice),
                ("tab", tab),
            ],
        )
    }
}

/// The week's preview page.
#[component]
pub fn WeekPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let week = Memo::new(move |_| params.with(|p| p.get("week").unwrap_or_default()));
    let view_state = Memo::new(move |_| query.with(View::from));
    let approve = ServerAction::<ApproveWeek>::new();
    let refresh = Refresh { tables: RwSignal::new(0), week: RwSignal::new(0) };
    provide_context(refresh);
    let summary = resource(
        move || (week.get(), approve.version().get(), refresh.week.get()),
        |(week, _, _)| get_week_summary(week),
    );

    view! {
        <Title text=move || format!("Week {}", week.get()) />
        <Transition fallback=|| view! { <p class="muted">"Computing the preview…"</p> }>
            {move || summary.get().map(|result| match result {
                Ok(summary) => view! { <WeekView summary view_state approve /> }.into_any(),
                Err(error) => view! {
                    <div class="page-header"><h1>"Week " {week.get()}</h1></div>
                    <ErrorNotice error />
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn WeekView(
    summary: WeekSummary,
    view_state: Memo<View>,
    approve: ServerAction<ApproveWeek>,
) -> impl IntoView {
    let week = summary.week.to_string();
    let status = match summary.status {
        WeekStatus::Previewed => view! { <span class="badge badge-warning" data-testid="week-status">"preview · not approved"</span> }.into_any(),
        WeekStatus::Approved => view! { <span class="badge badge-success" data-testid="week-status">"approved"</span> }.into_any(),
    };
    let zone = summary.time_zone.clone();
    let approved_line = summary.approved_at.map(|at| {
        let by = summary.approved_by.clone().unwrap_or_default();
        view! {
            <p class="muted" data-testid="approved-by">
                "Approved by " {by} " on " {crate::components::format::moment(at, &zone)}
                ". Frozen: new rides of this week go into the next open week as late lines."
            </p>
        }
    });
    let previous = format!("/weeks/{}", summary.week.previous());
    let next = summary.next.map(|n| format!("/weeks/{n}"));
    let t = summary.totals.clone();
    let tabs_week = week.clone();
    let waivers_week = week.clone();
    let week_anomalies = summary.anomalies.clone();
    view! {
        <div class="page-header">
            <div>
                <h1>"Week " {week.clone()} " " {status}</h1>
                <p class="muted">
                    {summary.first_day.clone()} " – " {summary.last_day.clone()} " · " {summary.time_zone.clone()}
                    " · computed " {crate::components::format::moment(summary.computed_at, &summary.time_zone)}
                    " · priced by "
                    <a href="/pricing" data-testid="week-fee-policy">{if summary.fee_policy_version == 0 {
                        "the built-in policy".to_owned()
                    } else {
                        format!("fee policy version {}", summary.fee_policy_version)
                    }}</a>
                </p>
            </div>
            <div class="week-nav">
                <a class="btn" href=previous data-testid="previous-week">"← Previous week"</a>
                {next.map(|href| view! { <a class="btn" href=href data-testid="next-week">"Next week →"</a> })}
            </div>
        </div>
        {approved_line}
        {(!week_anomalies.is_empty()).then(|| view! {
            <Banner tone=Tone::Warning>
                <strong>"This week looks unusual. "</strong>
                {week_anomalies.iter().map(|a| view! { <span data-testid="week-anomaly">{a.detail.clone()} " "</span> }).collect_view()}
            </Banner>
        })}
        <div class="stats" data-testid="week-totals">
            <Stat label="Invoices" value=t.invoices.to_string() testid="total-invoices" />
            <Stat label="Charged" value=crate::components::format::grouped(t.charged) unit=summary.currency.clone() testid="total-charged" />
            <Stat label="Platform fees" value=crate::components::format::grouped(t.fees) unit=summary.currency.clone() testid="total-fees" />
            <Stat label="Driver payouts" value=crate::components::format::grouped(t.payouts) unit=summary.currency.clone() testid="total-payouts" />
            <Stat label="Drivers paid" value=summary.payouts.to_string() testid="total-drivers" />
            <Stat label="Late lines" value=summary.late_lines.to_string() testid="total-late" />
            <Stat label="Flagged invoices" value=summary.flagged.to_string() testid="total-flagged" />
            <Stat label="No payment method" value=summary.no_payment_method.to_string() testid="total-no-payment-method" />
            <Stat label="No payout account" value=summary.no_payout_account.to_string() testid="total-no-payout-account" />
        </div>
        <PaymentGaps summary=summary.clone() />
        <ApprovePanel summary=summary.clone() approve />
        <WeekWaivers week=waivers_week waivers=summary.waivers.clone() />
        <nav class="tabs" aria-label="Invoices or payouts">
            {move || {
                let v = view_state.get();
                let invoices = View { payouts: false, after: String::new(), invoice: String::new(), ..v.clone() }.href(&tabs_week);
                let payouts = View { payouts: true, after: String::new(), invoice: String::new(), ..v.clone() }.href(&tabs_week);
                view! {
                    <a href=invoices aria-current=(!v.payouts).then_some("page") data-testid="tab-invoices">"Invoices"</a>
                    <a href=payouts aria-current=v.payouts.then_some("page") data-testid="tab-payouts">"Payouts"</a>
                }
            }}
        </nav>
        {move || if view_state.get().payouts {
            view! { <PayoutsTab week=week.clone() view_state /> }.into_any()
        } else {
            view! { <InvoicesTab week=week.clone() view_state /> }.into_any()
        }}
    }
}

/// Who cannot be charged or paid as things stand: passengers without a card end uncollectible
/// (and are asked to add one), payouts without an account wait for one.
#[component]
fn PaymentGaps(summary: WeekSummary) -> impl IntoView {
    let names = |ids: &[String], total: u64| {
        let more = total.saturating_sub(ids.len() as u64);
        let links = ids
            .iter()
            .map(|id| view! { <a class="mono" href=format!("/users/{}", crate::components::link::encode(id))>{id.clone()}</a> " " })
            .collect_view();
        view! { {links} {(more > 0).then(|| format!("and {more} more"))} }
    };
    (summary.no_payment_method + summary.no_payout_account > 0).then(|| view! {
        <Banner tone=Tone::Warning>
            <div data-testid="payment-gaps">
                {(summary.no_payment_method > 0).then(|| view! {
                    <p><strong>{summary.no_payment_method} " passenger(s) cannot be charged: "</strong>
                    "no card at the payment provider. The run will mark their invoices uncollectible and ask them to add a card. "
                    {names(&summary.unpayable, summary.no_payment_method)}</p>
                })}
                {(summary.no_payout_account > 0).then(|| view! {
                    <p><strong>{summary.no_payout_account} " driver(s) cannot be paid: "</strong>
                    "no payout account at the provider. Their payouts will wait until the carpool app sends one. "
                    {names(&summary.unpaid_drivers, summary.no_payout_account)}</p>
                })}
            </div>
        </Banner>
    })
}

/// The approval: finance and admin, once the week has ended, naming the reviewed content hash.
#[component]
fn ApprovePanel(summary: WeekSummary, approve: ServerAction<ApproveWeek>) -> impl IntoView {
    let can_approve = move || crate::SignedIn::can(Action::ApproveRun);
    let result = move || {
        approve.value().get().map(|r| match r {
            Ok(s) => view! {
                <Banner tone=Tone::Success>"Week " {s.week.to_string()} " approved: its invoices are frozen."</Banner>
            }
            .into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };
    if summary.status == WeekStatus::Approved {
        return view! { {result} <RunPanel summary=summary.clone() /> }.into_any();
    }
    view! {
        {result}
        <Show when=can_approve>
            <ApproveForm summary=summary.clone() approve />
        </Show>
    }
    .into_any()
}

/// On an approved week: its run, or the button that starts it (finance and admin).
#[component]
fn RunPanel(summary: WeekSummary) -> impl IntoView {
    let start = ServerAction::<StartRun>::new();
    let can_start = move || crate::SignedIn::can(Action::ApproveRun);
    let week_value = StoredValue::new(summary.week.to_string());
    let started = move || start.value().get().and_then(Result::ok).map(|run| run.id);
    // Started: on to the run's live page (without scripts, the page comes back with its link).
    Effect::new(move |_| {
        if let Some(id) = started() {
            leptos_router::hooks::use_navigate()(&format!("/runs/{id}"), Default::default());
        }
    });
    let error =
        move || start.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> });
    let existing = summary.run_id;
    view! {
        <section class="card approve" data-testid="run-panel">
            <h2>"The run"</h2>
            {error}
            {move || match existing.or_else(started) {
                Some(id) => view! {
                    <p>"This week's run is " <a href=format!("/runs/{id}") data-testid="run-link">"run #" {id}</a> "."</p>
                    <RunProgress id />
                }.into_any(),
                None if can_start() => view! {
                    <ActionForm action=start attr:class="form form-inline" attr:data-testid="start-run-form">
                        <input type="hidden" name="week" value=week_value.get_value() />
                        <p>"Starting charges a canary slice first, then every invoice, then pays the drivers; it can be paused at any moment."</p>
                        <button type="submit" class="btn btn-primary" data-testid="start-run">"Start the run"</button>
                    </ActionForm>
                }.into_any(),
                None => view! { <p class="muted">"Not started yet."</p> }.into_any(),
            }}
        </section>
    }
}

/// Where the week's run stands, live in the browser; each change of its counts fetches the
/// tables again, and its end the whole week (totals, charge states).
#[component]
fn RunProgress(id: i64) -> impl IntoView {
    let refresh = expect_context::<Refresh>();
    let live: RwSignal<Option<crate::model::run::RunView>> = RwSignal::new(None);
    crate::pages::runs::follow(Memo::new(move |_| id), live);
    // The counts last seen, and whether the run was over then.
    let seen: StoredValue<Option<(bool, [i64; 5])>> = StoredValue::new(None);
    Effect::new(move |_| {
        let Some(run) = live.get() else { return };
        let now =
            (run.over(), [run.charged_count, run.declined, run.uncollectible, run.pending, run.paid_count]);
        let before = seen.get_value();
        seen.set_value(Some(now));
        match before {
            // The page was rendered after the run ended: it is current.
            None if now.0 => {}
            Some(before) if before == now => {}
            // Seen running, now over: the totals and states have moved.
            Some((false, _)) if now.0 => refresh.week.update(|n| *n += 1),
            _ => refresh.tables.update(|n| *n += 1),
        }
    });
    move || {
        live.get().map(|run| {
            let state = if run.over() {
                format!("{}.", run.phase.as_str().replace('_', " "))
            } else {
                format!("{} ({}).", run.phase.as_str().replace('_', " "), run.control.as_str())
            };
            view! {
                <p class="muted" data-testid="run-progress" aria-live="polite">
                    {state} " " {run.charged_count} " of " {run.invoices} " invoices charged, "
                    {run.paid_count} " of " {run.payouts} " payouts paid."
                </p>
            }
        })
    }
}

#[component]
fn ApproveForm(summary: WeekSummary, approve: ServerAction<ApproveWeek>) -> impl IntoView {
    let hash = summary.content_hash.clone();
    let short = hash.get(..12).unwrap_or_default().to_string();
    let week = summary.week.to_string();
    let form = if summary.ended {
        view! {
            <ActionForm action=approve attr:class="form form-inline" attr:data-testid="approve-form">
                <input type="hidden" name="week" value=week.clone() />
                <input type="hidden" name="content_hash" value=hash />
                <label class="check">
                    <input type="checkbox" name="reviewed" required data-testid="approve-reviewed" />
                    " I have reviewed the totals, the flagged invoices, who cannot be charged or paid, and the payouts"
                </label>
                <button type="submit" class="btn btn-primary" data-testid="approve-button">"Approve week " {week}</button>
            </ActionForm>
        }
        .into_any()
    } else {
        view! { <p class="muted">"The week has not ended yet; it can be approved once it has."</p> }
            .into_any()
    };
    view! {
        <section class="card approve" data-testid="approve-panel">
            <h2>"Approve this week"</h2>
            <p>
                "Approving freezes these " <strong>{summary.totals.invoices}</strong> " invoices ("
                <strong>{money(summary.totals.charged)}</strong> ") and " {summary.payouts}
                " payouts. The run charges exactly this content (hash " <code>{short}</code>
                "); rides that arrive later are billed next week as late lines."
            </p>
            {(summary.no_payment_method + summary.no_payout_account > 0).then(|| view! {
                <p data-testid="approve-gaps">
                    <strong>{summary.no_payment_method}</strong> " invoice(s) will end uncollectible for want of a card, and "
                    <strong>{summary.no_payout_account}</strong> " payout(s) will wait for a payout account, unless the carpool app sends them first."
                </p>
            })}
            {form}
        </section>
    }
}

#[component]
fn AnomalyBadges(anomalies: Vec<Anomaly>) -> impl IntoView {
    anomalies
        .into_iter()
        .map(|a| view! { <span class="badge badge-warning" title=a.detail.clone() data-testid="anomaly">{a.kind.label()}</span> " " })
        .collect_view()
}

#[component]
fn InvoicesTab(week: String, view_state: Memo<View>) -> impl IntoView {
    let page_week = week.clone();
    let refresh = expect_context::<Refresh>();
    let page = resource(
        move || (view_state.get(), refresh.tables.get()),
        move |(v, _)| {
            week_invoices(InvoiceQuery {
                week: page_week.clone(),
                q: v.q,
                after: Some(v.after).filter(|a| !a.is_empty()),
                flagged_only: v.flagged,
                limit: None,
            })
        },
    );
    let navigate = use_navigate();
    let search_week = week.clone();
    // As you type: the URL follows the box, the table follows the URL.
    let on_input = move |ev: leptos::ev::Event| {
        let q = event_target_value(&ev);
        let v = View { q, after: String::new(), invoice: String::new(), ..view_state.get_untracked() };
        navigate(
            &v.href(&search_week),
            NavigateOptions { replace: true, scroll: false, ..Default::default() },
        );
    };
    let navigate = use_navigate();
    let flagged_week = week.clone();
    let on_flagged = move |ev: leptos::ev::Event| {
        let flagged = event_target_checked(&ev);
        let v = View { flagged, after: String::new(), invoice: String::new(), ..view_state.get_untracked() };
        navigate(
            &v.href(&flagged_week),
            NavigateOptions { replace: true, scroll: false, ..Default::default() },
        );
    };
    let detail_week = week.clone();
    let table_week = week.clone();
    view! {
        <form method="get" action=format!("/weeks/{week}") class="card filters" data-testid="invoice-search">
            <label>
                "Passenger id or name"
                <input
                    name="q"
                    type="search"
                    value=move || view_state.get_untracked().q
                    placeholder="p12 or Ana"
                    autocomplete="off"
                    data-testid="invoice-search-input"
                    on:input=on_input
                />
            </label>
            <label class="check">
                <input type="checkbox" name="flagged" value="1" checked=move || view_state.get_untracked().flagged
                    data-testid="flagged-only" on:change=on_flagged />
                " Only flagged invoices"
            </label>
            <div class="filter-actions">
                <button type="submit" class="btn">"Search"</button>
            </div>
        </form>
        {move || {
            let v = view_state.get();
            (!v.invoice.is_empty()).then(|| view! { <InvoicePanel week=detail_week.clone() user_id=v.invoice.clone() view_state /> })
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading invoices…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => view! { <InvoiceTable week=table_week.clone() page view_state /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn InvoiceTable(week: String, page: InvoicePage, view_state: Memo<View>) -> impl IntoView {
    let v = view_state.get_untracked();
    if page.rows.is_empty() {
        let message =
            if v.q.is_empty() && !v.flagged { "No invoices this week." } else { "No invoice matches." };
        return view! { <p class="card muted" data-testid="no-invoices">{message}</p> }.into_any();
    }
    let next = page.next_after.map(|after| View { after, invoice: String::new(), ..v.clone() }.href(&week));
    let first = (!v.after.is_empty())
        .then(|| View { after: String::new(), invoice: String::new(), ..v.clone() }.href(&week));
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="invoice-table">
                <thead>
                    <tr>
                        <th>"Passenger"</th>
                        <th>"Name"</th>
                        <th class="num">"Rides"</th>
                        <th class="num">"Late"</th>
                        <th class="num">"Total"</th>
                        <th>"Charge"</th>
                        <th>"Anomalies"</th>
                        <th>"Invoice"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.rows.into_iter().map(|row| {
                        let open = View { invoice: row.user_id.clone(), ..v.clone() }.href(&week);
                        let selected = v.invoice == row.user_id;
                        view! {
                            <tr class:selected=selected data-testid="invoice-row">
                                <td><a href=open data-testid="invoice-link">{row.user_id.clone()}</a></td>
                                <td><a href=format!("/users/{}", crate::components::link::encode(&row.user_id)) data-testid="invoice-customer-link">{row.user_name}</a></td>
                                <td class="num">{row.lines}</td>
                                <td class="num">{(row.late_lines > 0).then(|| view! { <span class="badge badge-info">{row.late_lines}</span> })}</td>
                                <td class="num">{money(row.total)}</td>
                                <td>{row.charge.map(|state| { let class = state_class(&state); view! { <span class=class data-testid="charge-state">{state}</span> } })}</td>
                                <td><AnomalyBadges anomalies=row.anomalies /></td>
                                <td><a href=format!("/invoices/{}", row.id) data-testid="invoice-page-link">"#" {row.id}</a></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <div class="pager">
            {first.map(|href| view! { <a class="btn" href=href>"← First page"</a> })}
            {next.map(|href| view! { <a class="btn" href=href data-testid="invoices-next">"Next page →"</a> })}
        </div>
    }
    .into_any()
}

fn attendance_label(a: Attendance) -> &'static str {
    match a {
        Attendance::Completed => "rode",
        Attendance::NoShow => "no-show",
        Attendance::Cancelled => "cancelled",
    }
}

#[component]
fn InvoicePanel(week: String, user_id: String, view_state: Memo<View>) -> impl IntoView {
    let close = View { invoice: String::new(), ..view_state.get_untracked() }.href(&week);
    let refresh = expect_context::<Refresh>();
    let invoice = resource(
        move || (week.clone(), user_id.clone(), refresh.tables.get()),
        |(w, u, _)| week_invoice(w, u),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading the invoice…"</p> }>
            {move || invoice.get().map(|result| match result {
                Ok(invoice) => view! { <InvoiceCard invoice close=close.clone() /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn InvoiceCard(invoice: InvoiceDetail, close: String) -> impl IntoView {
    let frozen = invoice.status == WeekStatus::Approved;
    let refresh = expect_context::<Refresh>();
    let waived = waived_rows(&invoice.waivers);
    let waivers_panel = invoice.clone();
    view! {
        <section class="card invoice" data-testid="invoice-detail">
            <div class="page-header">
                <h2>
                    "Invoice of " {invoice.user_name.clone()} " "
                    <span class="muted">"(" {invoice.user_id.clone()} ")"</span>
                </h2>
                <a class="btn btn-ghost" href=close data-testid="invoice-close">"Close"</a>
            </div>
            <p>
                <strong class="num" data-testid="invoice-total">{money(invoice.total)}</strong>
                " for " {invoice.lines.len()} " ride(s) · "
                {if frozen { "frozen" } else { "draft" }} " · content hash "
                <code title=invoice.content_hash.clone()>{invoice.content_hash.get(..12).unwrap_or_default().to_string()}</code>
            </p>
            {(!invoice.anomalies.is_empty()).then(|| view! {
                <ul class="plain-list anomalies">
                    {invoice.anomalies.iter().map(|a| view! {
                        <li><span class="badge badge-warning">{a.kind.label()}</span> " " {a.detail.clone()}</li>
                    }).collect_view()}
                </ul>
            })}
            <table class="table" data-testid="invoice-lines">
                <thead>
                    <tr>
                        <th>"Ride"</th>
                        <th>"Ended"</th>
                        <th>"Driver"</th>
                        <th class="num">"Distance"</th>
                        <th>"Seat"</th>
                        <th class="num">"Amount"</th>
                    </tr>
                </thead>
                <tbody>
                    {invoice.lines.into_iter().map(|l| view! {
                        <tr>
                            <td>
                                <code>{l.ride_id.clone()}</code>
                                {l.late.then(|| view! { " " <span class="badge badge-info" title="ended in an earlier, already approved week">"late"</span> })}
                            </td>
                            <td class="nowrap">{l.ended_local}</td>
                            <td>{l.driver_id}</td>
                            <td class="num">{format!("{}.{} km", l.distance_m / 1000, l.distance_m % 1000 / 100)}</td>
                            <td>{attendance_label(l.attendance)}</td>
                            <td class="num">{money(l.amount)}</td>
                        </tr>
                    }).collect_view()}
                    {waived}
                </tbody>
            </table>
            <InvoiceWaivers invoice=waivers_panel changed=refresh.week />
        </section>
    }
}

#[component]
fn PayoutsTab(week: String, view_state: Memo<View>) -> impl IntoView {
    let page_week = week.clone();
    let refresh = expect_context::<Refresh>();
    let page = resource(
        move || (view_state.get().after, refresh.tables.get()),
        move |(after, _)| week_payouts(page_week.clone(), after),
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading payouts…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => view! { <PayoutTable week=week.clone() page view_state /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn PayoutTable(week: String, page: PayoutPage, view_state: Memo<View>) -> impl IntoView {
    if page.rows.is_empty() {
        return view! { <p class="card muted">"No payouts this week."</p> }.into_any();
    }
    let v = view_state.get_untracked();
    let next = page.next_after.map(|after| View { after, ..v.clone() }.href(&week));
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="payout-table">
                <thead>
                    <tr>
                        <th>"Driver"</th>
                        <th>"Name"</th>
                        <th class="num">"Rides"</th>
                        <th class="num">"Passengers paid"</th>
                        <th class="num">"Platform fee"</th>
                        <th class="num">"Payout"</th>
                        <th>"Transfer"</th>
                    </tr>
                </thead>
                <tbody>
                    {page.rows.into_iter().map(|p| view! {
                        <tr data-testid="payout-row">
                            <td>{p.driver_id}</td>
                            <td>{p.driver_name}</td>
                            <td class="num">{p.rides}</td>
                            <td class="num">{money(p.gross)}</td>
                            <td class="num">{money(p.fees)}</td>
                            <td class="num"><strong>{money(p.total)}</strong></td>
                            <td>{p.transfer.map(|state| { let class = state_class(&state); view! { <span class=class>{state}</span> } })}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <div class="pager">
            {next.map(|href| view! { <a class="btn" href=href>"Next page →"</a> })}
        </div>
    }
    .into_any()
}

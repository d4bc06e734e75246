//! `/users` and `/users/:id`: support finds a customer as they type, then sees who they are,
//! their last twelve weeks, and every invoice, charge attempt, refund, ride and payout, newest
//! first and paged. The state (search, list, page) lives in the query string; refunds still
//! under way refresh by themselves.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;

use crate::api::customers::{customer_activity, get_customer, refunds_awaiting, search_users, DecideRefund};
use crate::api::resource;
use crate::auth::Action;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{money, state_class, when};
use crate::components::link::with_query;
use crate::components::stat::Stat;
use crate::model::customer::{ActivityPage, ActivityRows, CustomerProfile, Section, WeekCharges};
use crate::model::refund::RefundView;
use crate::pages::invoice::DecisionButtons;

/// `/users`: search by id, name, email or phone; finance and admin also see the refunds that
/// wait for their approval.
#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| query.with(|p| p.get("q").unwrap_or_default().trim().to_string()));
    let hits = resource(
        move || q.get(),
        |q| async move {
            if q.is_empty() {
                Ok(Vec::new())
            } else {
                search_users(q).await
            }
        },
    );
    let navigate = use_navigate();
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        navigate(
            &with_query("/users", &[("q", value.trim())]),
            NavigateOptions { replace: true, scroll: false, ..Default::default() },
        );
    };
    view! {
        <Title text="Customers" />
        <div class="page-header"><h1>"Customers"</h1></div>
        <form method="get" action="/users" class="card filters" data-testid="user-search">
            <label>
                "Name, email, phone or id"
                <input name="q" type="search" value=move || q.get_untracked() placeholder="Ana, ana@example.com, +1 555, p12"
                    autocomplete="off" autofocus data-testid="user-search-input" on:input=on_input />
            </label>
            <div class="filter-actions"><button type="submit" class="btn">"Search"</button></div>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Searching…"</p> }>
            {move || hits.get().map(|result| match result {
                Ok(hits) if hits.is_empty() && q.get_untracked().is_empty() => view! {
                    <p class="muted">"Type the beginning of a name, an email, a phone number or a customer id."</p>
                }.into_any(),
                Ok(hits) if hits.is_empty() => view! { <p class="card muted" data-testid="no-users">"Nobody matches."</p> }.into_any(),
                Ok(hits) => view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="user-table">
                            <thead><tr><th>"Id"</th><th>"Name"</th><th>"Email"</th><th>"Phone"</th></tr></thead>
                            <tbody>
                                {hits.into_iter().map(|u| view! {
                                    <tr data-testid="user-row">
                                        <td><a href=format!("/users/{}", crate::components::link::encode(&u.id)) data-testid="user-link">{u.id.clone()}</a></td>
                                        <td>{u.name}</td>
                                        <td>{u.email.unwrap_or_default()}</td>
                                        <td class="nowrap">{u.phone.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| ()>
            <Show when=move || crate::SignedIn::can(Action::ApproveRefund)>
                <AwaitingApproval />
            </Show>
        </Transition>
    }
}

/// Refunds support asked for above their limits, waiting for a finance or admin decision.
#[component]
fn AwaitingApproval() -> impl IntoView {
    let tick = crate::components::tick::every(5);
    let decide = ServerAction::<DecideRefund>::new();
    let waiting = resource(move || (tick.get(), decide.version().get()), |_| refunds_awaiting());
    let outcome = move || {
        decide.value().get().map(|result| match result {
            Ok(r) => {
                view! { <Banner focus=true tone=Tone::Success>"Refund #" {r.id} " is " {r.state.label()} "."</Banner> }
                    .into_any()
            }
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };
    view! {
        <section class="section">
            <h2>"Refunds waiting for approval"</h2>
            {outcome}
            <Transition fallback=|| ()>
                {move || waiting.get().map(|result| match result {
                    Ok(refunds) if refunds.is_empty() => view! { <p class="muted" data-testid="no-awaiting">"None."</p> }.into_any(),
                    Ok(refunds) => view! { <RefundTable refunds show_invoice=true decide /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// A list of refunds with their state, amount, reason and who asked. The queue (`show_invoice`,
/// with `decide`) links each to its invoice and has its Approve and Reject buttons in place of the
/// provider's references.
#[component]
pub fn RefundTable(
    refunds: Vec<RefundView>,
    #[prop(optional)] show_invoice: bool,
    #[prop(optional)] decide: Option<ServerAction<DecideRefund>>,
    /// The business time zone to write the moments in (UTC when not given).
    #[prop(optional, into)]
    zone: String,
) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="refund-table">
                <thead><tr>
                    <th>"Refund"</th>
                    {show_invoice.then(|| view! { <th>"Invoice"</th> })}
                    <th>"State"</th><th class="num">"Amount"</th><th>"Reason"</th><th>"Requested"</th>
                    {if decide.is_some() {
                        view! { <th>"Decision"</th> }.into_any()
                    } else {
                        view! { <th>"Decided"</th><th>"Provider"</th> }.into_any()
                    }}
                </tr></thead>
                <tbody>
                    {refunds.into_iter().map(|r| view! {
                        <tr data-testid="refund-row">
                            <td class="nowrap">"#" {r.id} {(r.kind == "repair").then(|| view! { " " <span class="badge badge-info" title="gives back a charge the ledger does not explain">"repair"</span> })}</td>
                            {show_invoice.then(|| view! { <td><a href=format!("/invoices/{}", r.invoice_id) data-testid="refund-invoice-link">"#" {r.invoice_id} " · " {r.user_id.clone()}</a></td> })}
                            <td>
                                <span class=state_class(r.state.as_str()) data-testid="refund-state">{r.state.label()}</span>
                                {r.detail.clone().map(|d| view! { <div class="muted small">{d}</div> })}
                            </td>
                            <td class="num" data-testid="refund-amount">{money(r.amount)}</td>
                            <td>{r.reason.label()} {(!r.note.is_empty()).then(|| view! { <div class="muted small">{r.note.clone()}</div> })}</td>
                            <td class="nowrap">{r.requested_by.clone()} <div class="muted small" data-testid="refund-requested-at">{when(&r.requested_at, &zone)}</div></td>
                            {match decide {
                                Some(decide) => view! { <td><DecisionButtons refund=r.clone() decide /></td> }.into_any(),
                                None => view! {
                                    <td class="nowrap">{r.decided_by.clone().unwrap_or_default()} {r.decision_note.clone().map(|n| view! { <div class="muted small">{n}</div> })}</td>
                                    <td class="mono small">{r.provider_id.clone().unwrap_or_default()} <div class="muted">{r.idempotency_key.clone()} " · " {r.attempts} " call(s)"</div></td>
                                }.into_any(),
                            }}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// `/users/:id`: one customer.
#[component]
pub fn CustomerPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").unwrap_or_default()));
    let section = Memo::new(move |_| {
        query.with(|q| q.get("tab").and_then(|t| Section::parse(&t)).unwrap_or(Section::Invoices))
    });
    let before = Memo::new(move |_| query.with(|q| q.get("before").unwrap_or_default()));
    // The lists refresh while a refund of this customer is under way (the profile, whose
    // every read is audited, is read once).
    let tick = crate::components::tick::every(3);
    let open = RwSignal::new(false);
    let refresh = Memo::new(move |_| if open.get() { tick.get() } else { 0 });
    let profile = resource(move || id.get(), get_customer);
    let page = resource(
        move || (id.get(), section.get(), before.get(), refresh.get()),
        |(id, section, before, _)| customer_activity(id, section.as_str().to_string(), before),
    );
    Effect::new(move |_| {
        if let Some(Ok(p)) = profile.get() {
            open.set(p.open_refunds > 0);
        }
    });
    view! {
        <Title text=move || format!("Customer {}", id.get()) />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || profile.get().map(|result| match result {
                Ok(profile) => view! { <ProfileHead profile /> }.into_any(),
                Err(error) => view! {
                    <div class="page-header"><h1>"Customer " {id.get()}</h1></div>
                    <ErrorNotice error />
                }.into_any(),
            })}
        </Transition>
        // An unknown customer is said once, by the head, with no lists under it.
        <Transition fallback=|| ()>
        <Show when=move || profile.get().is_none_or(|r| r.is_ok())>
        <nav class="tabs" aria-label="Lists">
            {move || Section::ALL.into_iter().map(|s| {
                let href = with_query(&format!("/users/{}", crate::components::link::encode(&id.get())), &[("tab", s.as_str())]);
                view! { <a href=href aria-current=(section.get() == s).then_some("page") data-testid=format!("tab-{}", s.as_str())>{s.title()}</a> }
            }).collect_view()}
        </nav>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => view! { <ActivityList id=id.get() section=section.get() page paged=!before.get().is_empty() /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        </Show>
        </Transition>
    }
}

#[component]
fn ProfileHead(profile: CustomerProfile) -> impl IntoView {
    let contact =
        [profile.email.clone(), profile.phone.clone()].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    view! {
        <div class="page-header">
            <div>
                <h1 data-testid="customer-name">{profile.name.clone()} " " <span class="muted mono">{profile.id.clone()}</span></h1>
                <p class="muted">
                    {contact} " · language " {profile.language.clone()} " · since " {profile.created_at.get(..10).unwrap_or_default().to_string()}
                    {profile.is_driver.then(|| view! { " · " <span class="badge badge-info">"driver"</span> })}
                </p>
            </div>
        </div>
        <ProviderRefs profile=profile.clone() />
        <div class="stats">
            <Stat label="Charged in all" value=crate::components::format::grouped(profile.charged_total) unit=profile.currency.clone() testid="customer-charged" />
            <Stat label="Refunded" value=crate::components::format::grouped(profile.refunded_total) unit=profile.currency.clone() testid="customer-refunded" />
            <Stat label="Refunds under way" value=profile.open_refunds.to_string() testid="customer-open-refunds" />
        </div>
        {(!profile.disputes.is_empty()).then(|| {
            let zone = profile.time_zone.clone();
            view! {
                <section class="card" data-testid="customer-disputes">
                    <h2>"Disputed by the card issuer"</h2>
                    <div class="table-wrap">
                        <table class="table">
                            <thead><tr><th>"Invoice"</th><th class="num">"Amount"</th><th>"Reason"</th><th>"Status"</th><th>"Evidence due"</th></tr></thead>
                            <tbody>{profile.disputes.iter().map(|d| view! {
                                <tr data-testid="customer-dispute">
                                    <td><a href=format!("/invoices/{}#dispute", d.invoice_id)>"#" {d.invoice_id}</a> " · " {d.week.clone()}</td>
                                    <td class="num">{crate::components::format::money(d.amount)}</td>
                                    <td>{d.reason.replace('_', " ")}</td>
                                    <td><span class=crate::pages::disputes::status_class(&d.status)>{d.status.replace('_', " ")}</span></td>
                                    <td class="nowrap">{d.evidence_due_at.as_deref().map(|at| crate::components::format::when(at, &zone)).unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    </div>
                </section>
            }
        })}
        <section class="card">
            <h2>"Last twelve weeks"</h2>
            <WeekChart weeks=profile.weeks.clone() />
            <div class="week-strip" data-testid="week-strip">
                {profile.weeks.into_iter().map(|w| {
                    let label = w.week.get(5..).unwrap_or_default().to_string();
                    let body = view! {
                        <div class="week-cell-label">{label}</div>
                        <div class="num">{if w.invoiced.minor() == 0 { "–".to_string() } else { w.invoiced.to_string() }}</div>
                        {(w.refunded.minor() > 0).then(|| view! { <div class="num small">"−" {w.refunded.to_string()}</div> })}
                        {(w.state != "none").then(|| view! { <span class=state_class(&w.state)>{w.state.clone()}</span> })}
                    };
                    match w.invoice_id {
                        Some(invoice) => view! { <a class="week-cell" href=format!("/invoices/{invoice}") data-testid="week-cell">{body}</a> }.into_any(),
                        None => view! { <div class="week-cell" data-testid="week-cell">{body}</div> }.into_any(),
                    }
                }).collect_view()}
            </div>
        </section>
    }
}

/// The customer's objects at the payment provider, as the carpool app sent them, and what is
/// missing for the weekly run: a rider without a customer and card cannot be charged, a driver
/// without a connected account cannot be paid.
#[component]
fn ProviderRefs(profile: CustomerProfile) -> impl IntoView {
    let row = |label: &'static str, value: Option<String>, needed: bool, testid: &'static str| {
        let value = match value {
            Some(id) => view! { <dd class="mono" data-testid=testid>{id}</dd> }.into_any(),
            None if needed => {
                view! { <dd data-testid=testid><span class="badge badge-warning">"missing"</span></dd> }
                    .into_any()
            }
            None => view! { <dd class="muted" data-testid=testid>"–"</dd> }.into_any(),
        };
        view! { <dt>{label}</dt> {value} }
    };
    let rider = !profile.is_driver || profile.provider_customer_id.is_some();
    view! {
        <section class="card" aria-labelledby="provider-refs-title">
            <h2 id="provider-refs-title">"At the payment provider"</h2>
            <dl class="facts" data-testid="provider-refs">
                {row("Customer", profile.provider_customer_id.clone(), rider, "ref-customer")}
                {row("Card", profile.provider_payment_method_id.clone(), rider, "ref-card")}
                {row("Payout account", profile.provider_account_id.clone(), profile.is_driver, "ref-account")}
            </dl>
        </section>
    }
}

/// Bars of what was charged (and refunded) each of the last twelve weeks, drawn as SVG.
#[component]
fn WeekChart(weeks: Vec<WeekCharges>) -> impl IntoView {
    const W: i64 = 600;
    const H: i64 = 120;
    let most = weeks.iter().map(|w| w.invoiced.minor()).max().unwrap_or(0).max(1);
    let slot = W / weeks.len().max(1) as i64;
    let bars = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let x = i as i64 * slot + slot / 6;
            let width = slot * 2 / 3;
            let height = |minor: i64| minor * (H - 20) / most;
            let (charged, refunded) = (height(w.charged.minor()), height(w.refunded.minor()));
            let invoiced = height(w.invoiced.minor());
            let title = format!("{}: invoiced {}, charged {}, refunded {}", w.week, money(w.invoiced), money(w.charged), money(w.refunded));
            view! {
                <g>
                    <title>{title}</title>
                    <rect x=x y=H - 16 - invoiced width=width height=invoiced class="bar-invoiced" />
                    <rect x=x y=H - 16 - charged width=width height=charged class="bar-charged" />
                    <rect x=x y=H - 16 - refunded width=width height=refunded class="bar-refunded" />
                    <text x=x + width / 2 y=H - 2 text-anchor="middle" class="chart-label">{w.week.get(6..).unwrap_or_default().to_string()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label="Charges of the last twelve weeks" data-testid="week-chart">
            {bars}
        </svg>
        <p class="muted small chart-legend">
            <span class="legend legend-charged">"charged"</span> " "
            <span class="legend legend-invoiced">"invoiced, not charged"</span> " "
            <span class="legend legend-refunded">"refunded"</span>
        </p>
    }
}

#[component]
fn ActivityList(id: String, section: Section, page: ActivityPage, paged: bool) -> impl IntoView {
    let zone = page.time_zone;
    let path = format!("/users/{}", crate::components::link::encode(&id));
    let older = page.next.map(|before| with_query(&path, &[("tab", section.as_str()), ("before", &before)]));
    let newest = paged.then(|| with_query(&path, &[("tab", section.as_str())]));
    let table = match page.rows {
        ActivityRows::Invoices(rows) if !rows.is_empty() => view! {
            <table class="table" data-testid="customer-invoices">
                <thead><tr><th>"Invoice"</th><th>"Week"</th><th class="num">"Lines"</th><th class="num">"Total"</th><th>"Charge"</th><th class="num">"Refunded"</th></tr></thead>
                <tbody>{rows.into_iter().map(|i| view! {
                    <tr data-testid="customer-invoice-row">
                        <td><a href=format!("/invoices/{}", i.id) data-testid="customer-invoice-link">"#" {i.id}</a></td>
                        <td>
                            {i.week}
                            {(!i.approved).then(|| view! {
                                " " <span class="badge badge-warning" title="Its week is not approved yet: this invoice can still change" data-testid="draft-badge">"draft"</span>
                            })}
                        </td>
                        <td class="num">{i.lines}</td>
                        <td class="num">{money(i.total)}</td>
                        <td>{i.charge.map(|s| view! { <span class=state_class(&s)>{s.clone()}</span> })}</td>
                        <td class="num">{(i.refunded.minor() > 0).then(|| money(i.refunded))}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        }.into_any(),
        ActivityRows::Attempts(rows) if !rows.is_empty() => view! { <AttemptTable rows zone /> }.into_any(),
        ActivityRows::Refunds(rows) if !rows.is_empty() => view! { <RefundTable refunds=rows show_invoice=true zone /> }.into_any(),
        ActivityRows::Rides(rows) if !rows.is_empty() => view! {
            <table class="table" data-testid="customer-rides">
                <thead><tr><th>"Ride"</th><th>"As"</th><th>"Driver"</th><th>"Ended"</th><th class="num">"Distance"</th><th class="num">"Billed"</th></tr></thead>
                <tbody>{rows.into_iter().map(|r| view! {
                    <tr>
                        <td class="mono">{r.ride_id}</td>
                        <td>{r.role}</td>
                        <td>{r.driver_id}</td>
                        <td class="nowrap" data-testid="ride-ended-at">{when(&r.ended_at, &zone)}</td>
                        <td class="num">{format!("{}.{} km", r.distance_m / 1000, r.distance_m % 1000 / 100)}</td>
                        <td class="num">{match (r.billed, r.invoice_id) {
                            (Some(m), Some(i)) => view! { <a href=format!("/invoices/{i}")>{money(m)}</a> }.into_any(),
                            _ => view! { "" }.into_any(),
                        }}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        }.into_any(),
        ActivityRows::Payouts(rows) if !rows.is_empty() => view! {
            <table class="table" data-testid="customer-payouts">
                <thead><tr><th>"Payout"</th><th>"Week"</th><th class="num">"Amount"</th><th>"Transfer"</th></tr></thead>
                <tbody>{rows.into_iter().map(|p| view! {
                    <tr>
                        <td>"#" {p.id}</td>
                        <td><a href=format!("/weeks/{}?tab=payouts", p.week)>{p.week.clone()}</a></td>
                        <td class="num">{money(p.total)}</td>
                        <td>{p.transfer.map(|s| view! { <span class=state_class(&s)>{s.clone()}</span> })}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        }.into_any(),
        _ => view! { <p class="card muted" data-testid="empty-list">"Nothing here."</p> }.into_any(),
    };
    view! {
        <div class="table-wrap">{table}</div>
        <div class="pager">
            {newest.map(|href| view! { <a class="btn" href=href>"← Newest"</a> })}
            {older.map(|href| view! { <a class="btn" href=href data-testid="older">"Older →"</a> })}
        </div>
    }
}

/// Charge attempts: key, outcome, provider id, timing.
#[component]
pub fn AttemptTable(
    rows: Vec<crate::model::customer::ChargeAttemptView>,
    /// The business time zone to write the moments in (UTC when not given).
    #[prop(optional, into)]
    zone: String,
) -> impl IntoView {
    view! {
        <table class="table" data-testid="attempt-table">
            <thead><tr><th>"Invoice"</th><th>"#"</th><th>"Outcome"</th><th class="num">"Amount"</th><th>"Idempotency key"</th><th>"Provider id"</th><th>"Started"</th><th class="num">"Took"</th></tr></thead>
            <tbody>{rows.into_iter().map(|a| view! {
                <tr data-testid="attempt-row">
                    <td><a href=format!("/invoices/{}", a.invoice_id)>"#" {a.invoice_id}</a> <span class="muted small">{a.week}</span></td>
                    <td class="num">{a.attempt}</td>
                    <td><span class=state_class(&a.outcome) data-testid="attempt-outcome">{a.outcome.clone()}</span>
                        {a.detail.map(|d| view! { <div class="muted small">{d}</div> })}</td>
                    <td class="num">{money(a.amount)}</td>
                    <td class="mono small" data-testid="attempt-key">{a.idempotency_key}</td>
                    <td class="mono small">{a.provider_id.unwrap_or_default()}</td>
                    <td class="nowrap small">{when(&a.started_at, &zone)} <div class="muted" title="The process that made the call: host, process id and worker number">"by worker " {a.worker}</div></td>
                    <td class="num">{a.millis.map(|m| format!("{m} ms"))}</td>
                </tr>
            }).collect_view()}</tbody>
        </table>
    }
}

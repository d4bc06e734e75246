//! `/disputes` (finance and admin): card issuers' disputes by evidence deadline, the soonest
//! first, with the counts by status (each a filter, `?status=`); each row leads to its invoice,
//! where the evidence is sent. The invoice page's dispute panel (`DisputePanel`) lives here too.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::disputes::{list_disputes, SendEvidence};
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{money, when};
use crate::model::dispute::{DisputeView, DisputesPage};

/// The badge of a dispute status.
pub fn status_class(status: &str) -> &'static str {
    match status {
        "won" | "warning_closed" => "badge badge-success",
        "lost" => "badge badge-danger",
        "needs_response" | "warning_needs_response" => "badge badge-warning",
        _ => "badge badge-info",
    }
}

fn status_label(status: &str) -> String {
    status.replace('_', " ")
}

#[component]
pub fn DisputesPage() -> impl IntoView {
    let query = use_query_map();
    let status = Memo::new(move |_| query.with(|q| q.get("status").unwrap_or_default().trim().to_string()));
    let page = resource(move || status.get(), list_disputes);
    view! {
        <Title text="Disputes" />
        <div class="page-header">
            <div>
                <h1>"Disputes"</h1>
                <p class="muted">"Card issuers taking charges back. Send the evidence before it is due: from the invoice, in one action."</p>
            </div>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => view! { <Queue page /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Queue(page: DisputesPage) -> impl IntoView {
    let total: i64 = page.counts.iter().map(|(_, n)| n).sum();
    let filtered = page.status.clone();
    let zone = page.time_zone.clone();
    view! {
        <nav class="dispute-counts" aria-label="Dispute status" data-testid="dispute-counts">
            <a class="btn" class:btn-primary=filtered.is_none() href="/disputes">"All " <span class="badge">{total}</span></a>
            {page.counts.iter().map(|(status, n)| {
                let current = filtered.as_deref() == Some(status.as_str());
                view! {
                    <a class="btn" class:btn-primary=current href=format!("/disputes?status={status}") data-testid="dispute-count">
                        {status_label(status)} " " <span class=status_class(status)>{*n}</span>
                    </a>
                }
            }).collect_view()}
        </nav>
        {if page.disputes.is_empty() {
            view! { <p class="card muted" data-testid="no-disputes">"No dispute."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="table" data-testid="dispute-table">
                        <thead>
                            <tr>
                                <th>"Evidence due"</th>
                                <th>"Invoice"</th>
                                <th>"Customer"</th>
                                <th class="num">"Amount"</th>
                                <th>"Reason"</th>
                                <th>"Status"</th>
                                <th>"Evidence"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {page.disputes.into_iter().map(|d| {
                                let due = d.evidence_due_at.as_deref().map(|at| when(at, &zone)).unwrap_or_else(|| "none".into());
                                let evidence = match (&d.evidence_sent_at, d.can_send_evidence()) {
                                    (Some(at), _) => format!("sent {} by {}", when(at, &zone), d.evidence_by.clone().unwrap_or_default()),
                                    (None, true) => "to send".into(),
                                    (None, false) => "none".into(),
                                };
                                view! {
                                    <tr data-testid="dispute-row">
                                        <td class="nowrap">{due}</td>
                                        <td><a href=format!("/invoices/{}#dispute", d.invoice_id) data-testid="dispute-invoice">"#" {d.invoice_id}</a> " · " {d.week.clone()}</td>
                                        <td><a href=format!("/users/{}", crate::components::link::encode(&d.user_id))>{d.user_id.clone()}</a></td>
                                        <td class="num">{money(d.amount)}</td>
                                        <td>{status_label(&d.reason)}</td>
                                        <td><span class=status_class(&d.status) data-testid="dispute-status">{status_label(&d.status)}</span></td>
                                        <td class="small">{evidence}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}

/// The invoice page's disputes: each with its reason, amount, status and deadline, and, for
/// finance and admin while the issuer waits, the form that sends the evidence.
#[component]
pub fn DisputePanel(disputes: Vec<DisputeView>, #[prop(into)] zone: String) -> impl IntoView {
    let send = ServerAction::<SendEvidence>::new();
    let may_send = move || crate::SignedIn::can(crate::auth::Action::ManageDisputes);
    let sent = move || send.value().get().and_then(Result::ok);
    view! {
        <section class="section card" id="dispute" data-testid="dispute-panel">
            <h2>"Disputed by the card issuer"</h2>
            <p class="muted">"The issuer decides where this money goes: the charge cannot be refunded while it is disputed."</p>
            {move || send.value().get().map(|result| match result {
                Ok(d) => view! { <Banner focus=true tone=Tone::Success>"Evidence sent: dispute " {d.provider_id} " is " {status_label(&d.status)} "."</Banner> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
            {disputes.into_iter().map(|d| {
                let zone = zone.clone();
                let due = d.evidence_due_at.as_deref().map(|at| when(at, &zone));
                let id = d.id;
                let open_form = d.can_send_evidence();
                let status = d.status.clone();
                let form_zone = zone.clone();
                view! {
                    <dl class="facts" data-testid="dispute">
                        <dt>"Dispute"</dt><dd class="mono">{d.provider_id.clone()}</dd>
                        <dt>"Status"</dt>
                        <dd>{move || {
                            let now = sent().filter(|s| s.id == id).map(|s| s.status).unwrap_or_else(|| status.clone());
                            view! { <span class=status_class(&now) data-testid="dispute-status">{status_label(&now)}</span> }
                        }}</dd>
                        <dt>"Reason"</dt><dd>{status_label(&d.reason)}</dd>
                        <dt>"Amount"</dt><dd>{money(d.amount)} {(d.fee.minor() != 0).then(|| format!(" (dispute fee {})", money(d.fee)))}</dd>
                        <dt>"Opened"</dt><dd>{when(&d.opened_at, &zone)}</dd>
                        {due.map(|due| view! { <dt>"Evidence due"</dt><dd data-testid="dispute-due">{due}</dd> })}
                        {d.evidence_sent_at.clone().map(|at| view! {
                            <dt>"Evidence"</dt>
                            <dd>"sent " {when(&at, &form_zone)} " by " {d.evidence_by.clone().unwrap_or_default()}
                                {d.evidence_note.clone().filter(|n| !n.is_empty()).map(|n| view! { <div class="muted small">{n}</div> })}
                            </dd>
                        })}
                        {d.closed_at.clone().map(|at| view! { <dt>"Decided"</dt><dd>{when(&at, &form_zone)}</dd> })}
                    </dl>
                    {move || (open_form && may_send() && sent().is_none_or(|s| s.id != id)).then(|| view! {
                        <ActionForm action=send attr:class="form" attr:data-testid="evidence-form">
                            <input type="hidden" name="dispute_id" value=id />
                            <p class="small">"Sends the receipt, every ride line with its times, distance and driver, and the charge attempts, with your note, and submits them to the issuer. It can be sent once."</p>
                            <label>"Note to the issuer (optional)"
                                <textarea name="note" rows="3" maxlength="5000" data-testid="evidence-note"></textarea>
                            </label>
                            <button type="submit" class="btn btn-primary" data-testid="send-evidence">"Send the evidence"</button>
                        </ActionForm>
                    })}
                }
            }).collect_view()}
        </section>
    }
}

//! `/invoices/:id`: everything about one invoice on one page (lines, every charge attempt,
//! refunds and their provider calls, ledger entries, audit trail) and the refund form; and
//! `/invoices/:id/receipt`, the printable receipt.
//!
//! The refund form carries a request id made when the page opened: a double click, a retry or a
//! second tab sends the same id, and the server makes one refund of it. A new id is taken only
//! when one asks for another refund. Refunds under way refresh by themselves.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::customers::{get_invoice, invoice_refunds, CreateRefund, DecideRefund};
use crate::api::resource;
use crate::auth::Action;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{money, state_class, when};
use crate::components::stat::Stat;
use crate::model::money::Money;
use crate::model::refund::{InvoiceRecord, RefundReason, RefundState, RefundView};
use crate::pages::customers::{AttemptTable, RefundTable};

fn invoice_id() -> Memo<i64> {
    let params = use_params_map();
    Memo::new(move |_| params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)))
}

/// `/invoices/:id`.
#[component]
pub fn InvoicePage() -> impl IntoView {
    let id = invoice_id();
    let create = ServerAction::<CreateRefund>::new();
    let decide = ServerAction::<DecideRefund>::new();
    let record = resource(
        move || (id.get(), create.version().get(), decide.version().get()),
        |(id, _, _)| get_invoice(id),
    );
    // The form's request id: the one the page opened with, kept across the page's refreshes,
    // so a second click after the first refund came back is still the same request.
    let request_id: RwSignal<Option<String>> = RwSignal::new(None);
    Effect::new(move |_| {
        if let Some(Ok(r)) = record.get() {
            if request_id.get_untracked().is_none() {
                request_id.set(Some(r.new_request_id));
            }
        }
    });
    view! {
        <Title text=move || format!("Invoice #{}", id.get()) />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || record.get().map(|result| match result {
                Ok(record) => view! { <InvoiceView record create decide request_id /> }.into_any(),
                Err(error) => view! {
                    <div class="page-header"><h1>"Invoice #" {id.get()}</h1></div>
                    <ErrorNotice error />
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn InvoiceView(
    record: InvoiceRecord,
    create: ServerAction<CreateRefund>,
    decide: ServerAction<DecideRefund>,
    request_id: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = record.id;
    let currency = record.total.currency().code().to_string();
    let zone = StoredValue::new(record.time_zone.clone());
    let charge = record.charge.clone().unwrap_or_else(|| "not run".into());
    // The refunds, polled while one of them may still change.
    let tick = crate::components::tick::every(2);
    let initial = record.refunds.clone();
    let any_open = initial.iter().any(|r| r.state.open());
    let polled = resource(
        move || if any_open { tick.get() } else { 0 },
        move |t| async move {
            if t == 0 {
                Ok(None)
            } else {
                invoice_refunds(id).await.map(Some)
            }
        },
    );
    let refunds = Signal::derive(move || {
        polled.get().and_then(Result::ok).flatten().unwrap_or_else(|| initial.clone())
    });
    view! {
        <div class="page-header">
            <div>
                <h1>"Invoice #" {id} " " <span class=state_class(&charge) data-testid="invoice-charge">{charge.clone()}</span></h1>
                <p class="muted">
                    <a href=format!("/users/{}", crate::components::link::encode(&record.user_id)) data-testid="invoice-customer">{record.user_name.clone()} " (" {record.user_id.clone()} ")"</a>
                    " · week " <a href=format!("/weeks/{}", record.week)>{record.week.clone()}</a>
                </p>
            </div>
            <a class="btn" href=format!("/invoices/{id}/receipt") data-testid="receipt-link">"Receipt"</a>
        </div>
        <div class="stats">
            <Stat label="Total" value=crate::components::format::grouped(record.total) unit=currency.clone() testid="invoice-total" />
            <Stat label="Charged" value=crate::components::format::grouped(record.charged) unit=currency.clone() testid="invoice-charged" />
            <Stat label="Refunded" value=crate::components::format::grouped(record.refunded) unit=currency.clone() testid="invoice-refunded" />
            <Stat label="Refundable" value=crate::components::format::grouped(record.refundable) unit=currency.clone() testid="invoice-refundable" />
        </div>
        {(!record.disputes.is_empty()).then(|| view! {
            <crate::pages::disputes::DisputePanel disputes=record.disputes.clone() zone=zone.get_value() />
        })}
        {if record.disputes.iter().any(|d| d.status != "won" && d.status != "warning_closed") {
            view! {
                <section class="section card" data-testid="refund-closed">
                    <h2>"Refund"</h2>
                    <p class="muted">"The card issuer disputes this charge: it cannot be refunded while the issuer decides, nor once it took the money back. Answer the dispute above."</p>
                </section>
            }.into_any()
        } else {
            view! { <RefundPanel record=record.clone() create request_id /> }.into_any()
        }}
        <section class="section">
            <h2>"Refunds"</h2>
            {move || {
                let list = refunds.get();
                if list.is_empty() {
                    view! { <p class="muted" data-testid="no-refunds">"No refund."</p> }.into_any()
                } else {
                    view! {
                        <RefundTable refunds=list.clone() zone=zone.get_value() />
                        <Decisions refunds=list decide />
                    }.into_any()
                }
            }}
        </section>
        <section class="section">
            <h2>"Lines"</h2>
            <div class="table-wrap">
                <table class="table" data-testid="line-table">
                    <thead><tr><th>"Ride"</th><th>"Driver"</th><th>"Ended"</th><th class="num">"Distance"</th><th class="num">"Amount"</th></tr></thead>
                    <tbody>{record.lines.iter().map(|l| view! {
                        <tr>
                            <td class="mono">{l.ride_id.clone()} {l.late.then(|| view! { " " <span class="badge badge-info">"late"</span> })}</td>
                            <td>{l.driver_id.clone()}</td>
                            <td class="nowrap">{l.ended_local.clone()}</td>
                            <td class="num">{format!("{}.{} km", l.distance_m / 1000, l.distance_m % 1000 / 100)}</td>
                            <td class="num">{money(l.amount)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            </div>
        </section>
        <section class="section">
            <h2>"Charge attempts"</h2>
            {if record.attempts.is_empty() {
                view! { <p class="muted">"None: the week's run has not charged this invoice."</p> }.into_any()
            } else {
                view! { <div class="table-wrap"><AttemptTable rows=record.attempts.clone() zone=zone.get_value() /></div> }.into_any()
            }}
        </section>
        {(!record.refund_attempts.is_empty()).then(|| view! {
            <section class="section">
                <h2>"Refund calls to the provider"</h2>
                <div class="table-wrap">
                    <table class="table" data-testid="refund-attempt-table">
                        <thead><tr><th>"Refund"</th><th>"Call"</th><th>"Outcome"</th><th>"Provider id"</th><th>"Started"</th><th>"Finished"</th></tr></thead>
                        <tbody>{record.refund_attempts.iter().map(|a| view! {
                            <tr>
                                <td>"#" {a.refund_id}</td>
                                <td class="num">{a.attempt}</td>
                                <td><span class=state_class(&a.outcome)>{a.outcome.clone()}</span> {a.detail.clone().map(|d| view! { <div class="muted small">{d}</div> })}</td>
                                <td class="mono small">{a.provider_id.clone().unwrap_or_default()}</td>
                                <td class="nowrap small">{when(&a.started_at, &zone.get_value())}</td>
                                <td class="nowrap small">{a.finished_at.as_deref().map(|t| when(t, &zone.get_value())).unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
                </div>
            </section>
        })}
        <section class="section">
            <h2>"Ledger"</h2>
            {if record.ledger.is_empty() {
                view! { <p class="muted">"No money has moved for this invoice."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="ledger-table">
                            <thead><tr><th>"Transaction"</th><th>"Kind"</th><th>"Account"</th><th class="num">"Debit"</th><th class="num">"Credit"</th><th>"At"</th></tr></thead>
                            <tbody>{record.ledger.iter().flat_map(|t| t.postings.iter().map(move |(account, amount)| {
                                let debit = (amount.minor() > 0).then(|| money(*amount));
                                let credit = (amount.minor() < 0).then(|| money(Money::from_minor(-amount.minor(), amount.currency())));
                                view! {
                                    <tr data-testid="ledger-row">
                                        <td>"#" {t.transaction_id} " " <span class="muted small">{t.reference.clone()}</span></td>
                                        <td>{t.kind.clone()}</td>
                                        <td class="mono small">{account.clone()}</td>
                                        <td class="num">{debit}</td>
                                        <td class="num">{credit}</td>
                                        <td class="nowrap small">{when(&t.created_at, &zone.get_value())}</td>
                                    </tr>
                                }
                            })).collect_view()}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
        <section class="section">
            <h2>"Audit trail"</h2>
            {if record.audit.is_empty() {
                view! { <p class="muted">"Nothing recorded yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="invoice-audit">
                            <thead><tr><th>"At"</th><th>"Who"</th><th>"What"</th><th>"Detail"</th></tr></thead>
                            <tbody>{record.audit.iter().map(|e| view! {
                                <tr>
                                    <td class="nowrap small">{when(&e.at, &zone.get_value())}</td>
                                    <td>{e.actor.clone()}</td>
                                    <td><code>{e.action.clone()}</code></td>
                                    <td class="small">{e.detail.clone().unwrap_or_default()}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

/// The refund form: the whole refundable amount, a part of it, or chosen lines; a reason and a
/// note. Support sees their own limit and that above it the refund waits for approval.
#[component]
fn RefundPanel(
    record: InvoiceRecord,
    create: ServerAction<CreateRefund>,
    request_id: RwSignal<Option<String>>,
) -> impl IntoView {
    let may_refund = move || crate::SignedIn::can(Action::Refund);
    let id = record.id;
    let currency = record.total.currency();
    let fresh_id = StoredValue::new(record.new_request_id.clone());
    let current_id = move || request_id.get().unwrap_or_else(|| fresh_id.get_value());
    // Nothing is chosen for staff: no amount and no reason until they pick them.
    let amount = RwSignal::new(String::new());
    let reason = RwSignal::new(String::new());
    let refundable = record.refundable;
    let chosen: RwSignal<Vec<String>> = RwSignal::new(Vec::new());
    let lines = StoredValue::new(record.lines.clone());
    let toggle = move |ride: String, on: bool| {
        chosen.update(|c| {
            c.retain(|r| *r != ride);
            if on {
                c.push(ride);
            }
        });
        let picked = chosen.get_untracked();
        if !picked.is_empty() {
            let sum = lines.with_value(|ls| {
                Money::sum(currency, ls.iter().filter(|l| picked.contains(&l.ride_id)).map(|l| l.amount))
            });
            if let Ok(sum) = sum {
                amount.set(sum.to_string());
            }
        }
    };
    let result = move || {
        create.value().get().map(|r| match r {
            Ok(answer) => {
                let (tone, text) = match (answer.outcome.as_str(), answer.refund.state) {
                    ("awaiting_approval", _) => (Tone::Warning, "is above your limit and waits for a finance or admin approval"),
                    ("existing", _) => (Tone::Info, "was already made by this form; nothing more was refunded"),
                    (_, RefundState::Succeeded) => (Tone::Success, "was made"),
                    (_, RefundState::Failed) => (Tone::Danger, "was refused by the provider; it is shown below and asked again"),
                    _ => (Tone::Info, "is on its way to the provider"),
                };
                view! {
                    <Banner focus=true tone>
                        <span data-testid="refund-result">"Refund #" {answer.refund.id} " of " {money(answer.refund.amount)} " " {text} "."</span>
                        " "
                        <button type="button" class="btn btn-ghost" data-testid="another-refund"
                            on:click=move |_| {
                                request_id.set(Some(fresh_id.get_value()));
                                amount.set(String::new());
                                reason.set(String::new());
                                chosen.set(Vec::new());
                            }>"Start another refund"</button>
                    </Banner>
                }
                .into_any()
            }
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };
    let (caller_limit, daily, left) =
        (record.caller_limit, record.caller_daily_limit, record.caller_daily_left);
    let limit = move || {
        caller_limit.map(|l| {
            view! {
                <p class="muted small" data-testid="refund-limit">
                    "You refund alone up to " {money(l)} " at a time and " {daily.map(money)} " a day; "
                    <strong data-testid="refund-daily-left">{left.map(money)}</strong> " is left today. "
                    "Above that, a refund waits for a finance or admin approval."
                </p>
            }
        })
    };
    if record.charge.as_deref() != Some("charged") {
        return view! {
            <section class="card"><h2>"Refund"</h2><p class="muted">"This invoice was not charged, so there is nothing to refund."</p></section>
        }.into_any();
    }
    view! {
        <Show when=may_refund>
            <section class="card refund-panel" data-testid="refund-panel">
                <h2>"Refund"</h2>
                {result}
                {limit()}
                <ActionForm action=create attr:class="form" attr:data-testid="refund-form">
                    <input type="hidden" name="invoice_id" value=id />
                    <input type="hidden" name="request_id" prop:value=current_id data-testid="refund-request-id" />
                    <input type="hidden" name="lines" prop:value=move || chosen.get().join(",") />
                    <div class="form-inline" role="group" aria-label="What to refund">
                        <button type="button" class="btn" data-testid="refund-whole"
                            on:click=move |_| { chosen.set(Vec::new()); amount.set(refundable.to_string()); }>
                            "The whole invoice (" {money(refundable)} ")"
                        </button>
                        <span class="muted small">"or choose lines below, or type an amount."</span>
                    </div>
                    <fieldset class="refund-lines">
                        <legend>"Chosen lines (the amount is their sum)"</legend>
                        {lines.get_value().into_iter().map(|l| {
                            let ride = l.ride_id.clone();
                            let checked_ride = l.ride_id.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox" data-testid="refund-line"
                                        prop:checked=move || chosen.with(|c| c.contains(&checked_ride))
                                        on:change=move |ev| toggle(ride.clone(), event_target_checked(&ev)) />
                                    " " {l.ride_id.clone()} " · " {money(l.amount)}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                    <div class="form-inline">
                        <label>
                            "Amount (" {currency.code()} ")"
                            <input name="amount" inputmode="decimal" required placeholder="0.00" prop:value=move || amount.get()
                                on:input=move |ev| amount.set(event_target_value(&ev)) data-testid="refund-amount-input" />
                        </label>
                        <label>
                            "Reason"
                            <select name="reason" required data-testid="refund-reason"
                                prop:value=move || reason.get() on:change=move |ev| reason.set(event_target_value(&ev))>
                                <option value="" disabled selected=true>"Choose a reason"</option>
                                {RefundReason::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.label()}</option> }).collect_view()}
                            </select>
                        </label>
                    </div>
                    <label>
                        "Note for the audit log (what the customer said, the ticket)"
                        <textarea name="note" rows="2" maxlength="1000" data-testid="refund-note"></textarea>
                    </label>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" data-testid="refund-submit">
                            {move || if create.pending().get() { "Refunding…" } else { "Refund" }}
                        </button>
                        <span class="muted small">"Refundable now: " {money(record.refundable)}</span>
                    </div>
                </ActionForm>
            </section>
        </Show>
    }
    .into_any()
}

/// Approve or reject buttons for refunds waiting for approval: finance and admin, never on
/// their own request.
#[component]
fn Decisions(refunds: Vec<RefundView>, decide: ServerAction<DecideRefund>) -> impl IntoView {
    let waiting: Vec<RefundView> =
        refunds.into_iter().filter(|r| r.state == RefundState::AwaitingApproval).collect();
    if waiting.is_empty() {
        return ().into_any();
    }
    let error =
        move || decide.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> });
    view! {
        {error}
        {waiting.into_iter().map(|r| {
            view! {
                <div class="card decision" data-testid="decision">
                    <p>
                        <strong>"Refund #" {r.id} " of " {money(r.amount)}</strong>
                        " asked by " {r.requested_by.clone()} " waits for approval."
                    </p>
                    <DecisionButtons refund=r decide />
                </div>
            }
        }).collect_view()}
    }
    .into_any()
}

/// Approve, or reject with a reason, one refund waiting for approval; for finance and admin, and
/// never on their own request (the server refuses it too). Also in the queue on `/users`.
#[component]
pub fn DecisionButtons(refund: RefundView, decide: ServerAction<DecideRefund>) -> impl IntoView {
    let me = crate::SignedIn::principal();
    let may = me.as_ref().is_some_and(|p| p.staff.role.can(Action::ApproveRefund));
    let own = me.is_some_and(|p| p.staff.email == refund.requested_by);
    if !may {
        view! { <p class="muted">"A finance or admin member decides it."</p> }.into_any()
    } else if own {
        view! { <p class="muted" data-testid="own-request">"You asked for it: another finance or admin member must decide it."</p> }.into_any()
    } else {
        view! {
            <div class="form-inline decision-buttons">
                <ActionForm action=decide attr:class="form-inline">
                    <input type="hidden" name="refund_id" value=refund.id />
                    <input type="hidden" name="decision" value="approve" />
                    <input type="hidden" name="note" value="" />
                    <button type="submit" class="btn btn-primary" data-testid="approve-refund">"Approve and refund"</button>
                </ActionForm>
                <ActionForm action=decide attr:class="form-inline">
                    <input type="hidden" name="refund_id" value=refund.id />
                    <input type="hidden" name="decision" value="reject" />
                    <input name="note" required placeholder="Why not" aria-label="Why not" data-testid="reject-note" />
                    <button type="submit" class="btn" data-testid="reject-refund">"Reject"</button>
                </ActionForm>
            </div>
        }
        .into_any()
    }
}

/// `/invoices/:id/receipt`: what the customer was charged and given back, ready to print.
#[component]
pub fn ReceiptPage() -> impl IntoView {
    let id = invoice_id();
    let record = resource(move || id.get(), get_invoice);
    let print = move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            let _ = window.print();
        }
    };
    view! {
        <Title text=move || format!("Receipt #{}", id.get()) />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || record.get().map(|result| match result {
                Ok(r) => {
                    let refunds: Vec<RefundView> = r.refunds.iter().filter(|x| x.state == RefundState::Succeeded && x.kind == "customer").cloned().collect();
                    let paid = Money::from_minor(r.charged.minor() - r.refunded.minor(), r.total.currency());
                    view! {
                        <article class="receipt" data-testid="receipt">
                            <header class="receipt-head">
                                <div><strong>"Carpool Billing"</strong><h1 class="receipt-title">"Receipt for invoice #" {r.id}</h1></div>
                                <button type="button" class="btn no-print" on:click=print data-testid="print">"Print"</button>
                            </header>
                            <p>{r.user_name.clone()} <br /> {r.user_email.clone().unwrap_or_default()}</p>
                            <p class="muted">"Week " {r.week.clone()} " · " {r.charge.clone().unwrap_or_else(|| "not charged".into())}</p>
                            <table class="table">
                                <thead><tr><th>"Ride"</th><th>"Ended"</th><th class="num">"Amount"</th></tr></thead>
                                <tbody>{r.lines.iter().map(|l| view! {
                                    <tr><td class="mono">{l.ride_id.clone()}</td><td>{l.ended_local.clone()}</td><td class="num">{money(l.amount)}</td></tr>
                                }).collect_view()}</tbody>
                                <tfoot>
                                    <tr><th colspan="2">"Total"</th><th class="num" data-testid="receipt-total">{money(r.total)}</th></tr>
                                    <tr><td colspan="2">"Charged"</td><td class="num">{money(r.charged)}</td></tr>
                                    {refunds.into_iter().map(|x| view! {
                                        <tr><td colspan="2">"Refund #" {x.id} " · " {x.requested_at.get(..10).unwrap_or_default().to_string()} " · " {x.reason.label()}</td><td class="num">"−" {money(x.amount)}</td></tr>
                                    }).collect_view()}
                                    <tr><th colspan="2">"Paid"</th><th class="num" data-testid="receipt-paid">{money(paid)}</th></tr>
                                </tfoot>
                            </table>
                            <p class="no-print"><a href=format!("/invoices/{}", r.id)>"← Back to the invoice"</a></p>
                        </article>
                    }.into_any()
                }
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

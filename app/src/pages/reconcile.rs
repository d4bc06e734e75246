//! `/reconcile?week=` (finance and admin): the week's latest reconciliation with the provider,
//! what did not match (each naming the user, the invoice or payout, and the attempt, or for a
//! dispute what differs and that it is answered on /disputes), and the proposed repair of charges
//! the ledger does not explain, approved as one reviewed action.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::reconcile::{
    latest_reconciliation, AcknowledgeReconciliation, ApproveRepair, RunReconciliation,
};
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{money, state_class};
use crate::components::stat::Stat;
use crate::model::money::Money;
use crate::model::reconcile::{MatchClass, Reconciliation, StrayCharge};

/// `/reconcile`.
#[component]
pub fn ReconcilePage() -> impl IntoView {
    let query = use_query_map();
    let week = Memo::new(move |_| query.with(|q| q.get("week").unwrap_or_default().trim().to_string()));
    let run = ServerAction::<RunReconciliation>::new();
    let repair = ServerAction::<ApproveRepair>::new();
    let acknowledge = ServerAction::<AcknowledgeReconciliation>::new();
    // The repair's refunds refresh by themselves while they are under way.
    let tick = crate::components::tick::every(2);
    let under_way = RwSignal::new(false);
    let refresh = Memo::new(move |_| if under_way.get() { tick.get() } else { 0 });
    let latest = resource(
        move || {
            (
                week.get(),
                run.version().get(),
                repair.version().get(),
                acknowledge.version().get(),
                refresh.get(),
            )
        },
        |(week, ..)| latest_reconciliation(week),
    );
    Effect::new(move |_| {
        if let Some(Ok((_, Some(r)))) = latest.get() {
            under_way.set(
                r.stray.iter().any(|s| s.refund_id.is_some() && s.refund_state.is_some_and(|st| st.open())),
            );
        }
    });
    let errors = move || {
        [
            run.value().get().and_then(Result::err),
            repair.value().get().and_then(Result::err),
            acknowledge.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .map(|error| view! { <ErrorNotice error /> })
        .collect_view()
    };
    view! {
        <Title text="Reconciliation" />
        {errors}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || latest.get().map(|result| match result {
                Ok((week, latest)) => { let (hidden, field) = (week.clone(), week.clone()); view! {
                    <div class="page-header">
                        <div>
                            <h1>"Reconciliation · " {week.clone()}</h1>
                            <p class="muted">"The provider's charges, refunds, transfers and disputes of the week, matched one to one with the ledger."</p>
                        </div>
                        <ActionForm action=run attr:class="form-inline" attr:data-testid="reconcile-form">
                            <input type="hidden" name="week" value=hidden.clone() />
                            <button type="submit" class="btn btn-primary" data-testid="reconcile-now">
                                {move || if run.pending().get() { "Reconciling…" } else { "Reconcile now" }}
                            </button>
                        </ActionForm>
                    </div>
                    <form method="get" action="/reconcile" class="card filters">
                        <label>"Week" <input name="week" value=field placeholder="2026-W47" data-testid="reconcile-week" /></label>
                        <div class="filter-actions"><button type="submit" class="btn">"Show"</button></div>
                    </form>
                    {match latest {
                        Some(r) => view! { <ResultView r repair acknowledge /> }.into_any(),
                        None => view! { <p class="card muted" data-testid="no-reconciliation">"This week has not been reconciled yet."</p> }.into_any(),
                    }}
                }.into_any() },
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn ResultView(
    r: Reconciliation,
    repair: ServerAction<ApproveRepair>,
    acknowledge: ServerAction<AcknowledgeReconciliation>,
) -> impl IntoView {
    let week = r.week.clone();
    let (week_ack, week_repair) = (week.clone(), week.clone());
    let acknowledged = r.acknowledged_by.clone();
    let verdict = if r.unmatched == 0 {
        view! { <Banner tone=Tone::Success><span data-testid="reconcile-verdict">"Everything matches: " {r.matched} " movements."</span></Banner> }.into_any()
    } else {
        view! {
            <Banner tone=Tone::Danger>
                <span data-testid="reconcile-verdict">{r.unmatched} " item(s) do not match the ledger."</span>
                {acknowledged.clone().map(|by| view! { " " <span class="muted">"Acknowledged by " {by} "."</span> })}
            </Banner>
        }
        .into_any()
    };
    let pending: Vec<_> = r.stray.iter().filter(|s| s.repairable()).cloned().collect();
    let undecided: Vec<_> =
        r.stray.iter().filter(|s| s.refund_id.is_none() && s.undecided).cloned().collect();
    let repaired: Vec<_> = r.stray.iter().filter(|s| s.refund_id.is_some()).cloned().collect();
    let currency = r.stray.first().map(|s| s.amount.currency());
    let total = currency.and_then(|c| Money::sum(c, pending.iter().map(|s| s.amount)).ok());
    let list = pending.iter().map(|s| s.payment_intent.clone()).collect::<Vec<_>>().join(",");
    view! {
        {verdict}
        <div class="stats">
            <Stat label="Matched" value=r.matched.to_string() testid="reconcile-matched" />
            <Stat label="Not matched" value=r.unmatched.to_string() testid="reconcile-unmatched" />
            <Stat label="Ran" value=r.ran_at.get(..16).unwrap_or_default().replace('T', " ") testid="reconcile-ran-at" />
        </div>
        <p class="muted small">"By " {r.ran_by.clone()} "."</p>
        {(!r.items.is_empty()).then(|| view! {
            <section class="section">
                <h2>"Not matched"</h2>
                <div class="table-wrap">
                    <table class="table" data-testid="reconcile-items">
                        <thead><tr><th>"What"</th><th>"Provider id"</th><th class="num">"Provider"</th><th class="num">"Ledger"</th><th>"Customer"</th><th>"Invoice / payout"</th><th>"Attempt / note"</th></tr></thead>
                        <tbody>{r.items.iter().map(|i| {
                            let class = if i.class == MatchClass::AmountMismatch { "badge badge-warning" } else { "badge badge-danger" };
                            view! {
                                <tr data-testid="reconcile-item">
                                    <td>{i.kind.clone()} " " <span class=class>{i.class.label()}</span></td>
                                    <td class="mono small">{i.provider_id.clone()}</td>
                                    <td class="num">{i.provider_amount.map(money)}</td>
                                    <td class="num">{i.ledger_amount.map(money)}</td>
                                    <td>{i.user_id.clone().map(|u| view! { <a href=format!("/users/{}", crate::components::link::encode(&u))>{u.clone()}</a> })}</td>
                                    <td>
                                        {i.invoice_id.map(|id| view! { <a href=format!("/invoices/{id}")>"invoice #" {id}</a> })}
                                        {i.payout_id.map(|id| view! { "payout #" {id} })}
                                    </td>
                                    {match i.note.clone() {
                                        // A dispute: what differs, and where it is answered.
                                        Some(note) => view! { <td class="small" data-testid="reconcile-note">{note}</td> }.into_any(),
                                        None => view! { <td class="mono small">{i.attempt_key.clone().unwrap_or_else(|| "none: the product never made it".into())}</td> }.into_any(),
                                    }}
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table>
                </div>
                {(r.acknowledged_by.is_none()).then(|| view! {
                    <ActionForm action=acknowledge attr:class="form-inline">
                        <input type="hidden" name="week" value=week_ack.clone() />
                        <button type="submit" class="btn" data-testid="acknowledge">"Acknowledge (hide the banner)"</button>
                    </ActionForm>
                })}
            </section>
        })}
        {(!pending.is_empty()).then(|| view! {
            <section class="card section" data-testid="repair-proposal">
                <h2>"Proposed repair"</h2>
                <p>"These charges were taken by the provider but no invoice explains them. Approving records each in the ledger and refunds it in full, once, through the refund path."</p>
                {stray_table(&pending, "Refund", "repair-row")}
                <ActionForm action=repair attr:class="form" attr:data-testid="repair-form">
                    <input type="hidden" name="week" value=week_repair.clone() />
                    <input type="hidden" name="payment_intents" value=list />
                    <label class="check">
                        <input type="checkbox" required data-testid="repair-reviewed" />
                        " I reviewed these " {pending.len()} " charges (" {total.map(money)} ")"
                    </label>
                    <button type="submit" class="btn btn-primary" data-testid="approve-repair">"Approve the repair"</button>
                </ActionForm>
            </section>
        })}
        {(!undecided.is_empty()).then(|| view! {
            <section class="section" data-testid="repair-waiting">
                <h2>"Waiting for an outcome"</h2>
                <p class="muted small">"Each of these invoices has a charge attempt whose outcome is not known yet: it may be the charge the ledger is about to explain. They are not refunded until the outcome is known; reconcile again then."</p>
                {stray_table(&undecided, "Amount", "repair-waiting-row")}
            </section>
        })}
        {(!repaired.is_empty()).then(|| view! {
            <section class="section">
                <h2>"Repaired"</h2>
                <p class="muted small">"Reconcile again once the refunds succeeded: the repaired charges then match the ledger."</p>
                <div class="table-wrap">
                    <table class="table" data-testid="repaired">
                        <thead><tr><th>"Payment intent"</th><th>"Customer"</th><th class="num">"Refunded"</th><th>"Refund"</th><th>"Approved by"</th></tr></thead>
                        <tbody>{repaired.iter().map(|s| view! {
                            <tr data-testid="repaired-row">
                                <td class="mono small">{s.payment_intent.clone()}</td>
                                <td>{s.user_id.clone().unwrap_or_default()}</td>
                                <td class="num">{money(s.amount)}</td>
                                <td>
                                    {s.invoice_id.map(|id| view! { <a href=format!("/invoices/{id}")>"#" {s.refund_id.unwrap_or_default()}</a> })}
                                    " "
                                    {s.refund_state.map(|st| view! { <span class=state_class(st.as_str()) data-testid="repair-state">{st.label()}</span> })}
                                </td>
                                <td>{s.repaired_by.clone().unwrap_or_default()}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
                </div>
            </section>
        })}
    }
}

/// Stray charges as a table: payment intent, customer, invoice, and the amount under `amount`;
/// each row marked `row_testid`.
fn stray_table(rows: &[StrayCharge], amount: &'static str, row_testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"Payment intent"</th><th>"Customer"</th><th>"Invoice"</th><th class="num">{amount}</th></tr></thead>
                <tbody>{rows.iter().map(|s| view! {
                    <tr data-testid=row_testid>
                        <td class="mono small">{s.payment_intent.clone()}</td>
                        <td>{s.user_id.clone().unwrap_or_default()}</td>
                        <td>{s.invoice_id.map(|id| view! { <a href=format!("/invoices/{id}")>"#" {id}</a> })}</td>
                        <td class="num">{money(s.amount)}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table>
        </div>
    }
}

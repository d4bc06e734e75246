//! The waivers on the week's page: the lines an invoice panel strikes through (with who and why),
//! the panel's waivers with their decisions, the form that waives a line or the whole invoice of
//! a draft week, and the week's list of waivers. Forms are `ActionForm`s, so they work before the
//! WebAssembly loads (the page comes back with the change) and by keyboard; once it has loaded,
//! a change refetches the week (`changed`), whose totals and content hash moved with it.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::api::waivers::{target_of, CreateWaiver, DecideWaiver, WithdrawWaiver};
use crate::auth::Action;
use crate::components::access::ErrorNotice;
use crate::components::format::{money, when};
use crate::components::link::with_query;
use crate::model::preview::{InvoiceDetail, WeekStatus};
use crate::model::waiver::{WaiverPart, WaiverReason, WaiverState, WaiverView};

/// "waived by support@… · The driver did not come · “note”": who and why, said once.
fn who_and_why(w: &WaiverView) -> String {
    let mut text = format!("{} by {} · {}", w.state.label(), w.requested_by, w.reason.label());
    if !w.note.is_empty() {
        text.push_str(&format!(" · “{}”", w.note));
    }
    if let (Some(by), WaiverState::Applied) = (&w.decided_by, w.state) {
        text.push_str(&format!(" · approved by {by}"));
    }
    text
}

/// The badge class of a waiver's state.
fn state_badge(state: WaiverState) -> &'static str {
    match state {
        WaiverState::Applied => "badge badge-success",
        WaiverState::AwaitingApproval => "badge badge-warning",
        WaiverState::Rejected | WaiverState::Withdrawn => "badge",
    }
}

/// The rows an invoice's lines table adds for its applied waivers: each waived line (or the whole
/// invoice) struck through, with who and why. Six columns, as the lines table has.
pub fn waived_rows(waivers: &[WaiverView]) -> impl IntoView {
    waivers
        .iter()
        .filter(|w| w.state == WaiverState::Applied)
        .map(|w| {
            let why = who_and_why(w);
            match &w.line {
                Some(l) => view! {
                    <tr class="waived" data-testid="waived-line">
                        <td>
                            <del><code>{l.ride_id.clone()}</code></del>
                            <div class="muted small" data-testid="waiver-why">{why}</div>
                        </td>
                        <td class="nowrap"><del>{l.ended_local.clone()}</del></td>
                        <td><del>{l.driver_id.clone()}</del></td>
                        <td class="num"><del>{format!("{}.{} km", l.distance_m / 1000, l.distance_m % 1000 / 100)}</del></td>
                        <td>{w.part.label()}</td>
                        <td class="num"><del data-testid="waived-amount">{money(w.amount)}</del></td>
                    </tr>
                }
                .into_any(),
                None => view! {
                    <tr class="waived" data-testid="waived-line">
                        <td colspan="5">
                            <del>"Every ride of the week"</del>
                            <div class="muted small" data-testid="waiver-why">{why}</div>
                        </td>
                        <td class="num"><del data-testid="waived-amount">{money(w.amount)}</del></td>
                    </tr>
                }
                .into_any(),
            }
        })
        .collect_view()
}

/// Below an invoice's lines: its waivers with their state (approve or reject one that waits, for
/// finance and admin other than the requester; withdraw one, for the requester or finance and
/// admin), and on a draft week the form that waives a line or the whole invoice.
#[component]
pub fn InvoiceWaivers(invoice: InvoiceDetail, changed: RwSignal<u32>) -> impl IntoView {
    let create = ServerAction::<CreateWaiver>::new();
    let decide = ServerAction::<DecideWaiver>::new();
    let withdraw = ServerAction::<WithdrawWaiver>::new();
    // A change went through: the week's totals, hash and this invoice moved; fetch them again.
    Effect::new(move |_| {
        let done = create.value().get().is_some_and(|r| r.is_ok())
            || decide.value().get().is_some_and(|r| r.is_ok())
            || withdraw.value().get().is_some_and(|r| r.is_ok());
        if done {
            changed.update(|n| *n += 1);
        }
    });
    let errors = move || {
        [
            create.value().get().and_then(Result::err),
            decide.value().get().and_then(Result::err),
            withdraw.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        .map(|error| view! { <ErrorNotice error /> })
        .collect_view()
    };
    let draft = invoice.status == WeekStatus::Previewed;
    let waivers = invoice.waivers.clone();
    let zone = invoice.time_zone.clone();
    view! {
        <div data-testid="invoice-waivers">
            {errors}
            {(!waivers.is_empty()).then(|| view! {
                <h3>"Waivers"</h3>
                <ul class="plain-list waivers" data-testid="waiver-list">
                    {waivers.into_iter().map(|w| view! { <WaiverItem w zone=zone.clone() draft decide withdraw /> }).collect_view()}
                </ul>
            })}
            {draft.then(|| view! { <WaiveForm invoice=invoice.clone() create /> })}
        </div>
    }
}

/// One waiver of the invoice, with what the caller may do about it.
#[component]
fn WaiverItem(
    w: WaiverView,
    /// The business time zone the moments are written in.
    zone: String,
    draft: bool,
    decide: ServerAction<DecideWaiver>,
    withdraw: ServerAction<WithdrawWaiver>,
) -> impl IntoView {
    let me = crate::SignedIn::principal();
    let own = me.as_ref().is_some_and(|p| p.staff.email == w.requested_by);
    let approver = me.as_ref().is_some_and(|p| p.staff.role.can(Action::ApproveWaiver));
    let what = match &w.ride_id {
        Some(ride) => format!("{} of ride {ride}", w.part.label()),
        None => "the whole invoice".to_owned(),
    };
    let decision = w.decided_by.clone().map(|by| {
        let verb = match w.state {
            WaiverState::Applied => "approved",
            WaiverState::Rejected => "rejected",
            _ => "withdrawn",
        };
        let note = w.decision_note.clone().map(|n| format!(": “{n}”")).unwrap_or_default();
        view! { <span class="muted small">" · " {verb} " by " {by} {note}</span> }
    });
    let waiting = w.state == WaiverState::AwaitingApproval;
    let id = w.id;
    let decide_buttons = (draft && waiting).then(|| {
        if !approver {
            view! { <p class="muted small">"Above the limit support waives alone: a finance or admin member decides it."</p> }.into_any()
        } else if own {
            view! { <p class="muted small" data-testid="own-waiver">"You asked for it: another finance or admin member must decide it."</p> }.into_any()
        } else {
            view! {
                <div class="form-inline decision-buttons">
                    <ActionForm action=decide attr:class="form-inline">
                        <input type="hidden" name="waiver_id" value=id />
                        <input type="hidden" name="decision" value="approve" />
                        <input type="hidden" name="note" value="" />
                        <button type="submit" class="btn btn-primary" data-testid="approve-waiver">"Approve the waiver"</button>
                    </ActionForm>
                    <ActionForm action=decide attr:class="form-inline">
                        <input type="hidden" name="waiver_id" value=id />
                        <input type="hidden" name="decision" value="reject" />
                        <input name="note" required placeholder="Why not" aria-label="Why the waiver is rejected" data-testid="reject-waiver-note" />
                        <button type="submit" class="btn" data-testid="reject-waiver">"Reject"</button>
                    </ActionForm>
                </div>
            }
            .into_any()
        }
    });
    let withdraw_button = (draft && w.state.open() && (own || approver)).then(|| {
        view! {
            <ActionForm action=withdraw attr:class="form-inline">
                <input type="hidden" name="waiver_id" value=id />
                <input type="hidden" name="note" value="" />
                <button type="submit" class="btn btn-ghost" data-testid="withdraw-waiver">"Withdraw"</button>
            </ActionForm>
        }
    });
    view! {
        <li class="waiver" data-testid="waiver" data-state=w.state.as_str()>
            <span class=state_badge(w.state)>{w.state.label()}</span> " "
            <strong>"#" {w.id} " " {what} " · " {money(w.amount)}</strong>
            " · " {w.reason.label()}
            {(!w.note.is_empty()).then(|| format!(" · “{}”", w.note))}
            <span class="muted small">" · asked by " {w.requested_by.clone()} " " {when(&w.requested_at, &zone)}</span>
            {decision}
            {decide_buttons}
            {withdraw_button}
        </li>
    }
}

/// The form that waives one line of a draft invoice, or all of it: what (no choice made for the
/// caller), why (from the list, none preselected), a note; the request id the panel opened with,
/// so a double click is one waiver. Support above its limit is told the waiver will wait.
#[component]
fn WaiveForm(invoice: InvoiceDetail, create: ServerAction<CreateWaiver>) -> impl IntoView {
    let may = move || crate::SignedIn::can(Action::Waive);
    let held: Vec<Option<String>> =
        invoice.waivers.iter().filter(|w| w.state.open()).map(|w| w.ride_id.clone()).collect();
    let lines: Vec<(String, String)> = invoice
        .lines
        .iter()
        .filter(|l| !held.contains(&Some(l.ride_id.clone())))
        .filter_map(|l| {
            let part = WaiverPart::of_seat(l.attendance)?;
            let label =
                format!("{} of ride {} ({}) · {}", part.label(), l.ride_id, l.ended_local, money(l.amount));
            Some((target_of(part, Some(&l.ride_id)), label))
        })
        .collect();
    let whole = (invoice.total.minor() > 0 && !held.contains(&None)).then(|| {
        (target_of(WaiverPart::Invoice, None), format!("The whole invoice · {}", money(invoice.total)))
    });
    if lines.is_empty() && whole.is_none() {
        return ().into_any();
    }
    let week = StoredValue::new(invoice.week.to_string());
    let user_id = StoredValue::new(invoice.user_id.clone());
    let request_id = StoredValue::new(invoice.waiver_request_id.clone());
    let options = StoredValue::new(lines.into_iter().chain(whole).collect::<Vec<_>>());
    view! {
        <Show when=may>
            <ActionForm action=create attr:class="form waive-form" attr:data-testid="waive-form">
                <h3>"Waive before approval"</h3>
                <input type="hidden" name="week" value=week.get_value() />
                <input type="hidden" name="user_id" value=user_id.get_value() />
                <input type="hidden" name="request_id" value=request_id.get_value() />
                <label>
                    "What to waive"
                    <select name="target" required data-testid="waive-target">
                        <option value="" selected disabled>"Choose a line, or the whole invoice"</option>
                        {options.get_value().into_iter().map(|(value, label)| view! { <option value=value>{label}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Reason"
                    <select name="reason" required data-testid="waive-reason">
                        <option value="" selected disabled>"Choose a reason"</option>
                        {WaiverReason::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Note"
                    <textarea name="note" maxlength="1000" rows="2" placeholder="What the customer wrote; required for “other”" data-testid="waive-note"></textarea>
                </label>
                <p class="muted small">
                    "The line is not charged: the invoice, the driver's payout and the platform fee drop by it. "
                    "Support waives alone up to its per-refund limit; above it the waiver waits for a finance or admin member."
                </p>
                <button type="submit" class="btn btn-primary" data-testid="waive-button">"Waive"</button>
            </ActionForm>
        </Show>
    }
    .into_any()
}

/// The week's waivers, each linking to its invoice's panel: where finance finds the ones that
/// wait (the week cannot be approved while one does).
#[component]
pub fn WeekWaivers(week: String, waivers: Vec<WaiverView>) -> impl IntoView {
    if waivers.is_empty() {
        return ().into_any();
    }
    let waiting = waivers.iter().filter(|w| w.state == WaiverState::AwaitingApproval).count();
    let applied = waivers.iter().filter(|w| w.state == WaiverState::Applied).count();
    view! {
        <section class="card" data-testid="week-waivers">
            <h2>"Waivers"</h2>
            <p class="muted">
                {applied} " applied (not charged: left out of the totals above), " {waiting} " waiting for a finance or admin decision"
                {(waiting > 0).then_some("; the week is approved once none waits")} "."
            </p>
            <ul class="plain-list">
                {waivers.into_iter().map(|w| {
                    let href = with_query(&format!("/weeks/{week}"), &[("invoice", &w.user_id)]);
                    let what = match &w.ride_id {
                        Some(ride) => format!("{} of ride {ride}", w.part.label()),
                        None => "the whole invoice".to_owned(),
                    };
                    view! {
                        <li data-testid="week-waiver" data-state=w.state.as_str()>
                            <span class=state_badge(w.state)>{w.state.label()}</span> " "
                            <a href=href>{w.user_id.clone()}</a> " · " {what} " · " {money(w.amount)}
                            <span class="muted small">" · " {who_and_why(&w)}</span>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
    .into_any()
}

//! `/alerts`: open and past alerts with acknowledge and resolve, the delivery state of every
//! message (alerts and customer notices), and for admins the channels and a test alert.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::alerts::{load_alerts, SaveAlertSettings, SendTestAlert, SettleAlert};
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::moment;
use crate::components::stat::Stat;
use crate::model::alerts::{AlertSettings, AlertView, AlertsPage as PageData, MessageView, MESSAGE_STATES};

/// `/alerts`.
#[component]
pub fn AlertsPage() -> impl IntoView {
    let settle = ServerAction::<SettleAlert>::new();
    let save = ServerAction::<SaveAlertSettings>::new();
    let test = ServerAction::<SendTestAlert>::new();
    // Deliveries move by themselves: the page follows every few seconds.
    let tick = crate::components::tick::every(3);
    // `?messages=failed`: only the messages in that state.
    let query = use_query_map();
    let messages = Memo::new(move |_| query.with(|q| q.get("messages").unwrap_or_default()));
    let page = resource(
        move || {
            (messages.get(), settle.version().get(), save.version().get(), test.version().get(), tick.get())
        },
        |(messages, ..)| load_alerts(messages),
    );
    let errors = move || {
        let failures = [
            settle.value().get().and_then(Result::err),
            save.value().get().and_then(Result::err),
            test.value().get().and_then(Result::err),
        ];
        failures.into_iter().flatten().map(|error| view! { <ErrorNotice error /> }).collect_view()
    };
    let saved = move || {
        save.value()
            .get()
            .and_then(Result::ok)
            .map(|_| view! { <Banner tone=Tone::Success>"Alert settings saved."</Banner> })
    };
    let tested = move || {
        test.value().get().and_then(Result::ok).map(|a| {
            view! { <Banner tone=Tone::Success><span data-testid="test-sent">"Test alert " {a.id} " raised: its messages are below."</span></Banner> }
        })
    };
    view! {
        <Title text="Alerts" />
        <div class="page-header">
            <div>
                <h1>"Alerts"</h1>
                <p class="muted">"What the product told the people on call and its customers, and whether it arrived."</p>
            </div>
        </div>
        {errors}
        {saved}
        {tested}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(p) => view! { <Content p settle save test /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Content(
    p: PageData,
    settle: ServerAction<SettleAlert>,
    save: ServerAction<SaveAlertSettings>,
    test: ServerAction<SendTestAlert>,
) -> impl IntoView {
    let [queued, retrying, sent, failed] = p.counts;
    view! {
        <div class="stats">
            <Stat label="Open alerts" value=p.open.len().to_string() testid="alerts-open" />
            <Stat label="Messages queued" value=queued.to_string() testid="messages-queued" />
            <Stat label="Retrying" value=retrying.to_string() testid="messages-retrying" />
            <Stat label="Sent" value=sent.to_string() testid="messages-sent" />
            <Stat label="Failed" value=failed.to_string() testid="messages-failed" />
        </div>
        <section class="section">
            <h2>"Open"</h2>
            {if p.open.is_empty() {
                view! { <p class="card muted" data-testid="no-open-alerts">"No open alerts."</p> }.into_any()
            } else {
                view! { <AlertTable alerts=p.open.clone() settle testid="open-alerts" zone=p.time_zone.clone() /> }.into_any()
            }}
        </section>
        <section class="section">
            <h2>"Messages"</h2>
            <p class="small" data-testid="message-filters">
                "Show: "
                <a href="/alerts" class=if p.messages_state.is_none() { "active" } else { "" }>"all"</a>
                {MESSAGE_STATES.iter().zip(p.counts).map(|(state, n)| {
                    let active = p.messages_state.as_deref() == Some(*state);
                    view! {
                        " · "
                        <a href=format!("/alerts?messages={state}") class=if active { "active" } else { "" } data-testid=format!("filter-{state}")>
                            {*state} " (" {n} ")"
                        </a>
                    }
                }).collect_view()}
            </p>
            <MessageTable messages=p.messages.clone() zone=p.time_zone.clone() />
        </section>
        {p.settings.clone().map(|s| view! { <SettingsForm s smtp=p.smtp_configured save test /> })}
        <section class="section">
            <h2>"Past"</h2>
            {if p.past.is_empty() {
                view! { <p class="muted">"No resolved alerts yet."</p> }.into_any()
            } else {
                view! { <AlertTable alerts=p.past.clone() settle testid="past-alerts" zone=p.time_zone.clone() /> }.into_any()
            }}
        </section>
    }
}

fn alert_state_class(state: &str) -> &'static str {
    match state {
        "open" => "badge badge-danger",
        "acknowledged" => "badge badge-warning",
        _ => "badge badge-success",
    }
}

#[component]
fn AlertTable(
    alerts: Vec<AlertView>,
    settle: ServerAction<SettleAlert>,
    testid: &'static str,
    /// The business time zone the moments are in.
    zone: String,
) -> impl IntoView {
    let when = move |at| moment(at, &zone);
    view! {
        <div class="table-wrap">
            <table class="table" data-testid=testid>
                <thead><tr><th>"Alert"</th><th>"State"</th><th class="num">"Seen"</th><th>"First / last"</th><th>"Handled"</th><th></th></tr></thead>
                <tbody>{alerts.into_iter().map(|a| {
                    let open = a.state == "open";
                    let unresolved = a.state != "resolved";
                    view! {
                        <tr data-testid="alert-row" data-kind=a.kind.as_str()>
                            <td>
                                <strong>{a.title.clone()}</strong>
                                <div class="muted small">{a.detail.clone()}</div>
                                {a.link.clone().map(|href| view! { <a class="small" href=href>"Open"</a> })}
                            </td>
                            <td>
                                <span class=alert_state_class(&a.state) data-testid="alert-state">{a.state.clone()}</span>
                                {a.escalated_at.map(|at| view! { <div class="small muted" data-testid="alert-escalated-at">"sent to the second contact " {when(at)}</div> })}
                            </td>
                            <td class="num" data-testid="alert-occurrences">{a.occurrences}</td>
                            <td class="small nowrap"><span data-testid="alert-first-at">{when(a.first_at)}</span> <br /> {when(a.last_at)}</td>
                            <td class="small">
                                {a.acknowledged_by.clone().map(|by| view! {
                                    <div>"ack: " {by} {a.acknowledged_at.map(|at| view! { <div class="muted nowrap" data-testid="alert-acknowledged-at">{when(at)}</div> })}</div>
                                })}
                                {a.resolved_by.clone().map(|by| view! {
                                    <div>"resolved: " {by} {a.resolved_at.map(|at| view! { <div class="muted nowrap" data-testid="alert-resolved-at">{when(at)}</div> })}</div>
                                })}
                            </td>
                            <td>
                                {open.then(|| view! { <SettleButton settle id=a.id action="acknowledge" label="Acknowledge" /> })}
                                {unresolved.then(|| view! { <SettleButton settle id=a.id action="resolve" label="Resolve" /> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table>
        </div>
    }
}

/// The button that acknowledges or resolves an alert (`action`), with `data-testid`
/// `{action}-alert`.
#[component]
fn SettleButton(
    settle: ServerAction<SettleAlert>,
    id: i64,
    action: &'static str,
    label: &'static str,
) -> impl IntoView {
    view! {
        <ActionForm action=settle attr:class="form-inline">
            <input type="hidden" name="id" value=id.to_string() />
            <input type="hidden" name="action" value=action />
            <button type="submit" class="btn" data-testid=format!("{action}-alert")>{label}</button>
        </ActionForm>
    }
}

fn message_state_class(state: &str) -> &'static str {
    match state {
        "sent" => "badge badge-success",
        "retrying" => "badge badge-warning",
        "failed" => "badge badge-danger",
        _ => "badge badge-info",
    }
}

#[component]
fn MessageTable(
    messages: Vec<MessageView>,
    /// The business time zone the moments are in.
    zone: String,
) -> impl IntoView {
    let when = move |at| moment(at, &zone);
    if messages.is_empty() {
        return view! { <p class="muted" data-testid="no-messages">"No messages yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="messages">
                <thead><tr><th>"Created"</th><th>"What"</th><th>"To"</th><th>"State"</th><th class="num">"Attempts"</th><th>"Delivery id"</th></tr></thead>
                <tbody>{messages.into_iter().map(|m| {
                    let detail = match m.state.as_str() {
                        "sent" => m.sent_at.map(|at| format!("sent {}", when(at))),
                        "retrying" => Some(format!("next try {}: {}", when(m.next_attempt_at), m.last_error.clone().unwrap_or_default())),
                        "failed" => m.last_error.clone(),
                        _ => None,
                    };
                    view! {
                        <tr data-testid="message-row" data-state=m.state.clone()>
                            <td class="small nowrap" data-testid="message-created-at">{when(m.created_at)}</td>
                            <td>{m.kind.clone()} {m.alert_id.map(|id| format!(" (alert {id})"))}</td>
                            <td class="small">{m.channel.clone()} ": " <span class="mono">{m.recipient.clone()}</span></td>
                            <td>
                                <span class=message_state_class(&m.state) data-testid="message-state">{m.state.clone()}</span>
                                {detail.map(|d| view! { <div class="small muted">{d}</div> })}
                            </td>
                            <td class="num">{m.attempts}</td>
                            <td class="mono small">{m.delivery_id.clone()}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn SettingsForm(
    s: AlertSettings,
    smtp: bool,
    save: ServerAction<SaveAlertSettings>,
    test: ServerAction<SendTestAlert>,
) -> impl IntoView {
    view! {
        <section class="card section" data-testid="alert-settings">
            <h2>"Channels"</h2>
            {(!smtp).then(|| view! {
                <Banner tone=Tone::Warning>"This server has no mail server (SMTP_URL): email alerts and customer notices stay queued until a billing serve with one delivers them."</Banner>
            })}
            <ActionForm action=save attr:class="form" attr:data-testid="alert-settings-form">
                <label>"Webhook (Slack-compatible incoming webhook URL)" <input name="settings[webhook_url]" value=s.webhook_url.clone() placeholder="https://hooks.slack.com/services/…" data-testid="webhook-url" /></label>
                <label>"On-call email" <input name="settings[email]" value=s.email.clone() placeholder="oncall@example.com" data-testid="oncall-email" /></label>
                <label>"Second contact: webhook" <input name="settings[second_webhook_url]" value=s.second_webhook_url.clone() /></label>
                <label>"Second contact: email" <input name="settings[second_email]" value=s.second_email.clone() /></label>
                <label>"Send to the second contact when nobody acknowledged within (seconds; 0: never)"
                    <input name="settings[escalate_after_seconds]" type="number" min="0" value=s.escalate_after_seconds.to_string() data-testid="escalate-after" />
                </label>
                <label>"Alert when the scheduled run has not started after (minutes)"
                    <input name="settings[not_started_after_minutes]" type="number" min="1" value=s.not_started_after_minutes.to_string() />
                </label>
                <label>"Alert when one week's charges have this many disputes (0: never)"
                    <input name="settings[dispute_threshold]" type="number" min="0" max="10000" value=s.dispute_threshold.to_string() data-testid="dispute-threshold" />
                </label>
                <label class="check">
                    <input type="checkbox" name="settings[customer_notices]" value="true" checked=s.customer_notices data-testid="customer-notices" />
                    " Email customers their receipts, refunds and declined charges"
                </label>
                <div class="filter-actions">
                    <button type="submit" class="btn btn-primary" data-testid="save-alert-settings">"Save"</button>
                </div>
            </ActionForm>
            <ActionForm action=test attr:class="form-inline">
                <button type="submit" class="btn" data-testid="send-test-alert">"Send test alert"</button>
            </ActionForm>
        </section>
    }
}

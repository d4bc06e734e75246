//! `/runs` and `/runs/:id`: the weekly runs, and one run live. The run page is rendered on the
//! server, then follows the run through server-sent events (`/api/v1/runs/:id/stream`): phase,
//! progress, counts, amounts, throughput and events change on screen within a second of the
//! change, with no reload. Pause is one click for everyone on call; resume and abort are for
//! finance and admin.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::runs::{
    get_run, get_run_settings, list_runs, ControlRun, LookUpAgain, MarkNotMade, RetryPayout, SaveRunSettings,
};
use crate::api::{resource, AppError};
use crate::auth::Action;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::{moment, money};
use crate::model::run::{Control, Phase, RunSettings, RunView};

/// The badge of a run's control and phase.
fn state_badge(run: &RunView) -> impl IntoView {
    let (class, text) = match (run.control, run.phase) {
        (Control::Halted, _) => ("badge badge-danger", "halted".to_string()),
        (Control::Aborted, _) => ("badge", "aborted".to_string()),
        (Control::Paused, phase) => {
            ("badge badge-warning", format!("paused · {}", phase.as_str().replace('_', " ")))
        }
        (_, Phase::Completed) => ("badge badge-success", "completed".to_string()),
        (_, phase) => ("badge badge-info", phase.as_str().replace('_', " ")),
    };
    view! { <span class=class data-testid="run-state">{text}</span> }
}

/// `/runs`: the latest runs.
#[component]
pub fn RunsPage() -> impl IntoView {
    let runs = resource(|| (), |_| list_runs());
    view! {
        <Title text="Runs" />
        <div class="page-header"><h1>"Runs"</h1></div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || runs.get().map(|result| match result {
                Ok(runs) if runs.is_empty() => view! {
                    <p class="card muted">"No run yet. Approve a week's preview, then start its run from the week's page."</p>
                }.into_any(),
                Ok(runs) => view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="runs-table">
                            <thead><tr><th>"Run"</th><th>"Week"</th><th>"State"</th><th class="num">"Charged"</th><th class="num">"Invoices"</th><th>"Started"</th></tr></thead>
                            <tbody>
                                {runs.into_iter().map(|run| view! {
                                    <tr>
                                        <td><a href=format!("/runs/{}", run.id)>"#" {run.id}</a></td>
                                        <td><a href=format!("/weeks/{}", run.week)>{run.week.clone()}</a></td>
                                        <td>{state_badge(&run)}</td>
                                        <td class="num">{money(run.charged)}</td>
                                        <td class="num">{run.charged_count} " / " {run.invoices}</td>
                                        <td class="nowrap"><span data-testid="run-started">{moment(run.started_at, &run.time_zone)}</span> " · " {run.started_by.clone()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <RunSettingsCard />
    }
}

/// How runs work, as a form: admins change it (each field checked and named on refusal,
/// audited); everyone else reads it.
#[component]
fn RunSettingsCard() -> impl IntoView {
    let save = ServerAction::<SaveRunSettings>::new();
    let settings = resource(move || save.version().get(), |_| get_run_settings());
    let result = move || {
        save.value().get().map(|r| match r {
            Ok(_) => view! { <Banner tone=Tone::Success>"Run settings saved; runs started or joined from now on use them."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };
    view! {
        <section class="card section" data-testid="run-settings">
            <h2>"Run settings"</h2>
            {result}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || settings.get().map(|r| match r {
                    Ok(s) => view! { <RunSettingsForm s save /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                })}
            </Transition>
        </section>
    }
}

#[component]
fn RunSettingsForm(s: RunSettings, save: ServerAction<SaveRunSettings>) -> impl IntoView {
    let admin = crate::SignedIn::can(Action::ManageSettings);
    let field = move |name: &'static str, label: &'static str, value: String| {
        view! {
            <label>{label}
                <input name=format!("settings[{name}]") type="number" min="0" value=value required disabled=!admin data-testid=format!("setting-{name}") />
            </label>
        }
    };
    view! {
        <ActionForm action=save attr:class="form form-grid" attr:data-testid="run-settings-form">
            {field("rate_per_second", "Provider calls per second (the account's limit, shared by every process)", s.rate_per_second.to_string())}
            {field("workers", "Workers per process", s.workers.to_string())}
            {field("batch", "Items a worker claims at once", s.batch.to_string())}
            {field("canary_size", "Canary: invoices charged and checked first", s.canary_size.to_string())}
            {field("max_attempts", "Attempts before an invoice is uncollectible", s.max_attempts.to_string())}
            {field("decline_retry_seconds", "Seconds before a declined card is tried again", s.decline_retry_seconds.to_string())}
            {field("unknown_retry_seconds", "Seconds before an unanswered call is asked again (same key)", s.unknown_retry_seconds.to_string())}
            {field("funds_retry_seconds", "Seconds before a payout waiting for funds or an account is tried again", s.funds_retry_seconds.to_string())}
            {field("lease_seconds", "Seconds a worker holds an item", s.lease_seconds.to_string())}
            {field("provider_timeout_seconds", "Seconds before a provider call's outcome counts as unknown", s.provider_timeout_seconds.to_string())}
            {field("key_window_seconds", "Key-reuse window: seconds after which an unanswered call is looked up at the provider, never sent again", s.key_window_seconds.to_string())}
            {field("user_cap_minor", "Guard: the most one passenger may be charged in a run (minor units)", s.user_cap_minor.to_string())}
            {field("failure_rate_pct", "Guard: halt when failed or unknown attempts pass this percentage…", s.failure_rate_pct.to_string())}
            {field("failure_min_attempts", "…of at least this many attempts", s.failure_min_attempts.to_string())}
            {admin.then(|| view! {
                <div class="filter-actions">
                    <button type="submit" class="btn btn-primary" data-testid="save-run-settings">"Save run settings"</button>
                </div>
            })}
        </ActionForm>
        {(!admin).then(|| view! { <p class="muted small">"Only an admin can change these."</p> })}
    }
}

/// Charges and payouts held for a person: their attempt is past the key-reuse window, so it is
/// never sent again, and the provider could not be asked what it made. Finance looks again, or
/// marks one as not made at the provider (a second member confirms; then a new attempt goes out
/// under a new key). Drawn again only when the list changes.
#[component]
fn HeldItems(run: Signal<RunView>) -> impl IntoView {
    let again = ServerAction::<LookUpAgain>::new();
    let not_made = ServerAction::<MarkNotMade>::new();
    let held = Memo::new(move |_| {
        let r = run.get();
        (r.id, r.held)
    });
    let answer = move |value: Option<Result<RunView, AppError>>, done: &'static str| {
        value.map(|r| match r {
            Ok(_) => view! { <Banner tone=Tone::Success>{done}</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })
    };
    view! {
        {move || {
            let (run_id, held) = held.get();
            (!held.is_empty()).then(|| view! {
                <section class="card" data-testid="held-items">
                    <h2>"Waiting for a person"</h2>
                    <p class="muted small">"Each of these was sent to the provider more than the key-reuse window ago, and the provider could not be asked what it made. It is never sent again under its key. Look it up again once the provider answers; if you have checked the provider's dashboard and nothing was made, mark it as not made: a second finance member confirms, and a new attempt goes out."</p>
                    {move || answer(again.value().get(), "Looked up again; the run takes it up once running.")}
                    {move || answer(not_made.value().get(), "Recorded: the item says what happens next.")}
                    <ul class="held-list">
                        {held.into_iter().map(|h| {
                            let kind: &'static str = if h.kind == "payout" { "payout" } else { "charge" };
                            let asked = h.proposed_by.is_some();
                            view! {
                                <li class="held-item" data-testid="held-item">
                                    <p class="held-what">
                                        <strong class="mono">{format!("{} {}", h.kind, h.id)}</strong>
                                        " · "
                                        <a href=format!("/users/{}", crate::components::link::encode(&h.user_id))>{h.user_id.clone()}</a>
                                        " · "
                                        <span class="nowrap">{money(h.amount)}</span>
                                    </p>
                                    <p class="why small">{h.detail.clone().unwrap_or_default()}</p>
                                    {h.key.clone().map(|k| view! { <p class="small muted">"Key: " <span class="mono">{k}</span></p> })}
                                    {h.proposed_by.clone().map(|by| view! { <p class="small"><strong>{format!("{by} asked to mark it as not made; another finance member must confirm.")}</strong></p> })}
                                    <Show when=move || crate::SignedIn::can(Action::ApproveRun)>
                                        <div class="held-actions">
                                            <ActionForm action=again attr:class="form-inline">
                                                <input type="hidden" name="run_id" value=run_id />
                                                <input type="hidden" name="kind" value=kind />
                                                <input type="hidden" name="id" value=h.id />
                                                <button type="submit" class="btn" data-testid="look-up-again">"Look up again"</button>
                                            </ActionForm>
                                            <ActionForm action=not_made attr:class="form-inline">
                                                <input type="hidden" name="run_id" value=run_id />
                                                <input type="hidden" name="kind" value=kind />
                                                <input type="hidden" name="id" value=h.id />
                                                <button type="submit" class="btn btn-danger" data-testid="mark-not-made">
                                                    {if asked { "Confirm: not made" } else { "Mark as not made" }}
                                                </button>
                                            </ActionForm>
                                        </div>
                                    </Show>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
            })
        }}
    }
}

/// The run's failed payouts, each with a Retry for finance and admin (audited; a new attempt
/// with its own key). Drawn again only when the list changes, so a click is not lost to a live
/// update.
#[component]
fn FailedPayouts(run: Signal<RunView>) -> impl IntoView {
    let retry = ServerAction::<RetryPayout>::new();
    let failed = Memo::new(move |_| {
        let r = run.get();
        (r.id, r.failed_payouts)
    });
    view! {
        {move || {
            let (run_id, failed) = failed.get();
            (!failed.is_empty()).then(|| view! {
                <section class="card" data-testid="failed-payouts">
                    <h2>"Failed payouts"</h2>
                    {move || retry.value().get().map(|r| match r {
                        Ok(_) => view! { <Banner tone=Tone::Success>"The payout is being tried again."</Banner> }.into_any(),
                        Err(error) => view! { <ErrorNotice error /> }.into_any(),
                    })}
                    <div class="table-wrap">
                        <table class="table">
                            <thead><tr><th>"Payout"</th><th>"Driver"</th><th class="num">"Amount"</th><th></th><th class="num">"Attempts"</th><th>"Why"</th></tr></thead>
                            <tbody>
                                {failed.into_iter().map(|f| view! {
                                    <tr data-testid="failed-payout">
                                        <td class="mono">{f.payout_id}</td>
                                        <td><a href=format!("/users/{}", crate::components::link::encode(&f.driver_id))>{f.driver_id.clone()}</a></td>
                                        <td class="num">{money(f.amount)}</td>
                                        // Beside the amount, so it stays in view on a phone.
                                        <td>
                                            <Show when=move || crate::SignedIn::can(Action::ApproveRun)>
                                                <ActionForm action=retry attr:class="form-inline">
                                                    <input type="hidden" name="run_id" value=run_id />
                                                    <input type="hidden" name="payout_id" value=f.payout_id />
                                                    <button type="submit" class="btn" data-testid="retry-payout">"Retry"</button>
                                                </ActionForm>
                                            </Show>
                                        </td>
                                        <td class="num">{f.attempts}</td>
                                        <td class="why small">{f.detail.clone().unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                </section>
            })
        }}
    }
}

/// `/runs/:id`: one run, live.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id =
        Memo::new(move |_| params.with(|p| p.get("id").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)));
    let control = ServerAction::<ControlRun>::new();
    let initial = resource(move || (id.get(), control.version().get()), |(id, _)| get_run(id));
    // The newest view from the stream; it wins over the server-rendered one once it arrives.
    let live: RwSignal<Option<RunView>> = RwSignal::new(None);
    follow(id, live);
    Effect::new(move |_| {
        if let Some(Ok(view)) = control.value().get() {
            live.set(Some(view));
        }
    });
    view! {
        <Title text=move || format!("Run #{}", id.get()) />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || initial.get().map(|result| match result {
                Ok(first) => {
                    let current = Signal::derive(move || live.get().filter(|v| v.id == first.id).unwrap_or_else(|| first.clone()));
                    view! { <RunDetail run=current control /> }.into_any()
                }
                Err(error) => view! {
                    <div class="page-header"><h1>"Run #" {id.get()}</h1></div>
                    <ErrorNotice error />
                }.into_any(),
            })}
        </Transition>
    }
}

/// Subscribes to the run's event stream in the browser and puts every view into `live`; closes
/// it once the run is over (the server ends the stream then, and the browser would reconnect).
#[cfg(feature = "hydrate")]
pub(crate) fn follow(id: Memo<i64>, live: RwSignal<Option<RunView>>) {
    use leptos::wasm_bindgen::prelude::Closure;
    use leptos::wasm_bindgen::JsCast;
    let source: StoredValue<Option<web_sys::EventSource>, LocalStorage> = StoredValue::new_local(None);
    Effect::new(move |_| {
        let id = id.get();
        if let Some(old) = source.get_value() {
            old.close();
        }
        let Ok(es) = web_sys::EventSource::new(&format!("/api/v1/runs/{id}/stream")) else { return };
        let stream = es.clone();
        let on_run = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(text) = event.data().as_string() {
                // `from_slice`, as every other answer is read (see `api::codec`): one deserializer.
                if let Ok(view) = serde_json::from_slice::<RunView>(text.as_bytes()) {
                    if view.over() {
                        stream.close();
                    }
                    live.set(Some(view));
                }
            }
        });
        let _ = es.add_event_listener_with_callback("run", on_run.as_ref().unchecked_ref());
        on_run.forget();
        source.set_value(Some(es));
    });
    on_cleanup(move || {
        if let Some(es) = source.try_get_value().flatten() {
            es.close();
        }
    });
}

/// On the server there is nothing to follow: the page renders the run as it is.
#[cfg(not(feature = "hydrate"))]
pub(crate) fn follow(_id: Memo<i64>, _live: RwSignal<Option<RunView>>) {}

/// A small line chart of the last two minutes' successful calls.
fn sparkline(points: &[i64]) -> impl IntoView {
    let max = points.iter().copied().max().unwrap_or(0).max(1);
    let step = if points.len() > 1 { 200 / (points.len() as i64 - 1) } else { 200 };
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", i as i64 * step, 40 - p * 36 / max))
        .collect();
    view! {
        <svg class="sparkline" viewBox="0 0 200 42" width="200" height="42" role="img" aria-label="successful calls, last two minutes">
            <polyline points=path.join(" ") fill="none" stroke="currentColor" stroke-width="2" />
        </svg>
    }
}

#[component]
fn RunDetail(run: Signal<RunView>, control: ServerAction<ControlRun>) -> impl IntoView {
    let can = crate::SignedIn::can;
    let controls = Memo::new(move |_| {
        let r = run.get();
        (r.id, r.running(), r.control, r.phase)
    });
    view! {
        {move || {
            let r = run.get();
            let reason = r.reason.clone().unwrap_or_default();
            let halted = (r.control == Control::Halted).then(|| reason.clone());
            let paused = (r.control == Control::Paused).then(|| reason.clone());
            let per_mille = r.progress_per_mille();
            view! {
                <div class="page-header">
                    <div>
                        <h1>"Run #" {r.id} " · week " <a href=format!("/weeks/{}", r.week)>{r.week.clone()}</a> " " {state_badge(&r)}</h1>
                        <p class="muted">
                            "Started " <span data-testid="run-started">{moment(r.started_at, &r.time_zone)}</span> " by " {r.started_by.clone()}
                            {r.completed_at.map(|t| view! { " · completed " <span data-testid="run-completed">{moment(t, &r.time_zone)}</span> })}
                        </p>
                    </div>
                </div>
                {halted.map(|reason| view! {
                    <Banner tone=Tone::Danger>
                        <strong>"Halted by a guard: "</strong> <span data-testid="halt-reason">{reason}</span>
                        " No provider call is made until a person resumes or aborts the run."
                    </Banner>
                })}
                {paused.map(|reason| view! {
                    <Banner tone=Tone::Warning>"Paused: " {reason}</Banner>
                })}
                {(!r.waiting.is_empty()).then(|| view! {
                    <Banner tone=Tone::Info>
                        <div data-testid="run-waiting">
                            <strong>"Waiting. "</strong>
                            {r.waiting.iter().map(|w| view! {
                                <p data-testid="run-waiting-item">
                                    {w.sentence(&r.time_zone)}
                                    {w.detail.clone().map(|d| view! { <br /> <span class="muted small">{d}</span> })}
                                </p>
                            }).collect_view()}
                        </div>
                    </Banner>
                })}
                <section class="card">
                    // An SVG bar: the page's Content-Security-Policy allows no inline styles.
                    <svg class="progress-bar" class:progress-danger=r.control == Control::Halted viewBox="0 0 1000 10"
                        preserveAspectRatio="none" role="progressbar" aria-valuemin="0" aria-valuemax="1000"
                        aria-valuenow=per_mille data-testid="run-progress">
                        <rect class="progress-track" width="1000" height="10" />
                        <rect class="progress-fill" width=per_mille height="10" />
                    </svg>
                    <div class="run-progress-row">
                        <p class="muted" data-testid="run-progress-text">
                            {r.invoices - r.pending} " of " {r.invoices} " invoices settled · "
                            {r.paid_count} " of " {r.payouts} " drivers paid"
                        </p>
                        <div class="throughput">
                            <span data-testid="run-rate"><strong>{format!("{}.{}", r.rate_x10 / 10, r.rate_x10 % 10)}</strong> " calls/s"</span>
                            {r.eta_seconds.map(|s| format!(" · about {}:{:02} to go", s / 60, s % 60))}
                            {sparkline(&r.sparkline)}
                        </div>
                    </div>
                </section>
                <div class="stats">
                    <div class="stat"><div class="stat-label">"Charged"</div><div class="stat-value" data-testid="run-charged">{r.charged.to_string()} " " <span class="stat-unit">"of " {r.expected.to_string()}</span></div></div>
                    <div class="stat"><div class="stat-label">"Charges"</div><div class="stat-value" data-testid="run-charged-count">{r.charged_count}</div></div>
                    <div class="stat"><div class="stat-label">"Declined"</div><div class="stat-value">{r.declined}</div></div>
                    <div class="stat"><div class="stat-label">"Uncollectible"</div><div class="stat-value">{r.uncollectible}</div></div>
                    <div class="stat"><div class="stat-label">"Unknown outcomes"</div><div class="stat-value">{r.unknown_attempts}</div></div>
                    <div class="stat"><div class="stat-label">"Paid to drivers"</div><div class="stat-value">{r.paid.to_string()}</div></div>
                </div>
            }
        }}
        <section class="card run-controls" data-testid="run-controls">
            <h2>"Kill switch"</h2>
            {move || control.value().get().and_then(|r| r.err()).map(|error| view! { <ErrorNotice error /> })}
            {move || {
                // Only a change of state redraws the forms, so a reason being typed survives the
                // live updates.
                let (id, running, control_state, phase) = controls.get();
                let reason = view! { <label>"Reason" <input name="reason" maxlength="500" placeholder="why (for the log)" /></label> };
                let pause = (running && can(Action::PauseRun)).then(|| view! {
                    <ActionForm action=control attr:class="form form-inline" attr:data-testid="pause-form">
                        <input type="hidden" name="id" value=id />
                        <input type="hidden" name="action" value="pause" />
                        {reason}
                        <button type="submit" class="btn btn-danger" data-testid="pause-button">"Pause the run"</button>
                    </ActionForm>
                });
                let resume = (matches!(control_state, Control::Paused | Control::Halted) && can(Action::ResumeOrAbortRun)).then(|| view! {
                    <ActionForm action=control attr:class="form form-inline" attr:data-testid="resume-form">
                        <input type="hidden" name="id" value=id />
                        <input type="hidden" name="action" value="resume" />
                        <input type="hidden" name="reason" value="" />
                        <button type="submit" class="btn btn-primary" data-testid="resume-button">"Resume"</button>
                    </ActionForm>
                    <ActionForm action=control attr:class="form form-inline" attr:data-testid="abort-form">
                        <input type="hidden" name="id" value=id />
                        <input type="hidden" name="action" value="abort" />
                        <input type="hidden" name="reason" value="" />
                        <button type="submit" class="btn" data-testid="abort-button">"Abort for good"</button>
                    </ActionForm>
                });
                let over = (!running && pause.is_none() && resume.is_none()).then(|| view! {
                    <p class="muted">{if phase == Phase::Completed { "The run is complete." } else { "Nothing to control." }}</p>
                });
                view! { {pause} {resume} {over} }
            }}
        </section>
        <HeldItems run />
        <FailedPayouts run />
        <section class="card">
            <h2>"Events"</h2>
            <ul class="plain-list events" data-testid="run-events">
                {move || {
                    let RunView { events, time_zone, .. } = run.get();
                    events.into_iter().map(|e| view! {
                        <li><span class="muted" data-testid="run-event-at">{moment(e.at, &time_zone)}</span> " " <span class="badge">{e.kind}</span> " " {e.message}</li>
                    }).collect_view()
                }}
            </ul>
        </section>
    }
}

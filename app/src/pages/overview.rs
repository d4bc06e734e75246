//! `/`: the state of this `billing` server at a glance.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::overview::get_overview;
use crate::api::resource;
use crate::components::banner::{Banner, Tone};
use crate::model::system::Overview;

/// The overview: server version, database and its migrations, and the business clock.
#[component]
pub fn OverviewPage() -> impl IntoView {
    let overview = resource(|| (), |_| get_overview());
    view! {
        <Title text="Overview" />
        <div class="page-header">
            <h1>"Overview"</h1>
            <button class="btn" data-testid="refresh" on:click=move |_| overview.refetch()>
                "Refresh"
            </button>
        </div>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                overview
                    .get()
                    .map(|result| match result {
                        Ok(info) => view! { <OverviewCards info /> }.into_any(),
                        Err(error) => {
                            view! {
                                <Banner tone=Tone::Danger>
                                    "The server could not be asked: " {error.to_string()}
                                </Banner>
                            }
                                .into_any()
                        }
                    })
            }}
        </Transition>
    }
}

#[component]
fn OverviewCards(info: Overview) -> impl IntoView {
    let migrations = info.migrations.clone();
    let current = migrations.is_current();
    let schema_badge = if current {
        view! { <span class="badge badge-success">"up to date"</span> }
    } else {
        view! { <span class="badge badge-warning">"needs attention"</span> }
    };
    let pending = migrations.pending.clone();
    let unexpected = migrations.unexpected.clone();
    view! {
        {(!current)
            .then(|| {
                view! {
                    <Banner tone=Tone::Warning>
                        "The database schema is not the one this build expects. Run "
                        <code>"billing migrate"</code> " before using the product."
                    </Banner>
                }
            })}
        <div class="grid">
            <section class="card" data-testid="server-card">
                <h2>"Server"</h2>
                <dl class="facts">
                    <dt>"Version"</dt>
                    <dd data-testid="version">{info.version.clone()}</dd>
                    <dt>"Currency"</dt>
                    <dd>{info.currency.clone()}</dd>
                </dl>
            </section>
            <section class="card" data-testid="provider-card">
                <h2>"Payment provider"</h2>
                <dl class="facts">
                    <dt>"Mode"</dt>
                    <dd data-testid="provider-mode">
                        {if info.provider.live() {
                            view! { <span class="badge badge-danger">"live: real money"</span> }.into_any()
                        } else {
                            view! { <span class="badge badge-warning">"test"</span> }.into_any()
                        }}
                    </dd>
                    <dt>"Provider"</dt>
                    <dd class="mono wrap" data-testid="provider-endpoint">{info.provider.endpoint.clone()}</dd>
                    <dt>"Account"</dt>
                    <dd class="mono wrap" data-testid="provider-account">{info.provider.account.clone()}</dd>
                    <dt>"Test provisioning"</dt>
                    <dd data-testid="provider-provisioning">{if info.provider.provisioning { "on (PSP_PROVISION=test)" } else { "off" }}</dd>
                </dl>
            </section>
            <section class="card" data-testid="database-card">
                <h2>"Database"</h2>
                <dl class="facts">
                    <dt>"Backend"</dt>
                    <dd data-testid="backend">{info.backend.label()}</dd>
                    <dt>"Schema"</dt>
                    <dd data-testid="migrations">
                        {schema_badge} " "
                        {format!("{} of {} migrations applied", migrations.applied, migrations.known)}
                    </dd>
                    <dt>"Latest version"</dt>
                    <dd>
                        {migrations
                            .latest_version
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "none".into())}
                    </dd>
                </dl>
                {(!pending.is_empty())
                    .then(|| {
                        view! {
                            <p class="muted">"Pending:"</p>
                            <ul class="plain-list">
                                {pending.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                            </ul>
                        }
                    })}
                {(!unexpected.is_empty())
                    .then(|| {
                        view! {
                            <p class="muted">"Not known to this build:"</p>
                            <ul class="plain-list">
                                {unexpected.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}
                            </ul>
                        }
                    })}
            </section>
            <section class="card" data-testid="clock-card">
                <h2>"Business clock"</h2>
                <dl class="facts">
                    <dt>"Time zone"</dt>
                    <dd data-testid="time-zone">{info.time_zone.clone()}</dd>
                    <dt>"Local time"</dt>
                    <dd data-testid="local-time">
                        <time datetime=info.local_time.clone()>{display_time(&info.local_time)}</time>
                    </dd>
                </dl>
            </section>
        </div>
    }
}

/// `2026-11-27T23:36:40.123+01:00` shown as `2026-11-27 23:36:40 +01:00`.
fn display_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %:z").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

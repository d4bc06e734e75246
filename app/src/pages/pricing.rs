//! `/pricing` (finance and admin): the fee policy versions (the one in force, those to come, the
//! proposals), the proposal form, the second person's approval, and the what-if of a version on
//! a stored week. The forms are `ActionForm`s and the what-if a GET form (`?version=&week=`), so
//! the page works before the WebAssembly loads.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::pricing::{pricing_versions, pricing_what_if, DecidePricing, ProposePricing};
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::components::format::money;
use crate::model::money::Money;
use crate::model::pricing::{
    version_label, ChangeBucket, PolicyVersion, PolicyVersions, VersionStatus, WhatIf,
};
use crate::model::week::BillingWeek;

/// `/pricing?version=&week=`.
#[component]
pub fn PricingPage() -> impl IntoView {
    let propose = ServerAction::<ProposePricing>::new();
    let decide = ServerAction::<DecidePricing>::new();
    let versions =
        resource(move || (propose.version().get(), decide.version().get()), |_| pricing_versions());
    let query = use_query_map();
    let asked = Memo::new(move |_| {
        query.with(|q| {
            let version = q.get("version").and_then(|v| v.trim().parse::<i64>().ok());
            let week = q.get("week").unwrap_or_default().trim().to_string();
            version.filter(|_| !week.is_empty()).map(|v| (v, week))
        })
    });
    let what_if = resource(
        move || asked.get(),
        |asked| async move {
            match asked {
                Some((version, week)) => pricing_what_if(version, week).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <Title text="Pricing" />
        <div class="page-header">
            <div>
                <h1>"Pricing"</h1>
                <p class="muted">"Fee policy versions: one person proposes, another approves. A version prices every week from its own until a later one; an approved week keeps the prices it was approved with."</p>
            </div>
        </div>
        {move || propose.value().get().map(|result| match result {
            Ok(v) => view! { <Banner focus=true tone=Tone::Success>"Proposed version " {v.id} " from " {v.effective_week.unwrap_or_default()} ". Another finance or admin member approves it."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        {move || decide.value().get().map(|result| match result {
            Ok(v) => view! { <Banner focus=true tone=Tone::Success>"Version " {v.id} " is " {v.status.as_str()} "."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || versions.get().map(|result| match result {
                Ok(list) => view! { <Versions list=list.clone() decide /> <WhatIfForm list /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <Transition fallback=|| view! { <p class="muted">"Pricing the week both ways…"</p> }>
            {move || what_if.get().map(|result| match result {
                Ok(Some(w)) => view! { <WhatIfView w /> }.into_any(),
                Ok(None) => ().into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <ProposalForm propose />
    }
}

#[component]
fn Versions(list: PolicyVersions, decide: ServerAction<DecidePricing>) -> impl IntoView {
    let in_force = list.in_force;
    let current_week = list.current_week.clone();
    let in_force_label =
        list.versions.iter().find(|v| v.id == in_force).map(PolicyVersion::label).unwrap_or_default();
    view! {
        <section class="card">
            <h2>"Versions"</h2>
            <p data-testid="in-force">"This week (" {current_week} ") is priced by " <strong>{in_force_label}</strong> "."</p>
            <div class="table-wrap">
                <table class="table" data-testid="versions">
                    <thead>
                        <tr>
                            <th>"Version"</th><th>"Status"</th><th>"From week"</th><th class="num">"Per trip"</th>
                            <th class="num">"Per km"</th><th class="num">"Platform fee"</th><th class="num">"No-show"</th>
                            <th>"Proposed"</th><th>"Decided"</th><th>"Actions"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {list.versions.into_iter().map(|v| {
                            let current_week = list.current_week.clone();
                            view! { <VersionRow v in_force current_week decide /> }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn VersionRow(
    v: PolicyVersion,
    in_force: i64,
    current_week: String,
    decide: ServerAction<DecidePricing>,
) -> impl IntoView {
    // An approved version is in force this week, to come (from a later week) or replaced.
    let upcoming = v.effective_week.as_deref().is_some_and(|w| w > current_week.as_str());
    let (badge, label) = match v.status {
        _ if v.id == in_force => ("badge badge-success", "in force"),
        VersionStatus::Proposed => ("badge badge-warning", "proposed"),
        VersionStatus::Approved if upcoming => ("badge badge-info", "upcoming"),
        VersionStatus::Approved => ("badge", "replaced"),
        other => ("badge", other.as_str()),
    };
    let p = v.policy;
    let proposed = v
        .proposed_by
        .clone()
        .map(|by| format!("{by}, {}", day(v.proposed_at.as_deref())))
        .unwrap_or_default();
    let decided =
        v.decided_by.clone().map(|by| format!("{by}, {}", day(v.decided_at.as_deref()))).unwrap_or_default();
    // Copy, so that the two buttons' closures can each hold it.
    let mine = StoredValue::new(v.proposed_by.clone());
    let is_mine =
        move || crate::SignedIn::principal().is_some_and(|p| Some(p.staff.email) == mine.get_value());
    let pending = v.status == VersionStatus::Proposed;
    let id = v.id;
    view! {
        <tr data-testid=format!("version-{id}")>
            <td>{v.label()}{(!v.note.is_empty()).then(|| view! { <div class="muted small">{v.note.clone()}</div> })}</td>
            <td><span class=badge data-testid="version-status">{label}</span></td>
            <td>{v.effective_week.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="num">{money(p.base)}</td>
            <td class="num">{money(p.per_km)}</td>
            <td class="num">{percent(p.platform_fee_bps)}</td>
            <td class="num">{money(p.no_show_fee)}</td>
            <td class="small">{proposed}</td>
            <td class="small">{decided}</td>
            <td>
                <div class="row-actions">
                    {move || (pending && !is_mine()).then(|| view! {
                        <ActionForm action=decide>
                            <input type="hidden" name="version_id" value=id />
                            <input type="hidden" name="decision" value="approve" />
                            <button type="submit" class="btn btn-primary" data-testid="approve-version">"Approve"</button>
                        </ActionForm>
                    })}
                    {move || (pending && is_mine()).then(|| view! { <span class="muted small" data-testid="awaiting-second">"waiting for another member"</span> })}
                    {pending.then(|| view! {
                        <ActionForm action=decide>
                            <input type="hidden" name="version_id" value=id />
                            <input type="hidden" name="decision" value="withdraw" />
                            <button type="submit" class="btn" data-testid="withdraw-version">"Withdraw"</button>
                        </ActionForm>
                    })}
                </div>
            </td>
        </tr>
    }
}

/// The what-if's GET form: a version and a stored week (the last complete one by default).
#[component]
fn WhatIfForm(list: PolicyVersions) -> impl IntoView {
    let query = use_query_map();
    let last_complete =
        BillingWeek::parse(&list.current_week).map(|w| w.previous().to_string()).unwrap_or_default();
    let week =
        query.with_untracked(|q| q.get("week")).filter(|w| !w.trim().is_empty()).unwrap_or(last_complete);
    let chosen = query.with_untracked(|q| q.get("version")).and_then(|v| v.parse::<i64>().ok());
    let default = list
        .versions
        .iter()
        .find(|v| v.status == VersionStatus::Proposed)
        .map(|v| v.id)
        .unwrap_or(list.in_force);
    let chosen = chosen.unwrap_or(default);
    view! {
        <section class="card">
            <h2>"What if"</h2>
            <p class="muted">"Price a stored week with the version that prices it now and with another, from the same rides. Nothing is stored."</p>
            <form method="get" action="/pricing" class="form form-inline" data-testid="what-if-form">
                <label>
                    "Version"
                    <select name="version" data-testid="what-if-version">
                        {list.versions.iter().filter(|v| matches!(v.status, VersionStatus::Proposed | VersionStatus::Approved)).map(|v| {
                            let selected = v.id == chosen;
                            view! { <option value=v.id selected=selected>{v.label()} " (" {v.status.as_str()} ")"</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"Week" <input name="week" value=week pattern="\\d{4}-W\\d{2}" required data-testid="what-if-week" /></label>
                <button type="submit" class="btn btn-primary" data-testid="what-if-run">"Compare"</button>
            </form>
        </section>
    }
}

#[component]
fn WhatIfView(w: WhatIf) -> impl IntoView {
    let proposed = version_label(w.proposed_version);
    let current = version_label(w.current_version);
    let rows = [
        ("Charged", "what-if-charged", w.before.charged, w.after.charged),
        ("Platform fees", "what-if-fees", w.before.fees, w.after.fees),
        ("Paid to drivers", "what-if-payouts", w.before.payouts, w.after.payouts),
    ];
    view! {
        <section class="card" data-testid="what-if">
            <h2>{format!("{} under {proposed}, against {current}", w.week)}</h2>
            <div class="table-wrap">
                <table class="table">
                    <thead><tr><th>"Figure"</th><th class="num">{current.clone()}</th><th class="num">{proposed.clone()}</th><th class="num">"Change"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|(label, testid, before, after)| view! {
                            <tr>
                                <td>{label}</td>
                                <td class="num">{money(before)}</td>
                                <td class="num" data-testid=testid>{money(after)}</td>
                                <td class="num">{signed_money(after.minor() - before.minor(), after)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <p data-testid="what-if-counts">
                {w.passengers} " passengers: "
                <strong data-testid="what-if-up">{w.up}</strong> " pay more, "
                <strong data-testid="what-if-down">{w.down}</strong> " pay less, "
                <strong data-testid="what-if-same">{w.same}</strong> " pay the same."
            </p>
            <h3>"Change per passenger"</h3>
            <Distribution buckets=w.distribution.clone() />
            <h3>"Largest increases"</h3>
            {if w.largest_increases.is_empty() {
                view! { <p class="muted" data-testid="no-increases">"Nobody pays more."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="largest-increases">
                            <thead><tr><th>"Customer"</th><th class="num">"Now"</th><th class="num">"Under the version"</th><th class="num">"Change"</th></tr></thead>
                            <tbody>
                                {w.largest_increases.into_iter().map(|c| {
                                    let href = format!("/users/{}", crate::components::link::encode(&c.user_id));
                                    view! {
                                        <tr>
                                            <td><a href=href>{c.user_id.clone()}</a></td>
                                            <td class="num">{money(c.before)}</td>
                                            <td class="num">{money(c.after)}</td>
                                            <td class="num">{signed_money(c.change.minor(), c.change)}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

/// The changes per passenger as vertical bars, one per bucket (SVG; colours from the theme).
#[component]
fn Distribution(buckets: Vec<ChangeBucket>) -> impl IntoView {
    if buckets.is_empty() {
        return view! { <p class="muted">"No passengers in this week."</p> }.into_any();
    }
    const W: i64 = 600;
    const H: i64 = 180;
    let most = buckets.iter().map(|b| b.passengers).max().unwrap_or(1).max(1) as i64;
    let slot = W / buckets.len() as i64;
    let drawn = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = i as i64 * slot + slot / 8;
            let width = (slot * 3 / 4).max(2);
            let height = (b.passengers as i64 * (H - 40) / most).max(1);
            let range = if b.low == b.high {
                "no change".to_owned()
            } else {
                format!("{} to {}", signed_money(b.low.minor(), b.low), signed_money(b.high.minor(), b.high))
            };
            let class = if b.low == b.high {
                "bar-same"
            } else if b.low.minor() >= 0 {
                "bar-refunded"
            } else {
                "bar-charged"
            };
            let label = if b.low == b.high { "0".to_owned() } else { b.low.to_string() };
            view! {
                <g data-testid="distribution-bar">
                    <title>{format!("{range}: {} passengers", b.passengers)}</title>
                    <rect x=x y=H - 22 - height width=width height=height class=class />
                    <text x=x + width / 2 y=H - 6 text-anchor="middle" class="chart-label">{label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label="Passengers by change of their invoice" data-testid="distribution-chart">{drawn}</svg>
        <p class="muted small">"Each bar counts the passengers whose invoice changes by an amount from its label up to the next; red for more, blue for less, grey for no change."</p>
    }
    .into_any()
}

#[component]
fn ProposalForm(propose: ServerAction<ProposePricing>) -> impl IntoView {
    let form_ref = crate::components::form::reset_after(propose);
    view! {
        <section class="card">
            <h2>"Propose a version"</h2>
            <ActionForm action=propose node_ref=form_ref attr:class="form" attr:data-testid="propose-form">
                <label>"From week" <input name="version[effective_week]" placeholder="2026-W52" pattern="\\d{4}-W\\d{2}" required data-testid="propose-week" /></label>
                <label>"Per trip" <input name="version[base]" inputmode="decimal" placeholder="2.00" required data-testid="propose-base" /></label>
                <label>"Per km" <input name="version[per_km]" inputmode="decimal" placeholder="0.35" required data-testid="propose-per-km" /></label>
                <label>"Platform fee (basis points, 1500 = 15 %)" <input name="version[platform_fee_bps]" inputmode="numeric" placeholder="1500" required data-testid="propose-bps" /></label>
                <label>"No-show fee" <input name="version[no_show_fee]" inputmode="decimal" placeholder="3.00" required data-testid="propose-no-show" /></label>
                <label>"Why" <input name="version[note]" maxlength="500" data-testid="propose-note" /></label>
                <button type="submit" class="btn btn-primary" data-testid="propose-submit">"Propose"</button>
            </ActionForm>
            <p class="muted">"Amounts in the billing currency with at most its decimals. A version takes effect from this week or a later one; a week already approved keeps its prices."</p>
        </section>
    }
}

/// `1500` basis points as `15 %`, `1250` as `12.5 %`.
fn percent(bps: u32) -> String {
    let (whole, rest) = (bps / 100, bps % 100);
    if rest == 0 {
        format!("{whole} %")
    } else {
        format!("{whole}.{} %", format!("{rest:02}").trim_end_matches('0'))
    }
}

/// A change with its sign: `+1.20 USD`, `-0.40 USD`.
fn signed_money(minor: i64, like: Money) -> String {
    let amount = money(Money::from_minor(minor, like.currency()));
    if minor > 0 {
        format!("+{amount}")
    } else {
        amount
    }
}

fn day(at: Option<&str>) -> String {
    at.and_then(|t| t.get(..10)).unwrap_or_default().to_owned()
}

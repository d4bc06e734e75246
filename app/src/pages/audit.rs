//! `/audit`: the append-only audit log, newest first, filtered by the query string and paged
//! with a keyset cursor (`before_id`), so links are shareable and pages stay fast.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use crate::api::audit::list_audit;
use crate::api::resource;
use crate::components::access::ErrorNotice;
use crate::model::audit::{AuditEntry, AuditQuery};

fn field(q: &ParamsMap, name: &str) -> Option<String> {
    q.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn query_from(q: &ParamsMap) -> AuditQuery {
    AuditQuery {
        actor: field(q, "actor"),
        action: field(q, "action"),
        object_type: field(q, "object_type"),
        object_id: field(q, "object_id"),
        since: field(q, "since"),
        until: field(q, "until"),
        before_id: field(q, "before_id").and_then(|v| v.parse().ok()),
        limit: None,
    }
}

/// The link to the next page: the same filters, older entries.
fn next_link(query: &AuditQuery, next: i64) -> String {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let next = next.to_string();
    let pairs = [
        ("actor", value(&query.actor)),
        ("action", value(&query.action)),
        ("object_type", value(&query.object_type)),
        ("object_id", value(&query.object_id)),
        ("since", value(&query.since)),
        ("until", value(&query.until)),
        ("before_id", next),
    ];
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    crate::components::link::with_query("/audit", &pairs)
}

/// The audit log with its filters.
#[component]
pub fn AuditLogPage() -> impl IntoView {
    let params = use_query_map();
    let query = Memo::new(move |_| params.with(query_from));
    let page = resource(move || query.get(), list_audit);
    let value = move |name: &'static str| move || params.with(|q| field(q, name)).unwrap_or_default();
    view! {
        <Title text="Audit log" />
        <div class="page-header">
            <h1>"Audit log"</h1>
        </div>
        <form method="get" action="/audit" class="card filters" data-testid="audit-filters">
            <label>"Staff or actor" <input name="actor" value=value("actor") placeholder="ana@example.com" /></label>
            <label>"Action" <input name="action" value=value("action") placeholder="staff. or auth.login" /></label>
            <label>"Object type" <input name="object_type" value=value("object_type") placeholder="staff" /></label>
            <label>"Object id" <input name="object_id" value=value("object_id") /></label>
            <label>"From" <input name="since" type="date" value=value("since") /></label>
            <label>"Before" <input name="until" type="date" value=value("until") /></label>
            <div class="filter-actions">
                <button type="submit" class="btn btn-primary">"Filter"</button>
                <a class="btn" href="/audit">"Clear"</a>
            </div>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || page.get().map(|result| match result {
                Ok(page) => {
                    let next = page.next.map(|n| next_link(&query.get_untracked(), n));
                    view! {
                        <AuditTable entries=page.entries zone=page.time_zone />
                        {next.map(|href| view! { <a class="btn" href=href data-testid="audit-older">"Older entries →"</a> })}
                    }.into_any()
                }
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>, #[prop(into)] zone: String) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="card muted">"No entries match these filters."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="audit-table">
                <thead>
                    <tr>
                        <th>"When"</th>
                        <th>"Actor"</th>
                        <th>"From"</th>
                        <th>"Action"</th>
                        <th>"Object"</th>
                        <th>"Change"</th>
                    </tr>
                </thead>
                <tbody>
                    {entries.into_iter().map(|e| {
                        let object = match (e.object_type, e.object_id) {
                            (Some(t), Some(i)) => format!("{t} {i}"),
                            (Some(t), None) => t,
                            _ => String::new(),
                        };
                        let change = match (e.before, e.after) {
                            (Some(b), Some(a)) => format!("{b} → {a}"),
                            (None, Some(a)) => a,
                            (Some(b), None) => format!("{b} → removed"),
                            (None, None) => String::new(),
                        };
                        view! {
                            <tr>
                                <td class="nowrap" data-testid="audit-when">{crate::components::format::when(&e.at, &zone)}</td>
                                <td>
                                    {e.actor} " "
                                    <span class="badge">{e.actor_kind}</span>
                                </td>
                                <td>{e.source}</td>
                                <td><code>{e.action}</code></td>
                                <td>{object}</td>
                                <td class="change">
                                    {change}
                                    {e.detail.map(|d| view! { <div class="muted">{d}</div> })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

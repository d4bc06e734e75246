//! The HTML document, the navigation and the routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    ParamSegment, SsrMode, StaticSegment,
};

use crate::api::overview::whoami;
use crate::api::resource;
use crate::auth::Action;
use crate::components::theme::{initial_theme, ThemeToggle};
use crate::model::staff::Principal;
use crate::pages::{
    alerts::AlertsPage,
    audit::AuditLogPage,
    customers::{CustomerPage, UsersPage},
    disputes::DisputesPage,
    invoice::{InvoicePage, ReceiptPage},
    login::LoginPage,
    not_found::NotFound,
    overview::OverviewPage,
    pricing::PricingPage,
    profile::ProfilePage,
    reconcile::ReconcilePage,
    reports::ReportsPage,
    runs::{RunPage, RunsPage},
    staff::StaffPage,
    week::WeekPage,
};

/// The whole HTML document the server renders around the app.
///
/// The theme is chosen on the server from the `theme` cookie, so the first paint already has
/// the right colours and no inline script is needed.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let theme = initial_theme();
    // Outside live mode the server provides the band's words; CSS draws them above every page
    // (in the first HTML, with or without scripts, and outside what the app hydrates).
    let band = use_context::<crate::model::system::TestModeBand>().map(|band| band.0);
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <link rel="stylesheet" href=format!("/pkg/{}.css", options.output_name) />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body data-test-mode=band>
                <App />
            </body>
        </html>
    }
}

/// The dashboard: a navigation bar and one routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let me = resource(|| (), |_| whoami());
    provide_context(SignedIn(me));
    let content = NodeRef::<leptos::html::Main>::new();
    view! {
        <Title formatter=|page: String| {
            if page.is_empty() { "Carpool Billing".to_string() } else { format!("{page} · Carpool Billing") }
        } />
        <Router>
            // Without scripts the browser follows the link and focuses `main`; once the page is
            // interactive the router takes in-page links, so the focus is moved here.
            <a class="skip-link" href="#main" data-testid="skip-link" on:click=move |event| {
                if let Some(main) = content.get() {
                    event.prevent_default();
                    let _ = main.focus();
                }
            }>"Skip to content"</a>
            <header class="topbar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    "Carpool Billing"
                </a>
                <Transition fallback=|| view! { <nav class="nav"></nav> }>
                    {move || me.get().map(|me| view! { <Navigation me=me.ok().flatten() /> })}
                </Transition>
                <ThemeToggle />
            </header>
            <main class="page" id="main" tabindex="-1" node_ref=content>
                <HaltedBanner />
                <MismatchBanner />
                <OpenAlertsBanner />
                // Every page waits for its data on the server (`SsrMode::Async`), so the first
                // HTML holds it: pages work without scripts and paint data before the
                // WebAssembly loads.
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=OverviewPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("login") view=LoginPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("audit") view=AuditLogPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("staff") view=StaffPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("profile") view=ProfilePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("weeks"), ParamSegment("week")) view=WeekPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("runs") view=RunsPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("runs"), ParamSegment("id")) view=RunPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("reports") view=ReportsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("pricing") view=PricingPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("reconcile") view=ReconcilePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("disputes") view=DisputesPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("alerts") view=AlertsPage ssr=SsrMode::Async />
                    <Route path=StaticSegment("users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("users"), ParamSegment("id")) view=CustomerPage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("invoices"), ParamSegment("id")) view=InvoicePage ssr=SsrMode::Async />
                    <Route path=(StaticSegment("invoices"), ParamSegment("id"), StaticSegment("receipt")) view=ReceiptPage ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

/// Who is signed in, for pages that adapt to it (the staff page hides "Disable" on one's own row).
#[derive(Clone, Copy)]
pub struct SignedIn(pub Resource<Result<Option<Principal>, crate::api::AppError>, crate::api::codec::Json>);

impl SignedIn {
    /// The signed-in staff member, once known (tracked: read it inside a Transition).
    pub fn principal() -> Option<Principal> {
        use_context::<SignedIn>()?.0.get()?.ok()?
    }

    /// The signed-in staff member's id, once known.
    pub fn staff_id() -> Option<i64> {
        Some(Self::principal()?.staff.id)
    }

    /// Whether the signed-in staff member's role allows `action` (false until known).
    pub fn can(action: Action) -> bool {
        Self::principal().is_some_and(|p| p.staff.role.can(action))
    }
}

/// The links the signed-in staff member's role can use, and who they are. Nothing but the
/// brand for someone not signed in.
#[component]
fn Navigation(me: Option<Principal>) -> impl IntoView {
    let Some(me) = me else {
        return view! { <nav class="nav" aria-label="Main"></nav> }.into_any();
    };
    let role = me.staff.role;
    // On narrow screens the menu folds behind "Menu" (a checkbox and its label, so it opens
    // without scripts); following a link closes it.
    let toggle = NodeRef::<leptos::html::Input>::new();
    let close = move |_| {
        if let Some(toggle) = toggle.get() {
            toggle.set_checked(false);
        }
    };
    view! {
        <input type="checkbox" id="nav-toggle" class="nav-toggle" aria-label="Menu" node_ref=toggle />
        <label for="nav-toggle" class="btn nav-toggle-label" data-testid="nav-menu">"Menu"</label>
        <div class="nav-menu-body" on:click=close>
        <nav class="nav" aria-label="Main" data-testid="nav">
            <A href="/" exact=true>"Overview"</A>
            // `/weeks` is answered by the server (it redirects to the last complete week).
            {role.can(Action::PreviewWeek).then(|| view! { <a href="/weeks" rel="external" data-testid="nav-weeks">"Weeks"</a> })}
            <A href="/runs">"Runs"</A>
            {role.can(Action::LookupUsers).then(|| view! { <A href="/users">"Customers"</A> })}
            {role.can(Action::ExportReports).then(|| view! { <A href="/reports">"Reports"</A> })}
            {role.can(Action::ManagePricing).then(|| view! { <A href="/pricing">"Pricing"</A> })}
            {role.can(Action::Reconcile).then(|| view! { <A href="/reconcile">"Reconcile"</A> })}
            {role.can(Action::ManageDisputes).then(|| view! { <A href="/disputes">"Disputes"</A> })}
            <A href="/alerts">"Alerts"</A>
            {role.can(Action::ViewAudit).then(|| view! { <A href="/audit">"Audit log"</A> })}
            {role.can(Action::ManageStaff).then(|| view! { <A href="/staff">"Staff"</A> })}
        </nav>
        <div class="user" data-testid="user">
            <a class="user-email" href="/profile" data-testid="profile-link">{me.staff.email.clone()}</a>
            <span class="badge badge-info" data-testid="role">{role.as_str()}</span>
            <form method="post" action="/logout">
                <button type="submit" class="btn btn-ghost" data-testid="sign-out">"Sign out"</button>
            </form>
        </div>
        </div>
    }
    .into_any()
}

/// A banner on every page while alerts are not resolved, checked every ten seconds: each one's
/// title, and who acknowledged it or that nobody has yet; nothing for anonymous callers.
#[component]
fn OpenAlertsBanner() -> impl IntoView {
    let tick = crate::components::tick::every(10);
    let open = resource(move || tick.get(), |_| crate::api::alerts::open_alerts());
    view! {
        <Transition fallback=|| ()>
            {move || open.get().and_then(Result::ok).filter(|alerts| !alerts.is_empty()).map(|alerts| {
                let waiting = alerts.iter().filter(|a| a.acknowledged_by.is_none()).count();
                let tone = if waiting > 0 { "banner banner-warning" } else { "banner banner-info" };
                view! {
                    <div class=tone data-testid="open-alerts-banner">
                        <strong><span data-testid="open-alerts-count">{waiting}</span> " alert(s) nobody acknowledged yet"</strong>
                        " · " <a href="/alerts">"See the alerts"</a>
                        <ul class="banner-list">
                            {alerts.into_iter().map(|a| {
                                let who = match &a.acknowledged_by {
                                    Some(by) => format!("acknowledged by {by}"),
                                    None => "nobody acknowledged it yet".to_owned(),
                                };
                                view! { <li data-testid="open-alert">{a.title} " — " <span data-testid="open-alert-who">{who}</span></li> }
                            }).collect_view()}
                        </ul>
                    </div>
                }
            })}
        </Transition>
    }
}

/// A red banner on every page while a run is halted by a guard, checked every five seconds.
#[component]
fn HaltedBanner() -> impl IntoView {
    let tick = crate::components::tick::every(5);
    let halted = resource(move || tick.get(), |_| crate::api::runs::halted_runs());
    view! {
        <Transition fallback=|| ()>
            {move || halted.get().and_then(Result::ok).filter(|runs| !runs.is_empty()).map(|runs| view! {
                <div class="banner banner-danger halted-banner" role="alert" data-testid="halted-banner">
                    {runs.into_iter().map(|r| view! {
                        <div>
                            <strong>"Run " <a href=format!("/runs/{}", r.id)>"#" {r.id}</a> " (week " {r.week} ") is halted: "</strong>
                            {r.reason}
                        </div>
                    }).collect_view()}
                </div>
            })}
        </Transition>
    }
}

/// A red banner on every page (for those who reconcile) while a week's latest reconciliation
/// found items that do not match the ledger and nobody acknowledged them; checked every ten
/// seconds.
#[component]
fn MismatchBanner() -> impl IntoView {
    let tick = crate::components::tick::every(10);
    let open = resource(move || tick.get(), |_| crate::api::reconcile::open_mismatches());
    view! {
        <Transition fallback=|| ()>
            {move || open.get().and_then(Result::ok).filter(|open| !open.is_empty()).map(|open| view! {
                <div class="banner banner-danger halted-banner" role="alert" data-testid="mismatch-banner">
                    {open.into_iter().map(|m| view! {
                        <div>
                            <strong>"Reconciliation of " <a href=format!("/reconcile?week={}", m.week)>{m.week.clone()}</a> ": "</strong>
                            {m.unmatched} " item(s) at the provider and in the ledger do not match."
                        </div>
                    }).collect_view()}
                </div>
            })}
        </Transition>
    }
}

//! The HTML document, the navigation and the routes.

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    StaticSegment,
};

use crate::components::theme::{initial_theme, ThemeToggle};
use crate::pages::{not_found::NotFound, overview::OverviewPage};

/// The whole HTML document the server renders around the app.
///
/// The theme is chosen on the server from the `theme` cookie, so the first paint already has
/// the right colours and no inline script is needed.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let theme = initial_theme();
    view! {
        <!DOCTYPE html>
        <html lang="en" data-theme=theme>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The dashboard: a navigation bar and one routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/billing.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Carpool Billing".to_string() } else { format!("{page} · Carpool Billing") }
        } />
        <Router>
            <header class="topbar">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    "Carpool Billing"
                </a>
                <nav class="nav" aria-label="Main">
                    <A href="/" exact=true>"Overview"</A>
                </nav>
                <ThemeToggle />
            </header>
            <main class="page">
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=OverviewPage />
                </Routes>
            </main>
        </Router>
    }
}

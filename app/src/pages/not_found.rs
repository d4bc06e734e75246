//! The page for addresses the dashboard does not have.

use leptos::prelude::*;
use leptos_meta::Title;

/// 404: says so plainly and offers the way back.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found" />
        <section class="card empty-state">
            <h1>"Page not found"</h1>
            <p class="muted">"There is no page at this address."</p>
            <a class="btn btn-primary" href="/">"Back to the overview"</a>
        </section>
    }
}

//! Carpool Billing's dashboard (Leptos) and the types the server and the browser share.
//!
//! Compiled twice: with `ssr` into the `billing` server, with `hydrate` into the WebAssembly
//! bundle. Nothing server-only (database, HTTP server) is reachable without `ssr`.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod components;
pub mod model;
pub mod pages;
mod shell;

pub use shell::{shell, App, SignedIn};

/// The WebAssembly entry point: attaches the dashboard to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // A mark that the page now reacts: what the benchmark of the time to interactive waits for.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}

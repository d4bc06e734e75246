//! Light and dark themes, chosen per browser and remembered in a cookie.

use leptos::prelude::*;

/// A colour theme of the dashboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    Light,
    Dark,
}

impl Theme {
    /// The value of the `data-theme` attribute and of the `theme` cookie.
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    /// Reads a cookie or attribute value; anything else means "follow the system".
    pub fn parse(value: &str) -> Option<Theme> {
        match value {
            "light" => Some(Theme::Light),
            "dark" => Some(Theme::Dark),
            _ => None,
        }
    }

    fn other(self) -> Theme {
        match self {
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::Light,
        }
    }
}

/// The name of the cookie that remembers the chosen theme.
pub const THEME_COOKIE: &str = "theme";

/// The theme chosen in this browser, if any: from the request's cookie on the server.
#[cfg(feature = "ssr")]
pub fn initial_theme() -> Option<&'static str> {
    let parts = use_context::<http::request::Parts>()?;
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == THEME_COOKIE)
        .and_then(|(_, value)| Theme::parse(value))
        .map(Theme::as_str)
}

/// The theme chosen in this browser, if any: on the client, from the document itself.
#[cfg(not(feature = "ssr"))]
pub fn initial_theme() -> Option<&'static str> {
    current_document_theme().map(Theme::as_str)
}

#[cfg(feature = "hydrate")]
fn current_document_theme() -> Option<Theme> {
    document()
        .document_element()
        .and_then(|root| root.get_attribute("data-theme"))
        .and_then(|value| Theme::parse(&value))
}

#[cfg(not(any(feature = "hydrate", feature = "ssr")))]
fn current_document_theme() -> Option<Theme> {
    None
}

/// The theme the browser shows right now: the chosen one, else the system's preference.
#[cfg(feature = "hydrate")]
fn effective_theme() -> Theme {
    current_document_theme().unwrap_or_else(|| {
        let prefers_dark = window()
            .match_media("(prefers-color-scheme: dark)")
            .ok()
            .flatten()
            .is_some_and(|query| query.matches());
        if prefers_dark {
            Theme::Dark
        } else {
            Theme::Light
        }
    })
}

#[cfg(feature = "hydrate")]
fn apply_theme(theme: Theme) {
    use wasm_bindgen::JsCast;
    if let Some(root) = document().document_element() {
        let _ = root.set_attribute("data-theme", theme.as_str());
    }
    if let Ok(html) = document().dyn_into::<web_sys::HtmlDocument>() {
        let cookie = format!("{THEME_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax", theme.as_str());
        let _ = html.set_cookie(&cookie);
    }
}

/// A button that switches between the light and the dark theme. It works once the
/// WebAssembly has loaded (the server-rendered page keeps the theme it was sent with).
#[component]
pub fn ThemeToggle() -> impl IntoView {
    let (theme, set_theme) = signal(initial_theme().and_then(Theme::parse).unwrap_or(Theme::Light));

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| set_theme.set(effective_theme()));

    let toggle = move |_| {
        let next = theme.get_untracked().other();
        #[cfg(feature = "hydrate")]
        apply_theme(next);
        set_theme.set(next);
    };

    view! {
        <button
            type="button"
            class="btn btn-ghost theme-toggle"
            data-testid="theme-toggle"
            title=move || format!("Switch to the {} theme", theme.get().other().as_str())
            aria-label=move || format!("Switch to the {} theme", theme.get().other().as_str())
            on:click=toggle
        >
            <span aria-hidden="true">{move || if theme.get() == Theme::Dark { "☀" } else { "☾" }}</span>
            <span class="theme-toggle-label">
                {move || if theme.get() == Theme::Dark { "Light" } else { "Dark" }}
            </span>
        </button>
    }
}

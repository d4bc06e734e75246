//! A coloured message box for information, warnings and errors.

use leptos::prelude::*;

/// How loud a banner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Success,
    Warning,
    Danger,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Info => "banner banner-info",
            Tone::Success => "banner banner-success",
            Tone::Warning => "banner banner-warning",
            Tone::Danger => "banner banner-danger",
        }
    }
}

/// A message that spans the page: `role="alert"` for warnings and errors so screen readers
/// announce it.
#[component]
pub fn Banner(tone: Tone, children: Children) -> impl IntoView {
    let role = match tone {
        Tone::Warning | Tone::Danger => "alert",
        Tone::Info | Tone::Success => "status",
    };
    view! { <div class=tone.class() role=role>{children()}</div> }
}

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
/// announce it. The result of an action (`focus`) takes the keyboard focus when it appears, so
/// the next Tab goes on from what just happened.
#[component]
pub fn Banner(tone: Tone, children: Children, #[prop(optional)] focus: bool) -> impl IntoView {
    let role = match tone {
        Tone::Warning | Tone::Danger => "alert",
        Tone::Info | Tone::Success => "status",
    };
    let node = NodeRef::<leptos::html::Div>::new();
    if focus {
        Effect::new(move |_| {
            if let Some(banner) = node.get() {
                let _ = banner.focus();
            }
        });
    }
    view! { <div class=tone.class() role=role tabindex=focus.then_some("-1") node_ref=node data-testid=focus.then_some("action-result")>{children()}</div> }
}

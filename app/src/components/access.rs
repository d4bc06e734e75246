//! What a page shows when the server refuses its data.

use leptos::prelude::*;

use crate::api::AppError;
use crate::components::banner::{Banner, Tone};

/// A banner for an error from a server function: a sign-in link for 401, the reason for 403.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    match error {
        AppError::Unauthenticated => view! {
            <Banner tone=Tone::Warning>
                "Your session ended. " <a href="/login">"Sign in again"</a>
            </Banner>
        }
        .into_any(),
        AppError::Forbidden(reason) => view! {
            <Banner tone=Tone::Warning>
                <strong>"Not available to your role. "</strong>
                <span data-testid="forbidden">{reason}</span>
            </Banner>
        }
        .into_any(),
        other => view! { <Banner tone=Tone::Danger>{other.to_string()}</Banner> }.into_any(),
    }
}

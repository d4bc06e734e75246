//! A figure with its label.

use leptos::prelude::*;

/// A figure with its label; money figures carry their currency as a smaller unit.
#[component]
pub fn Stat(
    label: &'static str,
    value: String,
    testid: &'static str,
    #[prop(optional)] unit: String,
) -> impl IntoView {
    view! {
        <div class="stat">
            <div class="stat-label">{label}</div>
            <div class="stat-value num">
                <span data-testid=testid>{value}</span>
                {(!unit.is_empty()).then(|| view! { " " <span class="stat-unit">{unit}</span> })}
            </div>
        </div>
    }
}

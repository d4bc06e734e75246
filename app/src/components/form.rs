//! What every form of the dashboard does after it succeeds.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// A form's node reference that clears the form once `action` succeeds, so the next entry starts
/// empty (a refused entry keeps what was typed, to be corrected).
pub fn reset_after<S>(action: ServerAction<S>) -> NodeRef<leptos::html::Form>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if action.value().with(|v| matches!(v, Some(Ok(_)))) {
            if let Some(form) = form.get_untracked() {
                form.reset();
            }
        }
    });
    form
}

//! A counter that goes up every few seconds in the browser, for views that refresh by themselves.

use leptos::prelude::*;

/// A signal that changes every `seconds` once the page is interactive (never on the server);
/// resources that read it are fetched again each time. Stops with the component.
pub fn every(seconds: u64) -> ReadSignal<u32> {
    let (tick, set_tick) = signal(0u32);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || set_tick.update(|t| *t += 1),
            std::time::Duration::from_secs(seconds),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (seconds, set_tick);
    tick
}

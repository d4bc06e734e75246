//! `/login`: a plain HTML form posted to the server, so it works before (and without) the
//! WebAssembly. The server answers with a redirect: to the page asked for, or back here with
//! the reason in `?error=`.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::components::banner::{Banner, Tone};

/// Why a sign-in was refused, as the server names it in `?error=`.
pub fn login_error_message(code: &str) -> &'static str {
    match code {
        "invalid" => "The email or the password is wrong, or the account is disabled.",
        "throttled_account" => "Too many sign-in attempts for this account. Wait a minute and try again.",
        "throttled_address" => "Too many sign-in attempts from this address. Wait a minute and try again.",
        "expired" => "Your session ended. Please sign in again.",
        "missing" => "Enter your email and your password.",
        _ => "Sign-in failed. Please try again.",
    }
}

/// The sign-in form.
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.with(|q| q.get("error"));
    let next = move || query.with(|q| q.get("next")).unwrap_or_else(|| "/".into());
    let email = move || query.with(|q| q.get("email")).unwrap_or_default();
    view! {
        <Title text="Sign in" />
        <section class="card login-card">
            <h1>"Sign in"</h1>
            <p class="muted">"Carpool Billing is for staff. Your administrator creates your account."</p>
            {move || error().map(|code| view! { <Banner tone=Tone::Danger>{login_error_message(&code)}</Banner> })}
            <form method="post" action="/login" class="form" data-testid="login-form">
                <input type="hidden" name="next" value=next />
                <label>
                    "Email"
                    <input type="email" name="email" autocomplete="username" required autofocus value=email />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <button type="submit" class="btn btn-primary">"Sign in"</button>
            </form>
        </section>
    }
}

//! `/profile`: who you are, and your personal access tokens for the staff JSON API.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::resource;
use crate::api::tokens::{list_my_tokens, CreateMyToken, RevokeMyToken};
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::model::staff::AccessToken;

/// The profile page.
#[component]
pub fn ProfilePage() -> impl IntoView {
    let create = ServerAction::<CreateMyToken>::new();
    let revoke = ServerAction::<RevokeMyToken>::new();
    let tokens = resource(move || (create.version().get(), revoke.version().get()), |_| list_my_tokens());
    let form_ref = crate::components::form::reset_after(create);
    view! {
        <Title text="Profile" />
        <div class="page-header"><h1>"Profile"</h1></div>
        {move || create.value().get().map(|result| match result {
            Ok(new) => {
                let copied = RwSignal::new(false);
                let secret = new.secret.clone();
                let copy = move |_| {
                    #[cfg(feature = "hydrate")]
                    if let Some(window) = web_sys::window() {
                        let _ = window.navigator().clipboard().write_text(&secret);
                        copied.set(true);
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = &secret;
                };
                view! {
                    <Banner focus=true tone=Tone::Success>
                        "Token “" {new.token.name} "” created. Copy it now: it is not shown again."
                        <pre class="secret" data-testid="new-token">{new.secret}</pre>
                        <button type="button" class="btn" on:click=copy data-testid="copy-token">
                            {move || if copied.get() { "Copied" } else { "Copy" }}
                        </button>
                    </Banner>
                }.into_any()
            }
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        {move || revoke.value().get().and_then(Result::err).map(|error| view! { <ErrorNotice error /> })}
        <section class="card">
            <h2>"Personal access tokens"</h2>
            <p class="muted">
                "A token lets a script use the staff JSON API (" <code>"Authorization: Bearer …"</code>
                ") with your role. Revoke it when the script no longer needs it."
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || tokens.get().map(|result| match result {
                    Ok(list) => view! { <TokenTable list revoke /> }.into_any(),
                    Err(error) => view! { <ErrorNotice error /> }.into_any(),
                })}
            </Transition>
            <ActionForm action=create node_ref=form_ref attr:class="form form-inline" attr:data-testid="create-token-form">
                <label>"Name" <input name="name" required maxlength="100" placeholder="weekly export script" /></label>
                <label>
                    "Valid for"
                    <select name="days">
                        <option value="30">"30 days"</option>
                        <option value="90" selected>"90 days"</option>
                        <option value="366">"a year"</option>
                    </select>
                </label>
                <button type="submit" class="btn btn-primary">"Create token"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn TokenTable(list: Vec<AccessToken>, revoke: ServerAction<RevokeMyToken>) -> impl IntoView {
    if list.is_empty() {
        return view! { <p class="muted" data-testid="no-tokens">"No tokens yet."</p> }.into_any();
    }
    view! {
        <table class="table" data-testid="token-table">
            <thead><tr><th>"Name"</th><th>"Starts with"</th><th>"Created"</th><th>"Expires"</th><th>"Status"</th><th></th></tr></thead>
            <tbody>
                {list.into_iter().map(|t| {
                    let live = t.revoked_at.is_none();
                    view! {
                        <tr>
                            <td>{t.name.clone()}</td>
                            <td><code>{t.prefix.clone()} "…"</code></td>
                            <td>{t.created_at.get(..10).unwrap_or_default().to_string()}</td>
                            <td>{t.expires_at.as_deref().and_then(|e| e.get(..10)).unwrap_or("never").to_string()}</td>
                            <td>{if live {
                                view! { <span class="badge badge-success">"active"</span> }.into_any()
                            } else {
                                view! { <span class="badge badge-danger">"revoked"</span> }.into_any()
                            }}</td>
                            <td>{live.then(|| view! {
                                <ActionForm action=revoke>
                                    <input type="hidden" name="token_id" value=t.id />
                                    <button type="submit" class="btn btn-danger">"Revoke"</button>
                                </ActionForm>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

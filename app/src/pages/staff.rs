//! `/staff` (admin): the staff accounts, adding one, disabling one. The forms are `ActionForm`s,
//! so they work before the WebAssembly loads. Disabling takes two steps: "Disable…" on a row
//! opens a confirmation that names the person (`/staff?disable=ID`), away from the table, so that
//! no click on a row disables anyone.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::resource;
use crate::api::staff::{list_staff, AddStaff, DisableStaff};
use crate::components::access::ErrorNotice;
use crate::components::banner::{Banner, Tone};
use crate::model::staff::{Role, Staff};

/// The staff list and its forms.
#[component]
pub fn StaffPage() -> impl IntoView {
    let add = ServerAction::<AddStaff>::new();
    let disable = ServerAction::<DisableStaff>::new();
    let staff = resource(move || (add.version().get(), disable.version().get()), |_| list_staff());
    let form_ref = crate::components::form::reset_after(add);
    let query = use_query_map();
    let asked = Memo::new(move |_| query.with(|q| q.get("disable").and_then(|id| id.parse::<i64>().ok())));
    // Once disabled, the confirmation closes.
    Effect::new(move |_| {
        if let Some(Ok(_)) = disable.value().get() {
            use_navigate()("/staff", Default::default());
        }
    });
    view! {
        <Title text="Staff" />
        <div class="page-header">
            <h1>"Staff"</h1>
        </div>
        {move || add.value().get().map(|result| match result {
            Ok(s) => view! { <Banner focus=true tone=Tone::Success>"Added " {s.email} " as " {s.role.as_str()} "."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        {move || disable.value().get().map(|result| match result {
            Ok(s) => view! { <Banner focus=true tone=Tone::Success>"Disabled " {s.email} "."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || staff.get().map(|result| match result {
                Ok(list) => {
                    let confirm = asked.get().and_then(|id| list.iter().find(|s| s.id == id && s.disabled_at.is_none()).cloned());
                    view! {
                        {confirm.map(|person| view! { <ConfirmDisable person disable /> })}
                        <StaffTable list />
                    }.into_any()
                }
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <section class="card">
            <h2>"Add a staff member"</h2>
            <ActionForm action=add node_ref=form_ref attr:class="form form-inline" attr:data-testid="add-staff-form">
                <label>"Email" <input type="email" name="email" required /></label>
                <label>
                    "Role"
                    <select name="role">
                        {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> }).collect_view()}
                    </select>
                </label>
                <label>
                    "Initial password"
                    <input type="password" name="password" minlength="12" autocomplete="new-password" required />
                </label>
                <button type="submit" class="btn btn-primary">"Add"</button>
            </ActionForm>
            <p class="muted">"At least 12 characters. Give it to the person through a separate channel."</p>
        </section>
    }
}

/// The second step of disabling: who, what it does, and the one button that does it.
#[component]
fn ConfirmDisable(person: Staff, disable: ServerAction<DisableStaff>) -> impl IntoView {
    let label = format!("Disable {}", person.email);
    view! {
        <section class="card confirm" data-testid="disable-confirm" aria-labelledby="disable-title">
            <h2 id="disable-title">{format!("Disable {} ({})?", person.email, person.role.as_str())}</h2>
            <p>"They are signed out at once and their access tokens stop working. The account and its history stay; it cannot be enabled again, but a new account can be added."</p>
            <div class="row-actions">
                <ActionForm action=disable>
                    <input type="hidden" name="staff_id" value=person.id />
                    <button type="submit" class="btn btn-danger" autofocus data-testid="disable-confirm-button">{label}</button>
                </ActionForm>
                <a class="btn" href="/staff" data-testid="disable-cancel">"Cancel"</a>
            </div>
        </section>
    }
}

#[component]
fn StaffTable(list: Vec<Staff>) -> impl IntoView {
    view! {
        <div class="table-wrap">
        <table class="table" data-testid="staff-table">
            <thead>
                <tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Since"</th><th>"Actions"</th></tr>
            </thead>
            <tbody>
                {list.into_iter().map(|s| {
                    let active = s.disabled_at.is_none();
                    let is_me = move || crate::SignedIn::staff_id() == Some(s.id);
                    view! {
                        <tr>
                            <td>{s.email.clone()}</td>
                            <td><span class="badge badge-info">{s.role.as_str()}</span></td>
                            <td>{if active {
                                view! { <span class="badge badge-success">"active"</span> }.into_any()
                            } else {
                                view! { <span class="badge badge-danger">"disabled"</span> }.into_any()
                            }}</td>
                            <td>{s.created_at.get(..10).unwrap_or_default().to_string()}</td>
                            <td>{move || if is_me() {
                                view! { <span class="muted">"you"</span> }.into_any()
                            } else if active {
                                let href = format!("/staff?disable={}", s.id);
                                let label = format!("Disable {}…", s.email);
                                view! {
                                    <a class="btn" href=href aria-label=label data-testid="disable-start">"Disable…"</a>
                                }.into_any()
                            } else {
                                ().into_any()
                            }}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

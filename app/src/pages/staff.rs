//! `/staff` (admin): the staff accounts, adding one, disabling one. The forms are `ActionForm`s,
//! so they work before the WebAssembly loads.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

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

    view! {
        <Title text="Staff" />
        <div class="page-header">
            <h1>"Staff"</h1>
        </div>
        {move || add.value().get().map(|result| match result {
            Ok(s) => view! { <Banner tone=Tone::Success>"Added " {s.email} " as " {s.role.as_str()} "."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        {move || disable.value().get().map(|result| match result {
            Ok(s) => view! { <Banner tone=Tone::Success>"Disabled " {s.email} "."</Banner> }.into_any(),
            Err(error) => view! { <ErrorNotice error /> }.into_any(),
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || staff.get().map(|result| match result {
                Ok(list) => view! { <StaffTable list disable /> }.into_any(),
                Err(error) => view! { <ErrorNotice error /> }.into_any(),
            })}
        </Transition>
        <section class="card">
            <h2>"Add a staff member"</h2>
            <ActionForm action=add attr:class="form form-inline" attr:data-testid="add-staff-form">
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

#[component]
fn StaffTable(list: Vec<Staff>, disable: ServerAction<DisableStaff>) -> impl IntoView {
    view! {
        <table class="table" data-testid="staff-table">
            <thead>
                <tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Since"</th><th></th></tr>
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
                                view! {
                                    <ActionForm action=disable>
                                        <input type="hidden" name="staff_id" value=s.id />
                                        <button type="submit" class="btn btn-danger">"Disable"</button>
                                    </ActionForm>
                                }.into_any()
                            } else {
                                ().into_any()
                            }}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

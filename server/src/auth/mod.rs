//! Who is asking: passwords, sessions, tokens and sign-in throttling; and who may decide a request
//! waiting for approval (four eyes). The HTTP side (sign-in and sign-out, and the middleware that
//! authenticates every request and applies the role table before any handler runs) is
//! `http::login` and `http::authenticate`.

pub mod four_eyes;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

/// The role check a service makes itself, for every edge that calls it (dashboard, API, CLI):
/// the same rule as `app::auth::authorize` (an active account whose role allows `action`), as a
/// service error.
pub fn may(
    principal: &app::model::staff::Principal,
    action: app::auth::Action,
) -> Result<(), crate::error::Error> {
    use crate::error::Error;
    let role = principal.staff.role;
    if principal.staff.disabled_at.is_some() {
        Err(Error::Unauthenticated)
    } else if role.can(action) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("the {role} role may not {}", app::auth::describe(action))))
    }
}

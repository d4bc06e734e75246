//! Who is asking: passwords, sessions, tokens and sign-in throttling. The HTTP side (sign-in and
//! sign-out, and the middleware that authenticates every request and applies the role table
//! before any handler runs) is `http::login` and `http::authenticate`.

pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

/// The role check a service makes itself, for every edge that calls it (dashboard, API, CLI):
/// `app::auth::authorize`'s answer as a service error.
pub fn may(
    principal: &app::model::staff::Principal,
    action: app::auth::Action,
) -> Result<(), crate::error::Error> {
    use crate::error::Error;
    use app::api::AppError;
    app::auth::authorize(Some(principal), action).map(|_| ()).map_err(|e| match e {
        AppError::Forbidden(message) => Error::Forbidden(message),
        AppError::Unauthenticated => Error::Unauthenticated,
        other => Error::internal("checking the role", other),
    })
}

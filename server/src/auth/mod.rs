//! Who is asking: passwords, sessions, tokens, sign-in and sign-out, and the middleware that
//! authenticates every request and applies the role table before any handler runs.

pub mod login;
pub mod middleware;
pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

//! Who is asking: passwords, sessions, tokens and sign-in throttling. The HTTP side (sign-in and
//! sign-out, and the middleware that authenticates every request and applies the role table
//! before any handler runs) is `http::login` and `http::authenticate`.

pub mod password;
pub mod session;
pub mod throttle;
pub mod token;

//! Everything that talks to the payment provider.
//!
//! Today this holds only the simulator, so that the weekly run, the tests and the demo can move
//! (pretend) money without a network or an account. The provider interface the run engine calls,
//! and the Stripe client that implements it against the real API (or against this simulator, by
//! pointing `PSP_URL` at it), will join it here.

pub mod sim;

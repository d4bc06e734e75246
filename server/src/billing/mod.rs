//! Pure billing rules: no I/O, unit and property tests. Pricing and splitting so far; the
//! invoice planning and the run's guards will join them.

pub mod plan;
pub mod pricing;
pub mod split;

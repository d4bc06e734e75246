//! The migrations are embedded by `sqlx::migrate!`; a change to them alone must rebuild the
//! binary (sqlx documents this build script for it).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

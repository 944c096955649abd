//! `rvs-keepalived`: see the crate docs.
fn main() {}

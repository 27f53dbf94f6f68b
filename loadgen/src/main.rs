//! strata-loadgen.
fn main() {}

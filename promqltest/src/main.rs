//! strata-promqltest (being written).
fn main() {}

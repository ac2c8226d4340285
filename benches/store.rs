//! Store benches (placeholder until written).
fn main() {}

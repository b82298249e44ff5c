//! Policy loading benchmark (placeholder until the loader lands)

fn main() {}

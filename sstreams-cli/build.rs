//! Build script (placeholder: static-policy code generation lands with the policy work)

fn main() {}

//! Generates `static_policies.rs` for the static-policy round-trip test: every test policy
//! converted by the same code as `sstreams policy to-rust`, so the test can compile the output
//! and compare it with the policy loaded from JSON.

use std::fmt::Write as _;

include!("../sstreams-core/testdata/corpus.rs");

fn main() {
    println!("cargo::rerun-if-changed=../sstreams-core/testdata");
    let mut out = String::new();
    let mut table = String::from("/// `(file name, static policy)` of every test policy\n");
    table.push_str(
        "#[allow(clippy::type_complexity)]\npub const STATIC_POLICIES: &[(&str, fn() -> ::sstreams_core::policy::Policy)] = &[\n",
    );
    for (i, (name, text)) in test_policies().into_iter().enumerate() {
        let policy = sstreams_core::policy::json::load(&text)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .policy;
        let code = sstreams_core::policy::codegen::to_rust(&policy, "policy", &name);
        let _ = writeln!(
            out,
            "/// Generated from `{name}`\npub mod static_policy_{i} {{\n{code}}}\n"
        );
        let _ = writeln!(table, "    ({name:?}, static_policy_{i}::policy),");
    }
    table.push_str("];\n");
    out.push_str(&table);
    let dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(std::path::Path::new(&dir).join("static_policies.rs"), out)
        .expect("OUT_DIR is writable");
}

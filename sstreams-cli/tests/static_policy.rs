//! Static policies: every test policy, converted to Rust by the `to-rust` code generator at
//! build time (see `build.rs`), compiles and builds exactly the policy the JSON loader builds

use sstreams_core::policy::json::load;

include!("../../sstreams-core/testdata/corpus.rs");
include!(concat!(env!("OUT_DIR"), "/static_policies.rs"));

#[test]
fn every_policy_round_trips_through_rust_source() {
    let corpus = test_policies();
    assert_eq!(STATIC_POLICIES.len(), corpus.len());
    for ((name, build), (json_name, text)) in STATIC_POLICIES.iter().zip(&corpus) {
        assert_eq!(name, json_name);
        let from_json = load(text).unwrap_or_else(|e| panic!("{name}: {e}")).policy;
        let from_rust = build();
        assert_eq!(from_rust, from_json, "{name}: the static policy differs");
    }
}

#[test]
fn raw_streamtypes_convert_too() {
    let (_, build) = STATIC_POLICIES
        .iter()
        .find(|(n, _)| *n == "kitchen-sink.json")
        .expect("kitchen-sink policy in the corpus");
    let p = build();
    let raw = p.streamtype("raw_client").expect("raw streamtype present");
    assert_eq!(raw.protocol(), sstreams_core::policy::Protocol::Raw);
    assert_eq!(raw.buffers().proxy_buflen, 65536);
    assert!(p.streamtype("raw_server").expect("raw server").is_server());
}

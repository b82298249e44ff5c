//! The policy loader on arbitrary input: a full load, and the same bytes as an overlay over a
//! small valid policy. Anything may be refused; nothing may panic.
#![no_main]

use std::sync::OnceLock;

use sstreams_core::policy::Policy;
use sstreams_core::policy::json::{load, load_overlay};

fn base() -> &'static Policy {
    static BASE: OnceLock<Policy> = OnceLock::new();
    BASE.get_or_init(|| {
        Policy::from_json(
            r#"{ "retry": [{ "r": { "backoff": [1, 2], "conceal": 2 } }],
                 "certs": [{ "c": "MAA=" }], "trust_stores": [{ "name": "t", "stack": ["c"] }],
                 "s": [{ "a": { "endpoint": "h", "port": 1, "retry": "r", "tls": true,
                                "tls_trust_store": "t", "metadata": [{ "m": "x-m:" }] } }] }"#,
        )
        .expect("valid base policy")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = load(text) {
        let again =
            Policy::from_spec(loaded.policy.to_spec()).expect("a loaded policy revalidates");
        assert_eq!(again, loaded.policy);
    }
    let _ = load_overlay(base(), text);
});

//! Mutated policies thrown at the loader: errors, never panics
#![cfg(feature = "json")]

use proptest::prelude::*;
use sstreams_core::policy::Policy;
use sstreams_core::policy::json::{load, load_overlay};

include!("../testdata/corpus.rs");

/// Fragments that are likely to reach deep into the loader when spliced into a policy
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "65536",
    "18446744073709551616",
    "1e3",
    "1.5",
    "\"${\"",
    "\"${x}\"",
    "\"\\u0000\"",
    "\"é\"",
    "\"retry\"",
    "\"s\"",
    "\"port\"",
    "\"protocol\"",
    "\"mqtt\"",
    "\"raw\"",
    "\"backoff\"",
    "\"tls_trust_store\"",
    "\"metadata\"",
    "\"http_resp_map\"",
    "\"certs\"",
    "\"stack\"",
    "\"svalidhup\"",
    "\"@@@\"",
    "{\"a\":{}}",
    "[{}]",
    "[[[[",
    "\"MAA=\"",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte range `[at, at + len)` with a token
    Splice { at: usize, len: usize, token: usize },
    /// Cut the text at this point
    Truncate(usize),
    /// Flip one byte
    Flip { at: usize, bit: u8 },
    /// Repeat a range of the text
    Duplicate { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..16, 0..TOKENS.len())
            .prop_map(|(at, len, token)| Mutation::Splice { at, len, token }),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), 0usize..64).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
    ]
}

fn apply(text: &str, m: &[Mutation]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for m in m {
        let n = b.len().max(1);
        match *m {
            Mutation::Splice { at, len, token } => {
                let at = at % n;
                let end = (at + len).min(b.len());
                let at = at.min(end);
                b.splice(at..end, TOKENS[token].bytes());
            }
            Mutation::Truncate(at) => b.truncate(at % n),
            Mutation::Flip { at, bit } => {
                if !b.is_empty() {
                    let i = at % b.len();
                    b[i] ^= 1 << bit;
                }
            }
            Mutation::Duplicate { at, len } => {
                let at = at % n;
                let end = (at + len).min(b.len());
                let piece = b[at.min(end)..end].to_vec();
                b.splice(end..end, piece);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn mutated_policies_never_panic(
        which in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..6),
    ) {
        let corpus = test_policies();
        let (_, text) = &corpus[which.index(corpus.len())];
        let bytes = apply(text, &muts);
        let text = String::from_utf8_lossy(&bytes);
        match load(&text) {
            Ok(loaded) => {
                // A policy that loads is stable under spec → validate.
                let again = Policy::from_spec(loaded.policy.to_spec()).expect("revalidates");
                prop_assert_eq!(again, loaded.policy);
            }
            Err(e) => {
                // Every error from text has a position and a message.
                prop_assert!(e.location().is_some(), "no location: {}", e);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn mutated_overlays_never_panic(
        base in any::<prop::sample::Index>(),
        frag in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 0..4),
    ) {
        let corpus = test_policies();
        let base = load(&corpus[base.index(corpus.len())].1).expect("corpus loads").policy;
        let bytes = apply(&corpus[frag.index(corpus.len())].1, &muts);
        let _ = load_overlay(&base, &String::from_utf8_lossy(&bytes));
    }
}

//! Load time of the largest test policy (`minimal-secure-streams-staticpolicy`, 16 KiB)
//!
//! Three figures from one run: the bare JSON syntax parse (the floor any loader pays), the
//! full load (parse, typed keys, validation, reference resolution) and the static-policy path
//! (`Policy::from_spec`, no JSON at all).

use criterion::{Criterion, criterion_group, criterion_main};
use sstreams_core::policy::Policy;
use sstreams_core::policy::json::load;

fn largest_policy() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/policies/secure-streams__minimal-secure-streams-staticpolicy__static-policy.json"
    );
    std::fs::read_to_string(path).expect("test policy present")
}

fn bench(c: &mut Criterion) {
    let text = largest_policy();
    let spec = load(&text).expect("valid policy").policy.to_spec();
    let mut g = c.benchmark_group("policy_load_16k");
    g.bench_function("json_syntax_only", |b| {
        b.iter(|| {
            jsonc_parser::parse_to_ast(&text, &Default::default(), &Default::default())
                .expect("valid JSON")
        })
    });
    g.bench_function("json_full_load", |b| {
        b.iter(|| load(&text).expect("valid policy"))
    });
    g.bench_function("static_from_spec", |b| {
        b.iter(|| Policy::from_spec(spec.clone()).expect("valid spec"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

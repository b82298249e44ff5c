//! `sstreams policy check | show | to-rust` as a user runs them

use std::path::PathBuf;
use std::process::{Command, Output};

fn sstreams(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args(args)
        .output()
        .expect("sstreams runs")
}

fn testdata(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sstreams-core/testdata")
        .join(name);
    p.to_str().expect("utf-8 path").to_owned()
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sstreams-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("temp file");
    p.to_str().expect("utf-8 path").to_owned()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_accepts_a_valid_policy() {
    let f = testdata("policies/me-client__binance__example-policy.json");
    let out = sstreams(&["policy", "check", &f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK (1 streamtypes, 1 retry schemes, 1 trust stores)"));
}

#[test]
fn check_refuses_with_path_and_position() {
    let f = temp_file(
        "bad.json",
        "{\n  \"retry\": [{ \"r\": {} }],\n  \"s\": [{ \"a\": {\n    \"port\": 99999 } }]\n}",
    );
    let out = sstreams(&["policy", "check", &f]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{f}:4:13: `s.a.port`: 99999 is out of range 0..=65535"
        )),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_warns_and_deny_warnings_fails() {
    let f = temp_file("warn.json", r#"{ "s": [{ "a": { "nailedup": true } }] }"#);
    let out = sstreams(&["policy", "check", &f]);
    assert!(out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown key `nailedup` is ignored; did you mean `nailed_up`?"),
        "{err}"
    );
    let out = sstreams(&["policy", "check", "--deny-warnings", &f]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn check_applies_overlays() {
    let f = testdata("policies/me-client__binance__example-policy.json");
    let o = temp_file(
        "overlay.json",
        r#"{ "s": [{ "binance": { "retry": "missing" } }] }"#,
    );
    let out = sstreams(&["policy", "check", &f, "--overlay", &o]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains(&format!("{o}:1:")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn show_summarises_streamtypes() {
    let f = testdata("sstreams/kitchen-sink.json");
    let out = sstreams(&["policy", "show", &f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("release 2026.11"), "{s}");
    assert!(
        s.contains("backoff [1000, 2000, 3000, 5000, 10000] ms, conceal 5, jitter 20%"),
        "{s}"
    );
    assert!(s.contains("store_short"), "{s}");
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("raw_client"))
        .expect("row");
    for cell in [
        "client",
        "raw",
        "${host}:7681",
        "store_short",
        "default",
        "nailed_up",
    ] {
        assert!(line.contains(cell), "{cell} missing in {line}");
    }
    let line = s
        .lines()
        .find(|l| l.trim_start().starts_with("mqtt_dev"))
        .expect("row");
    assert!(line.contains("publish dev/${dev}/tx qos 1"), "{line}");
}

#[test]
fn to_rust_writes_a_function() {
    let f = testdata("sstreams/kitchen-sink.json");
    let out = sstreams(&["policy", "to-rust", "--fn", "my_policy", &f]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert!(s.contains("pub fn my_policy() -> ::sstreams_core::policy::Policy"));
    assert!(s.contains("protocol: Protocol::Raw,"));
    assert!(s.contains("proxy_buflen: 65536,"));
    let missing = sstreams(&["policy", "to-rust", "/nonexistent/p.json"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("/nonexistent/p.json: cannot read policy file"));
}

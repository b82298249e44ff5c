use super::*;
use crate::policy::{PolicyErrorKind, PolicyWarningKind, Protocol};

fn err(text: &str) -> PolicyError {
    load(text).expect_err("should be refused")
}

fn loc(e: &PolicyError) -> (u32, u32) {
    let l = e.location().expect("error has a location");
    (l.line, l.column)
}

/// Line and column of the `nth` (0-based) occurrence of `needle` in `text`
fn pos(text: &str, needle: &str, nth: usize) -> (u32, u32) {
    let off = text
        .match_indices(needle)
        .nth(nth)
        .expect("needle in text")
        .0;
    let l = Location::of_offset(text, off);
    (l.line, l.column)
}

const BASE: &str = r#"{
  "retry": [{ "r": { "backoff": [100, 200], "conceal": 3, "jitterpc": 10 } }],
  "s": [
    { "a": { "endpoint": "example.com", "port": 443, "tls": true, "retry": "r",
             "nailed_up": true } }
  ]
}"#;

#[test]
fn loads_a_small_policy() {
    let l = load(BASE).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let a = l.policy.streamtype("a").unwrap();
    assert_eq!(a.port(), 443);
    assert!(a.tls());
    assert!(a.spec().nailed_up);
    assert_eq!(a.retry().unwrap().backoff_ms(), [100, 200]);
    assert_eq!(a.endpoint().unwrap().as_str(), "example.com");
}

#[test]
fn forward_reference_is_refused_with_both_positions() {
    let text = r#"{
  "s": [{ "a": { "retry": "r" } }],
  "retry": [{ "r": { "backoff": [1] } }]
}"#;
    let e = err(text);
    assert_eq!(e.path(), "s.a.retry");
    assert_eq!(loc(&e), pos(text, "\"r\"", 0));
    match e.kind() {
        PolicyErrorKind::ForwardReference {
            what,
            name,
            defined_at,
        } => {
            assert_eq!((*what, name.as_str()), ("retry scheme", "r"));
            assert_eq!((defined_at.line, defined_at.column), pos(text, "\"r\"", 1));
        }
        other => panic!("wrong kind {other:?}"),
    }
}

#[test]
fn unknown_references_name_key_streamtype_and_position() {
    for (key, what) in [
        ("retry", "retry scheme"),
        ("tls_trust_store", "trust store"),
        ("use_auth", "auth"),
        ("server_cert", "cert"),
        ("server_key", "cert"),
    ] {
        let text = format!("{{\n \"s\": [{{ \"st1\": {{\n  \"{key}\": \"nope\" }} }}]\n}}");
        let e = err(&text);
        assert_eq!(e.path(), format!("s.st1.{key}"));
        assert_eq!(loc(&e), pos(&text, &format!("\"{key}"), 0), "{key}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("unknown {what} `nope`")), "{msg}");
        assert!(msg.contains("streamtype `st1`"), "{msg}");
    }
}

#[test]
fn unknown_cert_in_trust_store() {
    let e = err(r#"{ "trust_stores": [{ "name": "t", "stack": ["missing"] }] }"#);
    assert_eq!(e.path(), "trust_stores.t.stack");
    assert!(e.to_string().contains("unknown cert `missing`"));
}

#[test]
fn at_most_eight_backoff_entries() {
    let text = r#"{ "retry": [{ "r": { "backoff": [1,2,3,4,5,6,7,8,9] } }] }"#;
    let e = err(text);
    assert_eq!(e.path(), "retry.r.backoff");
    assert_eq!(e.kind(), &PolicyErrorKind::TooManyBackoff(9));
    assert_eq!(loc(&e), pos(text, "\"backoff", 0));
    assert!(load(r#"{ "retry": [{ "r": { "backoff": [1,2,3,4,5,6,7,8] } }] }"#).is_ok());
}

#[test]
fn svalidhup_must_exceed_svalidping() {
    let text = r#"{ "retry": [{ "r": { "svalidping": 30, "svalidhup": 20 } }] }"#;
    let e = err(text);
    assert_eq!(e.path(), "retry.r.svalidhup");
    assert_eq!(loc(&e), pos(text, "\"svalidhup", 0));
    assert!(load(r#"{ "retry": [{ "r": { "svalidping": 30, "svalidhup": 35 } }] }"#).is_ok());
}

#[test]
fn quoted_numbers_are_accepted() {
    let p = Policy::from_json(
        r#"{ "retry": [{ "r": { "backoff": ["10", 20], "conceal": "5" } }],
             "s": [{ "a": { "port": "8443", "timeout_ms": " 100 ", "retry": "r" } }] }"#,
    )
    .unwrap();
    let a = p.streamtype("a").unwrap();
    assert_eq!((a.port(), a.spec().timeout_ms), (8443, 100));
    assert_eq!(a.retry().unwrap().backoff_ms(), [10, 20]);
    assert_eq!(a.retry().unwrap().conceal(), 5);
}

#[test]
fn numbers_out_of_range_or_malformed_are_errors() {
    let e = err(r#"{ "s": [{ "a": { "port": 70000 } }] }"#);
    assert_eq!(e.path(), "s.a.port");
    assert!(matches!(
        e.kind(),
        PolicyErrorKind::OutOfRange { max: 65535, .. }
    ));
    let e = err(r#"{ "s": [{ "a": { "port": -1 } }] }"#);
    assert!(matches!(e.kind(), PolicyErrorKind::OutOfRange { .. }));
    let e = err(r#"{ "s": [{ "a": { "port": 1.5 } }] }"#);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::WrongType {
            expected: "an integer"
        }
    );
    let e = err(r#"{ "s": [{ "a": { "port": "http" } }] }"#);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::WrongType {
            expected: "an integer"
        }
    );
    let e = err(r#"{ "s": [{ "a": { "mqtt_qos": 3, "protocol": "mqtt" } }] }"#);
    assert_eq!(e.path(), "s.a.mqtt_qos");
}

#[test]
fn wrong_types_are_errors() {
    let text = r#"{ "s": [{ "a": { "tls": "yes" } }] }"#;
    let e = err(text);
    assert_eq!(e.path(), "s.a.tls");
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::WrongType {
            expected: "true or false"
        }
    );
    assert_eq!(loc(&e), pos(text, "\"yes", 0));
    let e = err(r#"{ "s": { "a": {} } }"#);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::WrongType {
            expected: "an array"
        }
    );
}

#[test]
fn unknown_protocol_is_an_error() {
    let e = err(r#"{ "s": [{ "a": { "protocol": "h1get" } }] }"#);
    assert_eq!(e.kind(), &PolicyErrorKind::UnknownProtocol("h1get".into()));
    for p in ["h1", "h2", "h3", "ws", "mqtt", "raw"] {
        let text = format!(r#"{{ "s": [{{ "a": {{ "protocol": "{p}" }} }}] }}"#);
        assert_eq!(
            load(&text)
                .unwrap()
                .policy
                .streamtype("a")
                .unwrap()
                .protocol()
                .name(),
            p
        );
    }
}

#[test]
fn syntax_errors_have_line_and_column() {
    let e = err("{\n  \"s\": [\n    { \"a\": { \"port\": 1, } }\n  ]\n}");
    assert!(matches!(e.kind(), PolicyErrorKind::Syntax(_)), "{e}");
    assert_eq!(loc(&e).0, 3);
    let e = err("");
    assert!(matches!(e.kind(), PolicyErrorKind::Syntax(_)));
    let e = err("[]");
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::WrongType {
            expected: "an object"
        }
    );
}

#[test]
fn unknown_keys_warn_with_suggestion() {
    let text = r#"{ "s": [{ "a": { "protocol": "mqtt", "mqtt qos": 1, "zzzzzzzzzz": 1 } }],
             "retyr": [] }"#;
    let l = load(text).unwrap();
    let texts: Vec<String> = l.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts[0].contains("`mqtt qos`") && texts[0].contains("did you mean `mqtt_qos`?"));
    let (line, col) = pos(text, "\"mqtt qos", 0);
    assert!(
        texts[0].starts_with(&format!("{line}:{col}:")),
        "{}",
        texts[0]
    );
    assert!(matches!(
        &l.warnings[1].kind,
        PolicyWarningKind::UnknownKey {
            suggestion: None,
            ..
        }
    ));
    assert!(texts[2].contains("did you mean `retry`?"), "{}", texts[2]);
}

#[test]
fn keys_of_another_protocol_warn() {
    let l = load(r#"{ "s": [{ "a": { "protocol": "mqtt", "http_method": "GET" } }] }"#).unwrap();
    assert_eq!(
        l.warnings[0].kind,
        PolicyWarningKind::NoEffect {
            key: "http_method",
            protocol: "mqtt"
        }
    );
    let l = load(r#"{ "s": [{ "a": { "mqtt_topic": "t" } }] }"#).unwrap();
    assert_eq!(
        l.warnings[0].kind,
        PolicyWarningKind::NoEffect {
            key: "mqtt_topic",
            protocol: "h1"
        }
    );
}

#[test]
fn every_streamtype_key_is_handled() {
    for key in keys::STREAMTYPE {
        let text = format!(r#"{{ "s": [{{ "a": {{ "{key}": {{}} }} }}] }}"#);
        let unknown = |l: &Loaded| {
            l.warnings
                .iter()
                .any(|w| matches!(w.kind, PolicyWarningKind::UnknownKey { .. }))
        };
        match load(&text) {
            Ok(l) => assert!(!unknown(&l), "{key} is not handled"),
            Err(e) => assert!(
                matches!(e.kind(), PolicyErrorKind::WrongType { .. }),
                "{key}: {e}"
            ),
        }
    }
}

#[test]
fn false_clears_and_overlay_adds_streamtypes() {
    let base = Policy::from_json(BASE).unwrap();
    let over = base
        .overlay(
            r#"{ "s": [ { "a": { "tls": false, "port": "80", "retry": null } },
                        { "b": { "endpoint": "other", "protocol": "raw" } } ] }"#,
        )
        .unwrap();
    let a = over.streamtype("a").unwrap();
    assert!(!a.tls(), "false clears the flag");
    assert_eq!(a.port(), 80);
    assert!(a.retry().is_none(), "null clears the reference");
    assert!(a.spec().nailed_up, "untouched keys stay");
    assert_eq!(a.endpoint().unwrap().as_str(), "example.com");
    assert_eq!(over.streamtype("b").unwrap().protocol(), Protocol::Raw);
    // The base is unchanged.
    assert!(base.streamtype("a").unwrap().tls());
    assert!(base.streamtype("b").is_none());
}

#[test]
fn overlay_can_refer_to_base_definitions_and_replace_them() {
    let base = Policy::from_json(BASE).unwrap();
    let over = base
        .overlay(r#"{ "retry": [{ "r": { "backoff": [7] } }], "s": [{ "n": { "retry": "r" } }] }"#)
        .unwrap();
    assert_eq!(
        over.streamtype("a").unwrap().retry().unwrap().backoff_ms(),
        [7]
    );
    assert_eq!(
        over.streamtype("n").unwrap().retry().unwrap().backoff_ms(),
        [7]
    );
    let text = r#"{ "s": [{ "a": { "retry": "zz" } }] }"#;
    let e = base.overlay(text).unwrap_err();
    assert_eq!(e.path(), "s.a.retry");
    assert_eq!(loc(&e), pos(text, "\"retry", 0));
}

#[test]
fn trust_store_short_and_long_forms() {
    let p = Policy::from_json(
        r#"{ "certs": [{ "c1": "MAA=", "c2": "MAE" }],
             "trust_stores": [{ "short": ["c1", "c2"] }, { "name": "long", "stack": ["c2"] }] }"#,
    )
    .unwrap();
    let short = p.trust_store("short").unwrap();
    assert_eq!(short.certs().len(), 2);
    assert_eq!(short.certs()[0].der.as_ref(), [0x30, 0x00]);
    assert_eq!(
        short.certs()[1].der.as_ref(),
        [0x30, 0x01],
        "padding is optional"
    );
    assert_eq!(p.trust_store("long").unwrap().certs()[0].name, "c2");
    let e = err(r#"{ "certs": [{ "c": "not base64!" }] }"#);
    assert_eq!(e.path(), "certs.c");
    assert!(matches!(e.kind(), PolicyErrorKind::BadBase64(_)));
    let e = err(r#"{ "trust_stores": [{ "name": "t", "stack": [] }] }"#);
    assert_eq!(e.kind(), &PolicyErrorKind::EmptyTrustStore);
}

#[test]
fn duplicates_are_errors_with_position() {
    let text = r#"{ "s": [{ "a": {} }, { "a": {} }] }"#;
    let e = err(text);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::Duplicate {
            what: "streamtype",
            name: "a".into()
        }
    );
    assert_eq!(loc(&e), pos(text, "\"a\"", 1));
    let e = err(r#"{ "retry": [{ "r": {} }, { "r": {} }] }"#);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::Duplicate {
            what: "retry scheme",
            name: "r".into()
        }
    );
    let e = err(r#"{ "s": [{ "a": { "metadata": [{ "x": "" }, { "x": "" }] } }] }"#);
    assert_eq!(
        e.kind(),
        &PolicyErrorKind::Duplicate {
            what: "metadata",
            name: "x".into()
        }
    );
}

#[test]
fn metadata_substitution_is_checked() {
    let text = r#"{ "s": [{ "a": {
        "metadata": [{ "region": "" }],
        "http_url": "/x/${region}/${nope}" } }] }"#;
    let e = err(text);
    assert_eq!(e.path(), "s.a.http_url");
    assert_eq!(loc(&e), pos(text, "\"http_url", 0));
    assert!(
        e.to_string()
            .contains("`${nope}` names metadata that streamtype `a` does not declare")
    );
    let e = err(r#"{ "s": [{ "a": { "protocol": "mqtt", "mqtt_topic": "t/${x" } }] }"#);
    assert!(matches!(e.kind(), PolicyErrorKind::BadTemplate(_)));
    let p = Policy::from_json(
        r#"{ "s": [{ "a": { "protocol": "mqtt", "metadata": [{ "dev": "" }, { "ct": "Content-Type:" }],
             "mqtt_topic": "t/${dev}", "mqtt_subscribe": "s/${dev}/#" } }] }"#,
    )
    .unwrap();
    let a = p.streamtype("a").unwrap();
    let topic = a.mqtt_templates().topic.as_ref().unwrap();
    assert_eq!(topic.expand(|_| Some(b"d1")), "t/d1");
    assert_eq!(
        a.metadata()[1].header_name().as_deref(),
        Some("content-type")
    );
    assert_eq!(a.metadata()[0].header_name(), None);
    assert_eq!(a.metadata_index("ct"), Some(1));
}

#[test]
fn resp_map_and_limits() {
    let p = Policy::from_json(
        r#"{ "s": [{ "a": { "http_resp_map": [{ "530": 1530 }, { "531": "1531" }] } }] }"#,
    )
    .unwrap();
    let map = &p.streamtype("a").unwrap().http().resp_map;
    assert_eq!(
        (map[0].status, map[0].state, map[1].state),
        (530, 1530, 1531)
    );
    let many: Vec<String> = (0..17)
        .map(|i| format!("{{ \"{}\": 1000 }}", 500 + i))
        .collect();
    let e = err(&format!(
        r#"{{ "s": [{{ "a": {{ "http_resp_map": [{}] }} }}] }}"#,
        many.join(",")
    ));
    assert_eq!(e.kind(), &PolicyErrorKind::TooManyRespMap(17));
    let e = err(r#"{ "s": [{ "a": { "http_resp_map": [{ "abc": 1 }] } }] }"#);
    assert_eq!(e.path(), "s.a.http_resp_map");
}

#[test]
fn text_or_path() {
    let dir = std::env::temp_dir().join(format!("sstreams-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.json");
    std::fs::write(&file, BASE).unwrap();
    let from_file = Policy::from_text_or_path(file.to_str().unwrap()).unwrap();
    let from_text = Policy::from_text_or_path(&format!("  \n{BASE}")).unwrap();
    assert_eq!(from_file, from_text);
    std::fs::write(&file, "{ \"s\": [{ \"a\": { \"port\": true } }] }").unwrap();
    let e = load_path(&file).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!("{}:1:", file.display())),
        "{e}"
    );
    let e = load_path(dir.join("missing.json")).unwrap_err();
    assert!(matches!(e.kind(), PolicyErrorKind::Io(_)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn all_sections_and_top_level_keys() {
    let p = Policy::from_json(
        r#"{ "release": "01", "product": "p", "schema-version": "1", "via-socks5": "127.0.0.1:1080",
             "metrics": [{ "name": "m", "us_schedule": 60000000, "us_halflife": 1000, "min_outlier": 2,
                           "report": "n.*" }],
             "auth": [{ "name": "sig", "type": "sigv4", "streamtype": "x", "blob": 1 }],
             "s": [{ "a": { "use_auth": "sig", "metadata": [{ "region": "" }], "aws_region": "region",
                    "server": true, "options": { "k": "v" } } }] }"#,
    )
    .unwrap();
    let s = p.spec();
    assert_eq!(
        (s.release.as_deref(), s.product.as_deref(), s.schema_version),
        (Some("01"), Some("p"), Some(1))
    );
    assert_eq!(p.via_socks5(), Some("127.0.0.1:1080"));
    assert_eq!(p.metrics()[0].us_schedule, 60_000_000);
    assert_eq!(p.metrics()[0].report.as_deref(), Some("n.*"));
    let a = p.streamtype("a").unwrap();
    assert_eq!(a.auth().unwrap().auth_type.as_deref(), Some("sigv4"));
    assert_eq!(a.spec().options[0].value, "v");
    let e = err(r#"{ "auth": [{ "name": "x", "blob": 4 }] }"#);
    assert_eq!(e.path(), "auth.x.blob");
    assert!(e.location().is_some());
    let e = err(r#"{ "s": [{ "a": { "aws_region": "nope" } }] }"#);
    assert!(matches!(
        e.kind(),
        PolicyErrorKind::UndeclaredMetadata { .. }
    ));
}

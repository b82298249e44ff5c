//! Every shipped test policy loads, with its streamtypes and key values checked
#![cfg(feature = "json")]

use std::time::Duration;

use sstreams_core::policy::json::{Loaded, load};
use sstreams_core::policy::{PolicyWarningKind, Protocol};

include!("../testdata/corpus.rs");

fn policy(name: &str) -> Loaded {
    let (_, text) = test_policies()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no test policy {name}"));
    load(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(l: &Loaded) -> Vec<&str> {
    l.policy.streamtypes().map(|s| s.name()).collect()
}

#[test]
fn every_test_policy_loads_without_unknown_keys() {
    let all = test_policies();
    assert!(all.len() >= 18, "found only {} policies", all.len());
    for (name, text) in &all {
        assert!(
            !text.contains("@PORT_") && !text.contains("@LWS_"),
            "{name}: placeholder left"
        );
        let loaded = load(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            loaded.policy.streamtypes().len() > 0,
            "{name} has no streamtypes"
        );
        for w in &loaded.warnings {
            // The only thing the shipped policies do that we flag is the deprecated `plugins`.
            assert_eq!(
                w.kind,
                PolicyWarningKind::Deprecated("plugins"),
                "{name}: {w}"
            );
        }
    }
}

#[test]
fn testsfail_local() {
    let l = policy("secure-streams__minimal-secure-streams-testsfail__policy-local.json.in");
    let p = &l.policy;
    let r = p.retry("default").unwrap();
    assert_eq!(r.backoff_ms(), [1000, 2000, 3000, 5000, 10000]);
    assert_eq!((r.conceal(), r.jitter_percent()), (5, 20));
    assert_eq!(r.validity_ping(), Some(Duration::from_secs(30)));
    assert_eq!(r.validity_hangup(), Some(Duration::from_secs(35)));
    assert_eq!(p.trust_store("le_via_isrg").unwrap().certs().len(), 2);
    let cpd = p.streamtype("captive_portal_detect").unwrap();
    assert_eq!(cpd.http().expect, 204);
    assert!(cpd.http().fail_redirect && cpd.spec().opportunistic);
    assert_eq!(cpd.endpoint().unwrap().as_str(), "localhost");
    let t = p.streamtype("t_h2_tls").unwrap();
    assert_eq!(t.protocol(), Protocol::H2);
    assert!(t.tls() && t.http().nghttp2_quirk_end_stream && t.http().h2q_oflow_txcr);
    assert_eq!(t.trust_store().unwrap().name(), "local_test");
    assert_eq!(t.timeout(), Some(Duration::from_millis(10_000)));
    let bulk = p.streamtype("bulk_h1").unwrap();
    assert_eq!(
        bulk.http_url().unwrap().expand(|_| Some(b"4096")),
        "/bytes/4096"
    );
    for n in [
        "nxd_h1",
        "badcert_hostname",
        "badcert_expired",
        "badcert_selfsigned",
    ] {
        assert!(p.streamtype(n).is_some(), "{n}");
    }
    // The DER of the first cert is a real X.509 SEQUENCE.
    assert_eq!(&p.cert("isrg_root_x1").unwrap().der[..2], [0x30, 0x82]);
}

#[test]
fn server_hello_world() {
    let l = policy("me-server__hello_world__example-policy.json");
    let srv = l.policy.streamtype("myserver").unwrap();
    assert!(srv.is_server() && srv.tls());
    assert_eq!((srv.port(), srv.protocol()), (7681, Protocol::H2));
    assert_eq!(srv.server_cert().unwrap().name, "self_localhost");
    assert_eq!(srv.server_key().unwrap().name, "self_localhost_key");
    let md: Vec<_> = srv.metadata().iter().map(|m| m.name.as_str()).collect();
    assert_eq!(md, ["mime", "method", "path", "my_arg"]);
    assert_eq!(
        srv.metadata()[0].header_name().as_deref(),
        Some("content-type")
    );
    let ota = l.policy.streamtype("ota").unwrap();
    let url = ota
        .http_url()
        .unwrap()
        .expand(|n| Some(if n == "file" { b"f.bin" } else { b"v1" }));
    assert_eq!(url, "firmware/examples/v1/f.bin");
}

#[test]
fn sigv4() {
    let l = policy("secure-streams__minimal-secure-streams-sigv4__policy.json");
    let s3 = l.policy.streamtype("s3PutObj").unwrap();
    assert_eq!(s3.auth().unwrap().auth_type.as_deref(), Some("sigv4"));
    assert_eq!(s3.spec().aws_region.as_deref(), Some("region"));
    assert_eq!(s3.http().method.as_deref(), Some("PUT"));
    assert!(!s3.http().no_content_length);
    assert_eq!(s3.trust_store().unwrap().certs().len(), 3);
    assert_eq!(s3.metadata().len(), 8);
    let ep = s3
        .endpoint()
        .unwrap()
        .expand(|n| (n == "s3bucket").then_some(b"bkt".as_slice()));
    assert_eq!(ep, "bkt.s3.amazonaws.com");
}

#[test]
fn ws_echo_local_and_metrics_proxy() {
    let l = policy("me-client__ws-echo__policy-local.json.in");
    let ws = l.policy.streamtype("sx_ws_echo").unwrap();
    assert_eq!(ws.protocol(), Protocol::Ws);
    assert_eq!(ws.ws().subprotocol.as_deref(), Some("lws-mirror-protocol"));
    assert!(ws.ws().binary && ws.spec().nailed_up);
    let l =
        policy("secure-streams__minimal-secure-streams-metrics-proxy__metrics-proxy-policy.json");
    assert_eq!(names(&l), ["mintest", "forscraper", "forclients"]);
    let fc = l.policy.streamtype("forclients").unwrap();
    assert_eq!(fc.ws().subprotocol.as_deref(), Some("lws-metrics-proxy"));
    assert_eq!(fc.port(), 19091);
}

#[test]
fn kitchen_sink_sets_every_kind_of_key() {
    let l = policy("kitchen-sink.json");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = &l.policy;
    assert_eq!(p.via_socks5(), Some("127.0.0.1:1080"));
    assert_eq!(p.retry("eight").unwrap().jitter_percent(), 30);
    assert_eq!(p.trust_store("store_short").unwrap().certs().len(), 2);
    let raw = p.streamtype("raw_client").unwrap();
    assert_eq!(raw.protocol(), Protocol::Raw);
    let b = raw.buffers();
    assert_eq!(
        (
            b.proxy_buflen,
            b.proxy_buflen_rxflow_on_above,
            b.client_buflen
        ),
        (65536, 49152, 8192)
    );
    assert_eq!(raw.spec().client_cert, Some(0));
    assert_eq!(raw.spec().attr.priority, 6);
    let mqtt = p.streamtype("mqtt_dev").unwrap();
    assert_eq!(
        (
            mqtt.mqtt().qos,
            mqtt.mqtt().birth_qos,
            mqtt.mqtt().keep_alive
        ),
        (1, 2, 60)
    );
    let birth = mqtt.mqtt_templates().birth_message.as_ref().unwrap();
    assert_eq!(birth.expand(|_| Some(b"d7")), "hello d7");
    let h2 = p.streamtype("h2_get").unwrap();
    assert_eq!(h2.http().resp_map.len(), 2);
    assert!(h2.http().auth_hexify && h2.http().long_poll);
    assert_eq!(
        p.streamtype("post_form")
            .unwrap()
            .spec()
            .rideshare
            .as_deref(),
        Some("post_multipart")
    );
    assert!(
        p.streamtype("post_multipart")
            .unwrap()
            .http()
            .is_multipart()
    );
    assert_eq!(
        p.streamtype("https_server").unwrap().spec().options.len(),
        2
    );
}

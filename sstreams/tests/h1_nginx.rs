//! The h1 client binding against a real nginx
//!
//! Each test builds a policy for nginx's port and CA, opens the transport as the driver would,
//! runs [`h1::run`] and checks the exact events it reports, answering `WantTx` with the
//! test's tx chunks.

mod support;

use std::time::Duration;

use bytes::Bytes;
use sstreams::Policy;
use sstreams::bind::BindEvent;
use sstreams_core::stream::State;
use support::h1::*;
use support::nginx::{BIG_LEN, Nginx};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// A policy with streamtype `st` on nginx (TLS port and CA when `tls`), plus `extra` keys
fn policy(ngx: &Nginx, tls: bool, extra: &str) -> Policy {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(&ngx.ca_der);
    let port = if tls { ngx.tls_port } else { ngx.port };
    let json = format!(
        r#"{{ "release": "1", "product": "test", "schema-version": 1,
              "certs": [{{ "ngx_ca": "{ca}" }}],
              "trust_stores": [{{ "name": "ngx", "stack": ["ngx_ca"] }}],
              "s": [{{ "st": {{ "endpoint": "localhost", "port": {port}, "protocol": "h1",
                               "tls": {tls}, "tls_trust_store": "ngx"{extra} }} }}] }}"#
    );
    Policy::from_json(&json).unwrap()
}

#[tokio::test]
async fn nginx_harness_serves() {
    let Some(ngx) = Nginx::start() else { return };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", ngx.port))
        .await
        .unwrap();
    s.write_all(b"GET /small.txt HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK"),
        "{got}\n{}",
        ngx.error_log()
    );
    assert!(got.ends_with("hello from nginx\n"), "{got}");
}

#[tokio::test]
async fn get_plain_and_tls() {
    let Some(ngx) = Nginx::start() else { return };
    for tls in [false, true] {
        let p = policy(&ngx, tls, r#", "http_url": "small.txt""#);
        let events = transact(&p, Input::default()).await;
        assert_eq!(
            events,
            [
                BindEvent::Connected,
                rx("hello from nginx\n", SOM),
                eom(),
                ack(),
                closed()
            ],
            "tls {tls}\n{}",
            ngx.error_log()
        );
    }
}

#[tokio::test]
async fn error_status_is_nack_and_http_expect_is_exact() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(&ngx, false, r#", "http_url": "/status/404""#);
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            rx("missing\n", SOM),
            eom(),
            nack(),
            closed()
        ]
    );
    // 204 has no body: no SOM, no EOM (as in C), then the verdict.
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "status/204", "http_expect": 204"#,
    );
    assert_eq!(
        transact(&p, Input::default()).await,
        [BindEvent::Connected, ack(), closed()]
    );
    // With http_expect, another 2xx is not success.
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "status/200", "http_expect": 204"#,
    );
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            rx("ok\n", SOM),
            eom(),
            nack(),
            closed()
        ]
    );
}

#[tokio::test]
async fn resp_map_state_comes_before_connected() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "status/530", "http_resp_map": [{ "530": 1530 }, { "404": 1404 }]"#,
    );
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::State(State::user(530).unwrap()),
            BindEvent::Connected,
            rx("custom\n", SOM),
            eom(),
            nack(),
            closed()
        ]
    );
}

#[tokio::test]
async fn busy_server_is_retried_later_not_nacked() {
    let Some(ngx) = Nginx::start() else { return };
    for (status, after) in [(503, 2), (429, 3)] {
        let url = format!(r#", "http_url": "status/{status}""#);
        let events = transact(&policy(&ngx, false, &url), Input::default()).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], BindEvent::RetryLater(Duration::from_secs(after)));
        assert!(close_error(&events).contains(&status.to_string()));
    }
}

#[tokio::test]
async fn redirects_refused_followed_and_looping() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(&ngx, false, r#", "http_url": "redirect""#);
    let events = transact(&p, Input::default()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = close_error(&events);
    assert!(e.contains("redirect to") && e.contains("refused"), "{e}");
    assert!(!e.contains("captive"), "{e}");

    let p = policy(
        &ngx,
        false,
        r#", "http_url": "redirect", "http_fail_redirect": true"#,
    );
    let e = close_error(&transact(&p, Input::default()).await);
    assert!(e.contains("captive portal"), "{e}");

    for tls in [false, true] {
        let p = policy(
            &ngx,
            tls,
            r#", "http_url": "redirect", "allow_redirects": true"#,
        );
        assert_eq!(
            transact(&p, Input::default()).await,
            [
                BindEvent::Connected,
                rx("ok\n", SOM),
                eom(),
                ack(),
                closed()
            ],
            "tls {tls}"
        );
    }

    let p = policy(
        &ngx,
        false,
        r#", "http_url": "redirect-loop", "allow_redirects": true"#,
    );
    let events = transact(&p, Input::default()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(close_error(&events).contains("redirect loop"), "{events:?}");
}

#[tokio::test]
async fn metadata_goes_out_as_headers_and_comes_back() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "${where}",
            "metadata": [{ "where": "" }, { "test": "X-Test:" }, { "reply": "x-reply:" }]"#,
    );
    let input = Input {
        metadata: &[("where", "headers"), ("test", "hello")],
        ..Input::default()
    };
    assert_eq!(
        transact(&p, input).await,
        [
            BindEvent::Metadata(vec![("reply".into(), Bytes::from_static(b"from-nginx"))]),
            BindEvent::Connected,
            rx("x-test=hello method=GET uri=/headers\n", SOM),
            eom(),
            ack(),
            closed()
        ]
    );

    // direct_proto_str: undeclared headers both ways.
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "headers", "direct_proto_str": true"#,
    );
    let input = Input {
        direct: &[("x-test", "direct")],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    let BindEvent::Metadata(md) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(md.contains(&("x-reply".into(), Bytes::from_static(b"from-nginx"))));
    assert!(md.iter().any(|(n, _)| n == "server"), "{md:?}");
    assert_eq!(payload(&events), b"x-test=direct method=GET uri=/headers\n");
    assert_eq!(events[1..2], [BindEvent::Connected]);
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);
}

#[tokio::test]
async fn chunked_response_is_dechunked() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "chunked", "direct_proto_str": true"#,
    );
    let events = transact(&p, Input::default()).await;
    let BindEvent::Metadata(md) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(
        md.contains(&("transfer-encoding".into(), Bytes::from_static(b"chunked"))),
        "{md:?}"
    );
    assert_eq!(payload(&events), b"chunk one\nchunk two\n");
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);
}

#[tokio::test]
async fn post_body_from_tx_with_length_hint() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "post", "http_method": "POST""#,
    );
    let input = Input {
        length_hint: Some(11),
        tx: vec![
            chunk(b"hello", SOM),
            chunk(b"", NONE),
            chunk(b" ", NONE),
            chunk(b"world", EOM),
        ],
        ..Input::default()
    };
    assert_eq!(
        transact(&p, input).await,
        [
            BindEvent::WantTx,
            BindEvent::WantTx,
            BindEvent::WantTx,
            BindEvent::WantTx,
            BindEvent::Connected,
            rx("hello world", SOM),
            eom(),
            ack(),
            closed()
        ]
    );

    // Half a MiB in 64 KiB chunks, echoed back exactly.
    let body: Vec<u8> = (0..512 * 1024).map(|i| (i % 251) as u8).collect();
    let chunks = body.chunks(64 * 1024);
    let n = chunks.len();
    let tx = chunks
        .enumerate()
        .map(|(i, c)| {
            let f = if i == 0 { SOM } else { NONE };
            chunk(c, if i == n - 1 { f | EOM } else { f })
        })
        .collect();
    let input = Input {
        length_hint: Some(body.len() as u64),
        tx,
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(payload(&events), body, "{}", ngx.error_log());
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);
}

#[tokio::test]
async fn post_without_hint_sends_no_body() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "headers", "http_method": "POST""#,
    );
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            rx("x-test= method=POST uri=/headers\n", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
}

#[tokio::test]
async fn tx_not_matching_the_hint_fails() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(&ngx, false, r#", "http_url": "post", "http_method": "PUT""#);
    let input = Input {
        length_hint: Some(10),
        tx: vec![chunk(b"short", SOM | EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(events[0], BindEvent::WantTx);
    let e = close_error(&events);
    assert!(e.contains("after 5 of the 10 bytes"), "{e}");
    let input = Input {
        length_hint: Some(3),
        tx: vec![chunk(b"toolong", SOM | EOM)],
        ..Input::default()
    };
    let e = close_error(&transact(&p, input).await);
    assert!(e.contains("longer than the 3 bytes"), "{e}");
}

#[tokio::test]
async fn multipart_and_form_bodies() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "post", "http_method": "POST", "http_multipart_name": "file",
            "http_multipart_filename": "a.txt", "http_mime_content_type": "text/plain""#,
    );
    let input = Input {
        length_hint: Some(6),
        tx: vec![chunk(b"abc", SOM), chunk(b"def", EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    let echoed = String::from_utf8(payload(&events)).unwrap();
    let boundary = echoed
        .strip_prefix("--")
        .and_then(|r| r.split_once("\r\n"))
        .map(|(b, _)| b.to_owned())
        .unwrap_or_else(|| panic!("{echoed:?}"));
    assert!(boundary.starts_with("sstreams-"), "{echoed:?}");
    assert_eq!(
        echoed,
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nabcdef\r\n--{boundary}--\r\n"
        )
    );
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);

    let p = policy(
        &ngx,
        false,
        r#", "http_url": "post", "http_method": "POST", "http_www_form_urlencoded": true"#,
    );
    let input = Input {
        length_hint: Some(7),
        tx: vec![chunk(b"a=1&b=2", SOM | EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(payload(&events), b"a=1&b=2");
}

#[tokio::test]
async fn big_download_is_streamed_in_bounded_chunks() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(&ngx, false, r#", "http_url": "big.bin""#);
    let mut run = start(&p, Input::default()).await;
    assert_eq!(run.next().await, Some(BindEvent::Connected));
    let (mut total, mut chunks, mut largest) = (0u64, 0u64, 0usize);
    loop {
        match run.next().await {
            Some(BindEvent::Rx(data, flags)) if data.is_empty() => {
                assert_eq!(flags, EOM);
                break;
            }
            Some(BindEvent::Rx(data, flags)) => {
                assert_eq!(flags, if chunks == 0 { SOM } else { NONE });
                assert!(data.iter().all(|b| *b == 0), "a sparse file reads as zeros");
                total += data.len() as u64;
                largest = largest.max(data.len());
                chunks += 1;
            }
            other => panic!("unexpected {other:?} after {total} bytes"),
        }
    }
    eprintln!("big.bin: {total} bytes in {chunks} rx, largest {largest}");
    assert_eq!(total, BIG_LEN);
    assert!(largest <= 1024 * 1024, "largest rx chunk {largest} bytes");
    assert!(chunks >= 100, "{chunks} chunks");
    assert_eq!(run.all().await, [ack(), closed()]);
}

#[tokio::test]
async fn driver_gone_ends_the_binding_quietly() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(&ngx, false, r#", "http_url": "big.bin""#);
    let mut run = start(&p, Input::default()).await;
    assert_eq!(run.next().await, Some(BindEvent::Connected));
    assert!(matches!(run.next().await, Some(BindEvent::Rx(_, SOM))));
    // Dropping the driver's ends stops the download without reading the rest.
    let Running {
        events, tx, task, ..
    } = run;
    drop((events, tx));
    timeout(STEP, task).await.expect("binding ends").unwrap();
}

#[tokio::test]
async fn redirects_are_capped_at_eight() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "hops/", "allow_redirects": true"#,
    );
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            rx("eight hops\n", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "endless/", "allow_redirects": true"#,
    );
    let events = transact(&p, Input::default()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(close_error(&events).contains("more than 8 redirects"));
}

#[tokio::test]
async fn endpoint_url_path_overrides_http_url() {
    let Some(ngx) = Nginx::start() else { return };
    let json = format!(
        r#"{{ "s": [{{ "st": {{ "endpoint": "http://localhost:{}/small.txt",
                                "http_url": "status/404" }} }}] }}"#,
        ngx.port
    );
    let p = Policy::from_json(&json).unwrap();
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            rx("hello from nginx\n", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
}

#[tokio::test]
async fn no_content_length_leaves_framing_to_the_codec() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "post", "http_method": "POST", "http_no_content_length": true"#,
    );
    let input = Input {
        length_hint: Some(6),
        tx: vec![chunk(b"abc", SOM), chunk(b"def", EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(payload(&events), b"abcdef", "{}", ngx.error_log());
}

#[tokio::test]
async fn multipart_response_parts_are_messages() {
    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "parts", "http_multipart_ss_in": true"#,
    );
    let related = |flags| BindEvent::Rx(Bytes::new(), flags);
    assert_eq!(
        transact(&p, Input::default()).await,
        [
            BindEvent::Connected,
            related(sstreams_core::stream::PayloadFlags::RELATED_START),
            rx("Content-Type: application/json\r\n\r\n{\"a\":1}", SOM | EOM),
            rx(
                "Content-Type: text/plain\r\n\r\nsecond part",
                SOM | EOM | sstreams_core::stream::PayloadFlags::RELATED_END
            ),
            ack(),
            closed()
        ]
    );
    // Without http_multipart_ss_in the body is one message.
    let p = policy(&ngx, false, r#", "http_url": "parts""#);
    let events = transact(&p, Input::default()).await;
    assert_eq!(payload(&events), support::nginx::PARTS_BODY.as_bytes());
}

#[tokio::test]
async fn cookie_jar_with_http_cookies() {
    use sstreams::bind::cookies::CookieJar;
    use std::sync::Arc;

    let Some(ngx) = Nginx::start() else { return };
    let jar = Arc::new(CookieJar::new());
    let get = |url: &str, cookies: bool| {
        let extra =
            format!(r#", "http_url": "{url}", "http_cookies": {cookies}, "allow_redirects": true"#);
        let p = policy(&ngx, false, &extra);
        let jar = jar.clone();
        async move {
            let input = Input {
                cookies: Some(jar),
                ..Input::default()
            };
            String::from_utf8(payload(&transact(&p, input).await)).unwrap()
        }
    };
    // Without http_cookies the jar is neither filled nor read.
    assert_eq!(get("cookie/set", false).await, "set\n");
    assert!(jar.is_empty());
    assert_eq!(get("cookie/set", true).await, "set\n");
    assert_eq!(jar.len(), 1);
    assert_eq!(get("cookie/echo", true).await, "cookie=sid=abc\n");
    assert_eq!(get("cookie/echo", false).await, "cookie=\n");
    // A cookie set by a redirect goes with the request it leads to.
    jar.clear();
    assert_eq!(get("cookie/redirect", true).await, "cookie=hop=1\n");
}

#[tokio::test]
async fn blob_headers_from_bind_context() {
    use sstreams::bind::blobs::HttpBlobs;

    let Some(ngx) = Nginx::start() else { return };
    let p = policy(
        &ngx,
        false,
        r#", "http_url": "blobs", "http_auth_header": "authorization:",
            "http_auth_preamble": "Bearer ", "http_dsn_header": "x-dsn:",
            "http_fwv_header": "x-fwv:", "http_devtype_header": "x-type:""#,
    );
    let blobs = HttpBlobs::new()
        .auth(&b"t0k"[..])
        .device_serial(&b"SN1"[..])
        .fw_version(&b"1.0.2"[..])
        .device_type(&b"dev"[..]);
    let input = Input {
        blobs: blobs.clone(),
        ..Input::default()
    };
    assert_eq!(
        transact(&p, input).await,
        [
            BindEvent::Connected,
            rx("auth=Bearer t0k dsn=SN1 fwv=1.0.2 type=dev\n", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
    // A named header without its blob: nothing is sent, the connection fails.
    let input = Input {
        blobs: HttpBlobs::new().auth(&b"t0k"[..]),
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(close_error(&events).contains("DEVICE_SERIAL"), "{events:?}");
}

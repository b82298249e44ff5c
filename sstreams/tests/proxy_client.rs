//! Proxied streams: the same application code, direct or through our SS proxy

mod support;

use std::time::Duration;

use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams::stream::{ConnState as State, Flags};
use sstreams::{Context, StreamEvent, StreamOptions};
use sstreams_core::smd::{SmdClass, SsHeader};

const LIMIT: Duration = Duration::from_secs(10);

fn policy(port: u16) -> String {
    format!(
        r#"{{ "s": [{{ "echo": {{ "endpoint": "${{host}}", "port": {port}, "protocol": "raw",
                                 "metadata": [{{ "host": "" }}] }} }}] }}"#
    )
}

/// A proxy serving `policy` on a fresh abstract socket
async fn start_proxy(policy: &str, name: &str) -> Context {
    let cx = Context::builder().policy_json(policy).build().unwrap();
    let l = ProxyListener::bind(
        ProxyAddr::Abstract(name.to_owned()),
        ListenOptions::default(),
    )
    .await
    .unwrap();
    tokio::spawn(server::serve(cx.clone(), l, std::future::pending()));
    cx
}

/// The application: set the host, send "ping", collect states until the echo is back
async fn app(cx: &Context) -> (Vec<State>, Vec<u8>) {
    let (stream, mut events) = cx.open("echo").unwrap();
    stream.set_metadata("host", "127.0.0.1").unwrap();
    stream.send(&b"ping"[..], Flags::empty());
    let (mut states, mut data) = (Vec::new(), Vec::new());
    while data.len() < 4 {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("in time")
            .expect("alive")
        {
            StreamEvent::State(s, _) => states.push(s),
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    (states, data)
}

#[tokio::test]
async fn same_code_direct_or_proxied() {
    let port = support::echo_server().await;
    let direct = Context::builder()
        .policy_json(&policy(port))
        .build()
        .unwrap();
    let name = support::unique_name("client");
    let _proxy = start_proxy(&policy(port), &name).await;
    let proxied = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .unwrap();
    let d = app(&direct).await;
    let p = app(&proxied).await;
    assert_eq!(d.1, b"ping");
    assert_eq!(p, d, "proxied states and payload match direct ones");
    assert_eq!(
        d.0,
        [
            State::CREATING,
            State::POLL,
            State::CONNECTING,
            State::CONNECTED
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn link_retries_every_second_until_the_proxy_is_up() {
    let port = support::echo_server().await;
    let name = support::unique_name("client");
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name.clone()))
        .build()
        .unwrap();
    let (stream, mut events) = client.open("echo").unwrap();
    stream.set_metadata("host", "127.0.0.1").unwrap();
    stream.send(&b"late"[..], Flags::empty());
    let mut acks = Vec::new();
    while acks.len() < 3 {
        match events.next().await.unwrap() {
            StreamEvent::State(State::UPSTREAM_LINK_RETRY, ack) => acks.push(ack),
            other => panic!("{other:?}"),
        }
    }
    // ack = ms spent trying: one more second each time.
    assert_eq!(acks, [0, 1000, 2000]);
    let _proxy = start_proxy(&policy(port), &name).await;
    let mut states = Vec::new();
    let mut data = Vec::new();
    while data.len() < 4 {
        match events.next().await.unwrap() {
            StreamEvent::State(State::UPSTREAM_LINK_RETRY, _) => {}
            StreamEvent::State(s, _) => states.push(s),
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        data, b"late",
        "payload queued while the link was down is not lost"
    );
    assert_eq!(
        states,
        [
            State::CREATING,
            State::POLL,
            State::CONNECTING,
            State::CONNECTED
        ]
    );
}

#[tokio::test]
async fn smd_across_the_proxy() {
    let name = support::unique_name("client");
    let proxy = start_proxy(r#"{ "s": [] }"#, &name).await;
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .unwrap();
    let mut opts = StreamOptions::default();
    opts.tx_credit(SmdClass::NETWORK.bits() as i32);
    let (_stream, mut events) = client.open_with("_lws_smd", opts).unwrap();
    let mut states = Vec::new();
    while states.last() != Some(&State::CONNECTED) {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .unwrap()
            .unwrap()
        {
            StreamEvent::State(s, _) => states.push(s),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        states,
        [State::CREATING, State::CONNECTING, State::CONNECTED]
    );
    proxy
        .smd()
        .post(SmdClass::INTERACTION, b"{\"no\":1}")
        .unwrap();
    proxy
        .smd()
        .post(SmdClass::NETWORK, b"{\"trigger\":\"cpdcheck\"}")
        .unwrap();
    let StreamEvent::Rx(p, f) = tokio::time::timeout(LIMIT, events.next())
        .await
        .unwrap()
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(f, Flags::SOM | Flags::EOM);
    let (h, body) = SsHeader::decode(&p).unwrap();
    assert_eq!(
        (h.class, body),
        (SmdClass::NETWORK, &b"{\"trigger\":\"cpdcheck\"}"[..])
    );
}

#[tokio::test]
async fn h1_through_the_proxy_with_metadata_both_ways() {
    let (port, request) = support::http_once(
        b"HTTP/1.1 200 OK\r\nx-reply: hi\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
    )
    .await;
    let policy = format!(
        r#"{{ "s": [{{ "web": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
               "http_method": "GET", "http_url": "page",
               "metadata": [{{ "test": "x-test:" }}, {{ "reply": "x-reply:" }}] }} }}] }}"#
    );
    let name = support::unique_name("client");
    let _proxy = start_proxy(&policy, &name).await;
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .unwrap();
    let (stream, mut events) = client.open("web").unwrap();
    stream.set_metadata("test", "from-client").unwrap();
    stream.request_tx();
    let mut seen = Vec::new();
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("in time")
            .expect("alive")
        {
            StreamEvent::State(State::QOS_ACK_REMOTE, _) => break,
            StreamEvent::State(s, _) => seen.push(format!("{s}")),
            StreamEvent::Metadata(n, v) => {
                seen.push(format!("{n}={}", String::from_utf8_lossy(&v)))
            }
            StreamEvent::Rx(d, _) => body.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    let (req, _) = request.await.unwrap();
    assert!(req.starts_with("GET /page HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("x-test: from-client\r\n"), "{req}");
    assert_eq!(body, b"ok");
    let connected = seen
        .iter()
        .position(|s| s == "LWSSSCS_CONNECTED")
        .expect("CONNECTED");
    let reply = seen
        .iter()
        .position(|s| s == "reply=hi")
        .unwrap_or_else(|| panic!("metadata came back: {seen:?}"));
    assert!(reply < connected, "metadata precedes CONNECTED: {seen:?}");
    assert_eq!(stream.metadata("reply").unwrap(), "hi");
}

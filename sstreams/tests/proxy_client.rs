//! Proxied streams: the same application code, direct or through our SS proxy

mod support;

use std::time::Duration;

use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams::stream::{ConnState as State, Flags, StateReturn, StreamCx};
use sstreams::{Context, StreamEvent, StreamHandler, StreamOptions};
use sstreams_core::smd::{SmdClass, SsHeader};
use sstreams_core::wire::{Decoder, Frame};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

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
    echo(cx, b"ping".to_vec()).await
}

/// Sends `sent` in one send on an `echo` stream; the states and the payload until all of it
/// is echoed
async fn echo(cx: &Context, sent: Vec<u8>) -> (Vec<State>, Vec<u8>) {
    let (stream, mut events) = cx.open("echo").unwrap();
    stream.set_metadata("host", "127.0.0.1").unwrap();
    let len = sent.len();
    stream.send(sent, Flags::empty());
    let (mut states, mut data) = (Vec::new(), Vec::new());
    while data.len() < len {
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

#[tokio::test]
async fn proxied_over_tcp() {
    let port = support::echo_server().await;
    let proxy = Context::builder()
        .policy_json(&policy(port))
        .build()
        .unwrap();
    let l = ProxyListener::bind("tcp:127.0.0.1:0".parse().unwrap(), ListenOptions::default())
        .await
        .unwrap();
    let ProxyAddr::Tcp(addr) = *l.addr() else {
        panic!("a TCP listener")
    };
    tokio::spawn(server::serve(proxy, l, std::future::pending()));
    let client = Context::builder().proxy_tcp(addr).build().unwrap();
    let (states, data) = app(&client).await;
    assert_eq!(data, b"ping");
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
async fn one_send_longer_than_a_frame_arrives_whole() {
    let port = support::echo_server().await;
    let name = support::unique_name("client");
    let _proxy = start_proxy(&policy(port), &name).await;
    let cx = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .unwrap();
    // Over three frames' worth in one send.
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (_, got) = echo(&cx, sent.clone()).await;
    assert!(got == sent, "the echo differs from what was sent");
}

// Against a scripted proxy ----------------------------------------------------------------

/// A proxy played by the test on a fresh abstract socket
struct ScriptedProxy {
    listener: UnixListener,
}

impl ScriptedProxy {
    fn bind(name: &str) -> Self {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        l.set_nonblocking(true).unwrap();
        Self {
            listener: UnixListener::from_std(l).unwrap(),
        }
    }

    /// The next link, within [`LIMIT`]
    async fn accept(&self) -> Link {
        let (s, _) = tokio::time::timeout(LIMIT, self.listener.accept())
            .await
            .expect("a link in time")
            .unwrap();
        Link {
            s,
            dec: Decoder::proxy_side(),
        }
    }
}

/// One link, proxy side
struct Link {
    s: UnixStream,
    dec: Decoder,
}

impl Link {
    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// The next frame from the client; `None` when it closed the link
    async fn next(&mut self) -> Option<Frame> {
        support::next_frame(&mut self.s, &mut self.dec)
            .await
            .unwrap_or(None)
    }

    /// Expects STREAMTYPE `name`, answers CREATE_RESULT ok and CREATING as the C proxy does
    async fn create(&mut self, name: &str) {
        match self.next().await {
            Some(Frame::StreamType(st)) => assert_eq!(st.name, name.as_bytes()),
            other => panic!("expected STREAMTYPE, got {other:?}"),
        }
        let mut reply = vec![0x56, 0, 5 + 1 + name.len() as u8, 0, 0, 0, 0, 0, b','];
        reply.extend_from_slice(name.as_bytes());
        reply.extend_from_slice(&[0x57, 0, 5, 1, 0, 0, 0, 0]);
        self.send(&reply).await;
    }
}

/// A scripted proxy and a client context pointed at it
fn scripted() -> (ScriptedProxy, Context) {
    let name = support::unique_name("scripted");
    let proxy = ScriptedProxy::bind(&name);
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .unwrap();
    (proxy, client)
}

async fn event(events: &mut sstreams::StreamEvents) -> Option<StreamEvent> {
    tokio::time::timeout(LIMIT, events.next())
        .await
        .expect("an event in time")
}

#[tokio::test]
async fn credit_both_ways() {
    let (proxy, client) = scripted();
    let (stream, mut events) = client.open("s").unwrap();
    let mut link = proxy.accept().await;
    link.create("s").await;
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::CREATING, 0))
    );
    stream.add_peer_tx_credit(2000);
    assert_eq!(stream.est_peer_tx_credit(), 2000);
    let f = link.next().await.unwrap();
    assert_eq!(&f.to_bytes().unwrap()[..], [0xaf, 0, 4, 0, 0, 0x07, 0xd0]);
    assert_eq!(stream.tx_credit(), 0);
    // Credit from the proxy, then a state: once the state is seen, the credit is applied.
    link.send(&[0x58, 0, 4, 0, 0, 0x03, 0x09, 0x57, 0, 5, 6, 0, 0, 0, 0])
        .await;
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::CONNECTING, 0))
    );
    assert_eq!(stream.tx_credit(), 777);
}

/// The C proxy's PERF frame (truncated to 5 bytes by its bug)
const PERF: [u8; 8] = [0x5b, 0, 5, b'{', b'"', b'p', b'e', b'e'];

#[tokio::test]
async fn perf_is_rx_with_perf_json_flags_on_the_async_face() {
    let (proxy, client) = scripted();
    let (_stream, mut events) = client.open("s").unwrap();
    let mut link = proxy.accept().await;
    link.create("s").await;
    link.send(&PERF).await;
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::CREATING, 0))
    );
    let flags = Flags::SOM | Flags::EOM | Flags::PERF_JSON;
    assert_eq!(flags.bits(), 0x43);
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::Rx(b"{\"pee"[..].into(), flags))
    );
}

#[tokio::test]
async fn perf_is_rx_with_perf_json_flags_on_the_handler_face() {
    struct Rx(mpsc::UnboundedSender<(Vec<u8>, Flags)>);
    impl StreamHandler for Rx {
        fn rx(&mut self, _: &mut StreamCx<'_>, data: &[u8], flags: Flags) -> StateReturn {
            let _ = self.0.send((data.to_vec(), flags));
            StateReturn::Ok
        }
    }
    let (proxy, client) = scripted();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _stream = client.create_stream("s", Rx(tx)).unwrap();
    let mut link = proxy.accept().await;
    link.create("s").await;
    link.send(&PERF).await;
    let (data, flags) = tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("in time")
        .unwrap();
    assert_eq!(data, b"{\"pee");
    assert_eq!(flags.bits(), 0x43);
}

#[tokio::test]
async fn an_unknown_state_destroys_the_stream() {
    let (proxy, client) = scripted();
    let (_stream, mut events) = client.open("s").unwrap();
    let mut link = proxy.accept().await;
    link.create("s").await;
    // State 18 (UPSTREAM_LINK_RETRY) is never sent by a proxy: C destroys the stream.
    link.send(&[0x57, 0, 5, 18, 0, 0, 0, 0]).await;
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::CREATING, 0))
    );
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::DESTROYING, 0))
    );
    assert_eq!(event(&mut events).await, None, "nothing after DESTROYING");
    assert_eq!(link.next().await, None, "the link is closed");
}

#[tokio::test]
async fn forbidden_or_malformed_frames_close_the_link_and_the_client_retries() {
    let (proxy, client) = scripted();
    let (_stream, mut events) = client.open("s").unwrap();
    let retry = |e: Option<StreamEvent>| match e {
        Some(StreamEvent::State(State::UPSTREAM_LINK_RETRY, _)) => {}
        other => panic!("expected UPSTREAM_LINK_RETRY, got {other:?}"),
    };
    // Forbidden: CONNSTATE before CREATE_RESULT.
    let mut link = proxy.accept().await;
    assert!(matches!(link.next().await, Some(Frame::StreamType(_))));
    link.send(&[0x57, 0, 5, 6, 0, 0, 0, 0]).await;
    assert_eq!(link.next().await, None, "closed by the client");
    retry(event(&mut events).await);
    // Malformed: a CONNSTATE with a 9-byte body.
    let mut link = proxy.accept().await;
    link.create("s").await;
    assert_eq!(
        event(&mut events).await,
        Some(StreamEvent::State(State::CREATING, 0))
    );
    link.send(&[0x57, 0, 9, 0, 0, 0, 6, 0, 0, 0, 0, 0]).await;
    assert_eq!(link.next().await, None, "closed by the client");
    retry(event(&mut events).await);
    // And the client comes back again.
    let mut link = proxy.accept().await;
    assert!(matches!(link.next().await, Some(Frame::StreamType(_))));
}

//! Streams end to end: the raw binding over real loopback sockets, both API faces, retry,
//! timeouts, destroy, metadata in the endpoint, and `_lws_smd` streams on the bus

use std::time::Duration;

use bytes::BytesMut;
use sstreams::stream::StreamCx;
use sstreams::stream::{ConnState as State, Flags};
use sstreams::{Context, StreamEvent, StreamHandler, StreamOptions};
use sstreams_core::smd::{SmdClass, SsHeader};
use sstreams_core::stream::StateReturn;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod support;

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rec {
    State(State),
    Rx(Vec<u8>, Flags),
}

/// Records everything; sends "hello" when connected; optional destroy on first rx
struct Recorder {
    out: mpsc::UnboundedSender<Rec>,
    send_on_connect: Option<&'static [u8]>,
    destroy_on_rx: bool,
}

impl StreamHandler for Recorder {
    fn state(&mut self, cx: &mut StreamCx<'_>, state: State, _ack: u32) -> StateReturn {
        let _ = self.out.send(Rec::State(state));
        if state == State::CONNECTED && self.send_on_connect.is_some() {
            cx.request_tx();
        }
        StateReturn::Ok
    }

    fn rx(&mut self, _cx: &mut StreamCx<'_>, data: &[u8], flags: Flags) -> StateReturn {
        let _ = self.out.send(Rec::Rx(data.to_vec(), flags));
        if self.destroy_on_rx {
            StateReturn::DestroyMe
        } else {
            StateReturn::Ok
        }
    }

    fn tx(
        &mut self,
        _cx: &mut StreamCx<'_>,
        _ord: u32,
        buf: &mut BytesMut,
        flags: &mut Flags,
    ) -> StateReturn {
        match self.send_on_connect.take() {
            Some(b) => {
                buf.extend_from_slice(b);
                *flags = Flags::SOM | Flags::EOM;
                StateReturn::Ok
            }
            None => StateReturn::TxDontSend,
        }
    }
}

fn recorder(
    send: Option<&'static [u8]>,
    destroy_on_rx: bool,
) -> (Recorder, mpsc::UnboundedReceiver<Rec>) {
    let (out, rx) = mpsc::unbounded_channel();
    (
        Recorder {
            out,
            send_on_connect: send,
            destroy_on_rx,
        },
        rx,
    )
}

fn context(policy: &str) -> Context {
    Context::builder()
        .policy_json(policy)
        .jitter_source(|| 0)
        .build()
        .unwrap()
}

fn raw_policy(endpoint: &str, port: u16, extra: &str) -> String {
    format!(
        r#"{{ "retry": [{{ "quick": {{ "backoff": [100, 200], "conceal": 2 }} }}],
             "s": [{{ "raw": {{ "endpoint": "{endpoint}", "port": {port}, "protocol": "raw",
                                "retry": "quick", "metadata": [{{ "host": "" }}] {extra} }} }}] }}"#
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Rec>) -> Rec {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("event in time")
        .expect("stream alive")
}

#[tokio::test]
async fn raw_echo_with_handler_then_destroy() {
    let port = support::echo_server().await;
    let cx = context(&raw_policy("127.0.0.1", port, r#", "nailed_up": true"#));
    let (h, mut rx) = recorder(Some(b"hello"), false);
    let stream = cx.create_stream("raw", h).unwrap();
    assert_eq!(next(&mut rx).await, Rec::State(State::CREATING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTED));
    // raw carries no SOM/EOM; the echo may arrive in pieces.
    let mut got = Vec::new();
    while got.len() < 5 {
        match next(&mut rx).await {
            Rec::Rx(d, f) => {
                assert_eq!(f, Flags::empty());
                got.extend(d);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, b"hello");
    drop(stream);
    assert_eq!(next(&mut rx).await, Rec::State(State::DISCONNECTED));
    assert_eq!(next(&mut rx).await, Rec::State(State::DESTROYING));
    assert!(
        tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .is_none(),
        "nothing after DESTROYING"
    );
}

#[tokio::test]
async fn async_face_sends_and_receives() {
    let port = support::echo_server().await;
    let cx = context(&raw_policy("127.0.0.1", port, ""));
    let (stream, mut events) = cx.open("raw").unwrap();
    stream.send(&b"ping"[..], Flags::empty());
    let mut states = Vec::new();
    let mut got = Vec::new();
    while got.len() < 4 {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .unwrap()
            .unwrap()
        {
            StreamEvent::State(s, _) => states.push(s),
            StreamEvent::Rx(d, _) => got.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, b"ping");
    // Not nailed up: the send connected it.
    assert_eq!(
        states,
        [
            State::CREATING,
            State::POLL,
            State::CONNECTING,
            State::CONNECTED
        ]
    );
    drop(stream);
    let mut rest = Vec::new();
    while let Some(e) = tokio::time::timeout(LIMIT, events.next()).await.unwrap() {
        rest.push(e);
    }
    assert_eq!(
        rest,
        [
            StreamEvent::State(State::DISCONNECTED, 0),
            StreamEvent::State(State::DESTROYING, 0)
        ]
    );
}

#[tokio::test]
async fn refused_connections_retry_then_give_up() {
    let (_reserved, port) = support::refused_port();
    let cx = context(&raw_policy("127.0.0.1", port, r#", "nailed_up": true"#));
    let (h, mut rx) = recorder(None, false);
    let _stream = cx.create_stream("raw", h).unwrap();
    let mut states = Vec::new();
    loop {
        let Rec::State(s) = next(&mut rx).await else {
            panic!("no rx expected")
        };
        states.push(s);
        if s == State::ALL_RETRIES_FAILED {
            break;
        }
    }
    use State as S;
    assert_eq!(
        states,
        [
            S::CREATING,
            S::CONNECTING,
            S::UNREACHABLE,
            S::POLL,
            S::CONNECTING,
            S::UNREACHABLE,
            S::POLL,
            S::CONNECTING,
            S::UNREACHABLE,
            S::ALL_RETRIES_FAILED,
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_delays_are_exact_in_virtual_time() {
    let (_reserved, port) = support::refused_port();
    let policy = format!(
        r#"{{ "retry": [{{ "r": {{ "backoff": [1000, 2000, 3000], "conceal": 4, "jitterpc": 20 }} }}],
             "s": [{{ "raw": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw",
                                "retry": "r", "nailed_up": true }} }}] }}"#
    );
    // Sample 0x8000: jitter is exactly 10% of each delay.
    let cx = Context::builder()
        .policy_json(&policy)
        .jitter_source(|| 0x8000)
        .build()
        .unwrap();
    let (h, mut rx) = recorder(None, false);
    let start = tokio::time::Instant::now();
    let _stream = cx.create_stream("raw", h).unwrap();
    let mut connecting_at = Vec::new();
    loop {
        let Rec::State(s) = rx.recv().await.unwrap() else {
            panic!()
        };
        if s == State::CONNECTING {
            connecting_at.push(start.elapsed().as_millis());
        }
        if s == State::ALL_RETRIES_FAILED {
            break;
        }
    }
    // Attempts at 0, then after 1100, 2200, 3300, 3300 ms (the last delay repeats).
    assert_eq!(connecting_at, [0, 1100, 3300, 6600, 9900]);
}

#[tokio::test(start_paused = true)]
async fn stream_timeout_fires() {
    let port = support::echo_server().await;
    let cx = context(&raw_policy(
        "127.0.0.1",
        port,
        r#", "nailed_up": true, "timeout_ms": 250"#,
    ));
    let (h, mut rx) = recorder(None, false);
    let stream = cx.create_stream("raw", h).unwrap();
    assert_eq!(next(&mut rx).await, Rec::State(State::CREATING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTED));
    let start = tokio::time::Instant::now();
    stream.start_timeout(None);
    assert_eq!(next(&mut rx).await, Rec::State(State::TIMEOUT));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test]
async fn destroy_me_from_rx_and_metadata_in_endpoint() {
    let port = support::echo_server().await;
    let cx = context(&raw_policy("${host}", port, ""));
    let (h, mut rx) = recorder(Some(b"x"), true);
    let stream = cx.create_stream("raw", h).unwrap();
    stream.set_metadata("host", "127.0.0.1").unwrap();
    assert!(stream.set_metadata("nope", "1").is_err());
    stream.request_tx();
    let mut seen = Vec::new();
    loop {
        let e = next(&mut rx).await;
        let done = e == Rec::State(State::DESTROYING);
        seen.push(e);
        if done {
            break;
        }
    }
    assert!(
        seen.contains(&Rec::Rx(b"x".to_vec(), Flags::empty())),
        "{seen:?}"
    );
    assert_eq!(seen[seen.len() - 2], Rec::State(State::DISCONNECTED));
}

#[tokio::test]
async fn unknown_and_unsupported_streamtypes() {
    let cx = context(
        r#"{ "s": [{ "h2": { "protocol": "h2", "endpoint": "x" } }, { "srv": { "server": true, "protocol": "raw" } }] }"#,
    );
    let e = cx
        .create_stream("nope", recorder(None, false).0)
        .unwrap_err();
    assert_eq!(e.to_string(), "no streamtype `nope` in the policy");
    assert!(cx.create_stream("h2", recorder(None, false).0).is_err());
    assert!(cx.create_stream("srv", recorder(None, false).0).is_err());
}

#[tokio::test]
async fn smd_stream_filters_and_sends() {
    let cx = context(r#"{ "s": [] }"#);
    let mask = (SmdClass::NETWORK | SmdClass::METRICS).bits() as i32;
    let (h, mut rx) = recorder(None, false);
    let mut opts = StreamOptions::default();
    opts.tx_credit(mask);
    let _stream = cx.create_stream_with("_lws_smd", h, opts).unwrap();
    assert_eq!(next(&mut rx).await, Rec::State(State::CREATING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTING));
    assert_eq!(next(&mut rx).await, Rec::State(State::CONNECTED));
    cx.smd()
        .post(SmdClass::INTERACTION, b"{\"button\":1}")
        .unwrap();
    cx.smd()
        .post(SmdClass::NETWORK, b"{\"trigger\":\"cpdcheck\"}")
        .unwrap();
    let Rec::Rx(payload, flags) = next(&mut rx).await else {
        panic!()
    };
    assert_eq!(flags, Flags::SOM | Flags::EOM);
    let (hdr, body) = SsHeader::decode(&payload).unwrap();
    assert_eq!(hdr.class, SmdClass::NETWORK, "INTERACTION is filtered out");
    assert_eq!(body, b"{\"trigger\":\"cpdcheck\"}");
}

/// A server that accepts connections and closes each at once, reporting each accept
async fn closing_server() -> (u16, mpsc::UnboundedReceiver<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

#[tokio::test]
async fn nailed_up_reconnects_after_a_drop_and_opportunistic_does_not() {
    let (port, mut accepts) = closing_server().await;
    let cx = context(&raw_policy("127.0.0.1", port, r#", "nailed_up": true"#));
    let (h, mut rx) = recorder(None, false);
    let _stream = cx.create_stream("raw", h).unwrap();
    let mut states = Vec::new();
    // Two drops: connected, dropped, reconnected (after the backoff), dropped again.
    while states.iter().filter(|s| **s == State::CONNECTED).count() < 3 {
        if let Rec::State(s) = next(&mut rx).await {
            states.push(s);
        }
    }
    use State as S;
    assert_eq!(
        states,
        [
            S::CREATING,
            S::CONNECTING,
            S::CONNECTED,
            S::DISCONNECTED,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED,
            S::DISCONNECTED,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED,
        ]
    );
    for _ in 0..3 {
        tokio::time::timeout(LIMIT, accepts.recv())
            .await
            .unwrap()
            .unwrap();
    }

    let (port, mut accepts) = closing_server().await;
    let cx = context(&raw_policy("127.0.0.1", port, r#", "opportunistic": true"#));
    let (h, mut rx) = recorder(None, false);
    let stream = cx.create_stream("raw", h).unwrap();
    stream.request_tx();
    let mut states = Vec::new();
    loop {
        let Rec::State(s) = next(&mut rx).await else {
            continue;
        };
        states.push(s);
        if s == State::DISCONNECTED {
            break;
        }
    }
    assert_eq!(
        states,
        [
            S::CREATING,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED,
            S::DISCONNECTED
        ]
    );
    accepts.recv().await.unwrap();
    // No reconnect: destroying now gives DESTROYING next, with no CONNECTING before it.
    drop(stream);
    assert_eq!(next(&mut rx).await, Rec::State(State::DESTROYING));
    assert!(
        accepts.try_recv().is_err(),
        "an opportunistic stream must not reconnect"
    );
}

#[tokio::test(start_paused = true)]
async fn write_waits_for_a_slow_peer_and_loses_nothing() {
    const CHUNK: usize = 64 * 1024;
    const LIMIT_BYTES: usize = 128 * 1024;
    const CHUNKS: usize = 512; // 32 MiB, far beyond every buffer on the way
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    // Reads nothing until told to, then checks every byte.
    let reader = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut s, _) = l.accept().await.unwrap();
        go.await.unwrap();
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0usize;
        while got < CHUNK * CHUNKS {
            let n = s.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "closed after {got} bytes");
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) / CHUNK) as u8, "byte {}", got + i);
            }
            got += n;
        }
        got
    });
    let cx = context(&raw_policy("127.0.0.1", port, ""));
    let mut options = StreamOptions::default();
    options.tx_queue_limit(LIMIT_BYTES);
    let (stream, _events) = cx.open_with("raw", options).unwrap();
    let mut sent = 0;
    // While the peer reads nothing, write() must stop returning: once every buffer is full
    // the runtime idles, paused time jumps and the timeout fires.
    loop {
        let chunk = vec![sent as u8; CHUNK];
        let w = tokio::time::timeout(
            Duration::from_secs(600),
            stream.write(chunk, Flags::empty()),
        );
        if w.await.is_err() {
            break;
        }
        sent += 1;
        assert!(
            stream.queued_tx() <= LIMIT_BYTES + CHUNK,
            "{} bytes queued",
            stream.queued_tx()
        );
        assert!(sent < CHUNKS, "write() never waited for the peer");
    }
    eprintln!("write() waited after {sent} chunks of 64 KiB");
    go_tx.send(()).unwrap();
    while sent < CHUNKS {
        let chunk = vec![sent as u8; CHUNK];
        tokio::time::timeout(LIMIT, stream.write(chunk, Flags::empty()))
            .await
            .unwrap();
        sent += 1;
    }
    assert_eq!(
        tokio::time::timeout(LIMIT, reader).await.unwrap().unwrap(),
        CHUNK * CHUNKS
    );
}

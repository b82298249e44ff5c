//! The proxy side of the link against a scripted client speaking the C wire format

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sstreams::Context;
use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams_core::smd::{SmdClass, SsHeader};
use sstreams_core::stream::{PayloadFlags as Flags, State};
use sstreams_core::wire::{ConnState, CreateResult, Decoder, Frame, Payload, StreamType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};

const LIMIT: Duration = Duration::from_secs(10);

/// A server like the one of the spec's worked example D: greets, echoes with a prefix, then
/// closes
async fn greeter() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                s.write_all(b"hello-from-server").await.unwrap();
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = s
                    .write_all(&[b"echo:".as_slice(), &buf[..n]].concat())
                    .await;
            });
        }
    });
    port
}

/// A proxy for `policy` on a fresh abstract socket; returns its name
async fn proxy(policy: &str) -> (String, Context) {
    let cx = Context::builder().policy_json(policy).build().unwrap();
    let name = support::unique_name("server");
    let l = ProxyListener::bind(ProxyAddr::Abstract(name.clone()), ListenOptions::default())
        .await
        .unwrap();
    tokio::spawn(server::serve(cx.clone(), l, std::future::pending()));
    (name, cx)
}

struct Client {
    s: UnixStream,
    dec: Decoder,
}

impl Client {
    async fn connect(name: &str) -> Self {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let s = std::os::unix::net::UnixStream::connect_addr(&addr).unwrap();
        s.set_nonblocking(true).unwrap();
        Self {
            s: UnixStream::from_std(s).unwrap(),
            dec: Decoder::client_side(),
        }
    }

    async fn send(&mut self, frames: &[Frame]) {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out).unwrap();
        }
        // One write for all, as a C client may do.
        self.s.write_all(&out).await.unwrap();
    }

    /// The next frame, or `None` when the proxy closed the link
    async fn next(&mut self) -> Option<Frame> {
        support::next_frame(&mut self.s, &mut self.dec)
            .await
            .unwrap()
    }

    async fn state(&mut self) -> State {
        match self.next().await {
            Some(Frame::ConnState(ConnState { state, .. })) => state,
            other => panic!("expected CONNSTATE, got {other:?}"),
        }
    }
}

fn streamtype(name: &str, credit: u32) -> Frame {
    Frame::StreamType(StreamType {
        pid: 0x51,
        tx_credit: credit,
        name: Bytes::copy_from_slice(name.as_bytes()),
    })
}

#[tokio::test]
async fn ordinary_stream_as_in_worked_example_d() {
    let port = greeter().await;
    let policy = format!(
        r#"{{ "retry": [{{ "default": {{ "backoff": [1000], "conceal": 5 }} }}],
             "s": [{{ "mintest": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw",
                                    "retry": "default", "metadata": [{{ "mymd": "" }}] }} }}] }}"#
    );
    let (name, _cx) = proxy(&policy).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("mintest", 500_000_000)]).await;
    match c.next().await {
        Some(Frame::CreateResult(r)) => {
            assert!(r.is_ok());
            assert_eq!(r.rideshares, Bytes::from_static(b",mintest"));
            assert_eq!(r.client_buflen, 32768);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state().await, State::CREATING);
    c.send(&[
        Frame::TimeoutUpdate(5000),
        Frame::TxMetadata(sstreams_core::wire::Metadata {
            name: Bytes::from_static(b"mymd"),
            value: Bytes::from_static(b"hello"),
        }),
        Frame::PayloadLengthHint(12),
        Frame::TxCreditUpdate(1000),
        Frame::OnwardConnect,
    ])
    .await;
    assert_eq!(c.state().await, State::POLL);
    assert_eq!(c.state().await, State::CONNECTING);
    assert_eq!(c.state().await, State::CONNECTED);
    let mut got = Vec::new();
    while got.len() < b"hello-from-server".len() {
        match c.next().await {
            Some(Frame::RxPayload(p)) => {
                assert_eq!(p.flags, Flags::empty(), "raw: no SOM/EOM");
                got.extend_from_slice(&p.data);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, b"hello-from-server");
    c.send(&[Frame::TxPayload(Payload::new(
        Flags::empty(),
        Bytes::from_static(b"client-data"),
    ))])
    .await;
    let mut got = Vec::new();
    loop {
        match c.next().await {
            Some(Frame::RxPayload(p)) => got.extend_from_slice(&p.data),
            Some(Frame::ConnState(ConnState {
                state: State::DISCONNECTED,
                ..
            })) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, b"echo:client-data");
}

#[tokio::test]
async fn unknown_streamtype_gets_the_c_failure_bytes_then_close() {
    let (name, _cx) = proxy(r#"{ "s": [] }"#).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("nonexist", 0)]).await;
    let mut bytes = Vec::new();
    c.s.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(bytes, [0x56, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(
        Frame::decode(sstreams_core::wire::Direction::ProxyToClient, &bytes)
            .unwrap()
            .0,
        Frame::CreateResult(CreateResult::failed())
    );
}

#[tokio::test]
async fn smd_over_the_link_with_echo() {
    let (name, cx) = proxy(r#"{ "s": [] }"#).await;
    let mut c = Client::connect(&name).await;
    let mask = (SmdClass::NETWORK | SmdClass::from_bits(1 << 24)).bits();
    c.send(&[streamtype("_lws_smd", mask)]).await;
    match c.next().await {
        Some(Frame::CreateResult(r)) => {
            assert_eq!((r.result, r.client_buflen), (0, 0));
            assert_eq!(r.rideshares, Bytes::from_static(b",(null)"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.state().await, State::CREATING);
    assert_eq!(c.state().await, State::CONNECTING);
    assert_eq!(c.state().await, State::CONNECTED);
    // A message on the proxy's bus reaches the client ...
    cx.smd()
        .post(SmdClass::NETWORK, b"{\"trigger\":\"cpdcheck\"}")
        .unwrap();
    cx.smd()
        .post(SmdClass::INTERACTION, b"{\"filtered\":1}")
        .unwrap();
    let Some(Frame::RxPayload(p)) = c.next().await else {
        panic!()
    };
    assert_eq!(p.flags, Flags::SOM | Flags::EOM);
    let (h, body) = SsHeader::decode(&p.data).unwrap();
    assert_eq!(
        (h.class, body),
        (SmdClass::NETWORK, &b"{\"trigger\":\"cpdcheck\"}"[..])
    );
    // ... and one the client sends comes back to it (C does not exclude the sender).
    let mut tx = SsHeader {
        class: SmdClass::from_bits(1 << 24),
        timestamp_us: 0,
    }
    .encode()
    .to_vec();
    tx.extend_from_slice(b"{\"hello\":1}");
    c.send(&[Frame::TxPayload(Payload::new(
        Flags::SOM | Flags::EOM,
        Bytes::from(tx),
    ))])
    .await;
    let Some(Frame::RxPayload(p)) = c.next().await else {
        panic!()
    };
    let (h, body) = SsHeader::decode(&p.data).unwrap();
    assert_eq!((h.class.bits(), body), (1 << 24, &b"{\"hello\":1}"[..]));
}

#[tokio::test]
async fn malformed_frame_closes_that_link_only() {
    let (name, _cx) = proxy(r#"{ "s": [] }"#).await;
    let mut bad = Client::connect(&name).await;
    bad.s.write_all(&[0x42, 0x00, 0x00]).await.unwrap();
    let mut rest = Vec::new();
    let n = tokio::time::timeout(LIMIT, bad.s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "closed without a reply");
    let mut good = Client::connect(&name).await;
    good.send(&[streamtype("_lws_smd", 0)]).await;
    assert!(matches!(good.next().await, Some(Frame::CreateResult(r)) if r.is_ok()));
}

#[tokio::test(start_paused = true)]
async fn a_silent_link_is_closed_after_three_seconds() {
    let (name, _cx) = proxy(r#"{ "s": [] }"#).await;
    let mut c = Client::connect(&name).await;
    let start = tokio::time::Instant::now();
    let mut rest = Vec::new();
    c.s.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(start.elapsed(), server::STREAMTYPE_TIMEOUT);
}

#[tokio::test]
async fn post_gets_an_early_connected_like_the_c_proxy() {
    let (port, request) =
        support::http_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    let policy = format!(
        r#"{{ "s": [{{ "post": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
                                 "http_method": "POST", "http_url": "in" }} }}] }}"#
    );
    let (name, _cx) = proxy(&policy).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("post", 500_000_000)]).await;
    assert!(matches!(c.next().await, Some(Frame::CreateResult(r)) if r.is_ok()));
    assert_eq!(c.state().await, State::CREATING);
    // As a C client: announce the length, then send the body only once CONNECTED.
    c.send(&[Frame::PayloadLengthHint(5)]).await;
    assert_eq!(c.state().await, State::POLL);
    assert_eq!(c.state().await, State::CONNECTING);
    assert_eq!(c.state().await, State::CONNECTED);
    c.send(&[Frame::TxPayload(Payload::new(
        Flags::SOM | Flags::EOM,
        Bytes::from_static(b"hello"),
    ))])
    .await;
    assert_eq!(
        tokio::time::timeout(LIMIT, request)
            .await
            .unwrap()
            .unwrap()
            .1,
        b"hello"
    );
    let mut rx = Vec::new();
    loop {
        match c.next().await {
            Some(Frame::RxPayload(p)) => rx.extend_from_slice(&p.data),
            Some(Frame::ConnState(ConnState {
                state: State::QOS_ACK_REMOTE,
                ..
            })) => break,
            Some(Frame::ConnState(ConnState { state, .. })) => {
                assert_ne!(
                    state,
                    State::CONNECTED,
                    "CONNECTED is not repeated at the response"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rx, b"ok");
}

/// Sends `total` bytes from an onward server to a client that reads nothing until every
/// buffer on the way is full; returns how many bytes the server got rid of by then (all of
/// them still in flight), after checking that the client then gets them all, intact
async fn slow_reader(buffers: &str, total: usize) -> usize {
    // A server that writes `total` bytes as fast as it may, counting what it got rid of.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (done_tx, done) = tokio::sync::oneshot::channel::<()>();
    let counter = written.clone();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while counter.load(std::sync::atomic::Ordering::Relaxed) < total {
            s.write_all(&chunk).await.unwrap();
            counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
        let _ = done_tx.send(());
    });
    let policy = format!(
        r#"{{ "s": [{{ "bulk": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw"
                                 {buffers} }} }}] }}"#
    );
    let (name, _cx) = proxy(&policy).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("bulk", 500_000_000), Frame::OnwardConnect])
        .await;
    // The client reads nothing now. Once every buffer on the way is full the whole runtime
    // waits on sockets, paused time jumps ahead and this times out, unless the server could
    // push everything through (no flow control).
    let stalled = tokio::time::timeout(Duration::from_secs(30), done)
        .await
        .is_err();
    let at_stall = written.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        stalled,
        "the onward server wrote all {total} bytes to a client that read nothing"
    );
    // Now read everything: nothing was lost on the way.
    let mut got = 0usize;
    while got < total {
        match c.next().await {
            Some(Frame::RxPayload(p)) => {
                assert!(p.data.iter().all(|&b| b == 7));
                got += p.data.len();
            }
            Some(Frame::ConnState(_) | Frame::CreateResult(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, total);
    at_stall
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_stops_the_onward_reads_and_loses_nothing() {
    const TOTAL: usize = 64 * 1024 * 1024;
    const SMALL: usize = 4096;
    const LARGE: usize = 16 * 1024 * 1024;
    let small = slow_reader(&format!(r#", "proxy_buflen": {SMALL}"#), TOTAL).await;
    let hysteresis = slow_reader(
        &format!(
            r#", "proxy_buflen": {LARGE}, "proxy_buflen_rxflow_on_above": {SMALL},
                 "proxy_buflen_rxflow_off_below": 1024"#
        ),
        TOTAL,
    )
    .await;
    let large = slow_reader(&format!(r#", "proxy_buflen": {LARGE}"#), TOTAL).await;
    for (what, buflen, at_stall) in [
        ("proxy_buflen 4 KiB", SMALL, small),
        (
            "proxy_buflen 16 MiB, rxflow on above 4 KiB",
            SMALL,
            hysteresis,
        ),
        ("proxy_buflen 16 MiB", LARGE, large),
    ] {
        eprintln!(
            "slow reader, {what}: {} KiB in flight when the server had to wait \
             ({:.1} × the proxy's limit; the rest is socket buffers and the stream's queue)",
            at_stall / 1024,
            at_stall as f64 / buflen as f64
        );
        assert!(
            at_stall < TOTAL / 2,
            "{what}: {at_stall} bytes in flight is not bounded"
        );
    }
    // The proxy's own share is what the policy allows: with 16 MiB it holds megabytes more.
    assert!(
        large > small.max(hysteresis) + LARGE / 2,
        "proxy_buflen makes no difference: {large} bytes in flight with 16 MiB, \
         {small} with 4 KiB, {hysteresis} with rxflow above 4 KiB"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_writer_to_a_slow_onward_peer_stops_being_read_and_loses_nothing() {
    const TOTAL: usize = 64 * 1024 * 1024;
    const BUFLEN: usize = 4096;
    // An onward server that reads nothing until told to, then counts and checks everything.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        go.await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        while got < TOTAL {
            let n = s.read(&mut buf).await.unwrap();
            assert_ne!(n, 0, "closed after {got} bytes");
            for (i, &b) in buf[..n].iter().enumerate() {
                assert_eq!(b, ((got + i) % 251) as u8, "byte {}", got + i);
            }
            got += n;
        }
        got
    });
    let policy = format!(
        r#"{{ "s": [{{ "sink": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw",
                                 "proxy_buflen": {BUFLEN} }} }}] }}"#
    );
    let (name, _cx) = proxy(&policy).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("sink", 500_000_000), Frame::OnwardConnect])
        .await;
    assert!(matches!(c.next().await, Some(Frame::CreateResult(r)) if r.is_ok()));
    loop {
        if c.state().await == State::CONNECTED {
            break;
        }
    }
    // The client writes TOTAL bytes as fast as the link takes them, counting.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let (mut rd, mut wr) = c.s.into_split();
    let writer = tokio::spawn(async move {
        const PIECE: usize = 16 * 1024;
        let mut pos = 0;
        while pos < TOTAL {
            let data: Vec<u8> = (pos..pos + PIECE).map(|i| (i % 251) as u8).collect();
            let mut out = BytesMut::new();
            Frame::TxPayload(Payload::new(Flags::empty(), Bytes::from(data)))
                .encode(&mut out)
                .unwrap();
            wr.write_all(&out).await.unwrap();
            pos += PIECE;
            counter.store(pos, std::sync::atomic::Ordering::Relaxed);
        }
        wr
    });
    // Keep reading the link (states may come), so only the tx direction can stall.
    let reader = tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while rd.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    tokio::pin!(writer);
    let stalled = tokio::time::timeout(Duration::from_secs(30), &mut writer)
        .await
        .is_err();
    let at_stall = sent.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "fast writer, proxy_buflen {BUFLEN}: {} KiB in flight when the client had to wait \
         ({:.1} × the proxy's limit; the rest is socket buffers)",
        at_stall / 1024,
        at_stall as f64 / BUFLEN as f64
    );
    assert!(
        stalled,
        "the client wrote all {TOTAL} bytes to an onward peer that read nothing"
    );
    assert!(
        at_stall < TOTAL / 2,
        "{at_stall} bytes in flight is not bounded"
    );
    // Now the onward peer reads: everything arrives, in order, intact.
    go_tx.send(()).unwrap();
    let _wr = tokio::time::timeout(LIMIT, writer)
        .await
        .expect("the client gets rid of everything")
        .unwrap();
    let got = tokio::time::timeout(LIMIT, server)
        .await
        .expect("the onward peer gets everything")
        .unwrap();
    assert_eq!(got, TOTAL);
    reader.abort();
}

#[tokio::test]
async fn perf_json_goes_to_the_client_whole_as_a_perf_frame() {
    let port = greeter().await;
    let policy = format!(
        r#"{{ "s": [{{ "mintest": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw",
                                    "perf": true }} }}] }}"#
    );
    let (name, _cx) = proxy(&policy).await;
    let mut c = Client::connect(&name).await;
    c.send(&[streamtype("mintest", 500_000_000), Frame::OnwardConnect])
        .await;
    let mut rx = Vec::new();
    let mut perf = Vec::new();
    let mut said_hello = false;
    loop {
        match c.next().await {
            Some(Frame::RxPayload(p)) => {
                rx.extend_from_slice(&p.data);
                if !said_hello && rx.len() >= b"hello-from-server".len() {
                    said_hello = true;
                    c.send(&[Frame::TxPayload(Payload::new(
                        Flags::empty(),
                        Bytes::from_static(b"x"),
                    ))])
                    .await;
                }
            }
            Some(Frame::Perf(json)) => perf.push(json),
            Some(Frame::ConnState(ConnState {
                state: State::DISCONNECTED,
                ..
            })) => break,
            Some(Frame::ConnState(_) | Frame::CreateResult(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rx, b"hello-from-serverecho:x", "no JSON in the payload");
    let [json] = &perf[..] else {
        panic!("one PERF frame before DISCONNECTED: {perf:?}")
    };
    // All of it, not the C proxy's first 5 bytes.
    let v: serde_json::Value = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(json)));
    assert!(json.len() > 5);
    assert_eq!(v["peer"], "127.0.0.1");
}

/// A raw server that writes `total` bytes of a counting pattern at once, then closes
async fn bulk_writer(total: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        s.write_all(&data).await.unwrap();
    });
    port
}

/// The C client gathers each RX_PAYLOAD frame in a buffer of the `client_buflen` it was told
/// (32768 when 0) and silently drops the last piece of a frame that does not fit, so a
/// download through the proxy lost bytes once onward reads (up to 64 KiB) went out as one
/// frame each. Every frame must fit in half the client's buffer.
#[tokio::test]
async fn rx_frames_fit_the_c_clients_reassembly_buffer() {
    const TOTAL: usize = 256 * 1024;
    for (buflen, limit) in [(None, 16384), (Some(4096), 2048)] {
        let port = bulk_writer(TOTAL).await;
        let extra = buflen.map_or(String::new(), |b| format!(r#", "client_buflen": {b}"#));
        let policy = format!(
            r#"{{ "s": [{{ "bulk": {{ "endpoint": "127.0.0.1", "port": {port},
                                     "protocol": "raw"{extra} }} }}] }}"#
        );
        let (name, _cx) = proxy(&policy).await;
        let mut c = Client::connect(&name).await;
        c.send(&[streamtype("bulk", 500_000_000), Frame::OnwardConnect])
            .await;
        let mut got = Vec::new();
        let mut largest = 0;
        while got.len() < TOTAL {
            match c.next().await {
                Some(Frame::CreateResult(r)) => {
                    assert_eq!(r.client_buflen, buflen.unwrap_or(32768));
                }
                Some(Frame::RxPayload(p)) => {
                    largest = largest.max(p.data.len());
                    got.extend_from_slice(&p.data);
                }
                Some(Frame::ConnState(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(
            largest <= limit,
            "client_buflen {buflen:?}: a {largest}-byte frame"
        );
        assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }
}

#[test]
fn rx_chunk_limit_is_half_the_client_buffer() {
    use server::{MAX_RX_CHUNK, rx_chunk_limit};
    assert_eq!(rx_chunk_limit(0), 16384);
    assert_eq!(rx_chunk_limit(32768), 16384);
    assert_eq!(rx_chunk_limit(4096), 2048);
    assert_eq!(rx_chunk_limit(1), 1);
    assert_eq!(rx_chunk_limit(u32::MAX), MAX_RX_CHUNK);
}

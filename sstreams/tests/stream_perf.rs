//! `"perf": true`: one connection-performance JSON rx (`SOM|EOM|PERF_JSON`) per connection of a
//! direct stream, over real loopback sockets, for raw and h1, both faces, connected and refused

use std::time::Duration;

use serde_json::Value;
use sstreams::stream::{ConnState as State, Flags, StreamCx};
use sstreams::{Context, StreamEvent, StreamEvents, StreamHandler};
use sstreams_core::stream::StateReturn;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

mod support;

const LIMIT: Duration = Duration::from_secs(20);
/// `SOM|EOM|PERF_JSON`
const PERF: Flags = Flags::from_bits_retain(0x43);

/// What a stream reported, with perf rx parsed
#[derive(Debug, Clone, PartialEq)]
enum Rec {
    State(State),
    Rx(Vec<u8>, Flags),
    Perf(Value),
}

fn record_rx(data: &[u8], flags: Flags) -> Rec {
    if flags.contains(Flags::PERF_JSON) {
        assert_eq!(flags, PERF, "perf rx flags");
        let text = std::str::from_utf8(data).expect("perf JSON is UTF-8");
        Rec::Perf(serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")))
    } else {
        Rec::Rx(data.to_vec(), flags)
    }
}

fn context(streamtypes: &str) -> Context {
    let policy = format!(r#"{{ "s": [{streamtypes}] }}"#);
    Context::builder()
        .policy_json(&policy)
        .jitter_source(|| 0)
        .build()
        .unwrap()
}

fn raw_st(port: u16, perf: bool) -> String {
    format!(
        r#"{{ "raw": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw", "perf": {perf} }} }}"#
    )
}

fn h1_st(port: u16, perf: bool) -> String {
    format!(
        r#"{{ "get": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
                       "http_method": "GET", "http_url": "x", "perf": {perf} }} }}"#
    )
}

/// A TCP server on loopback that, on each connection, writes `bye` and closes; its port
async fn bye_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"bye").await;
            let _ = s.shutdown().await;
        }
    });
    port
}

/// Records every callback into a channel
struct Recorder(mpsc::UnboundedSender<Rec>);

impl StreamHandler for Recorder {
    fn state(&mut self, _cx: &mut StreamCx<'_>, state: State, _ack: u32) -> StateReturn {
        let _ = self.0.send(Rec::State(state));
        StateReturn::Ok
    }

    fn rx(&mut self, _cx: &mut StreamCx<'_>, data: &[u8], flags: Flags) -> StateReturn {
        let _ = self.0.send(record_rx(data, flags));
        StateReturn::Ok
    }
}

/// Handler records until `state` (inclusive)
async fn handler_until(rx: &mut mpsc::UnboundedReceiver<Rec>, state: State) -> Vec<Rec> {
    let mut out = Vec::new();
    loop {
        let rec = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("in time")
            .expect("alive");
        let done = rec == Rec::State(state);
        out.push(rec);
        if done {
            return out;
        }
    }
}

/// Async-face records until `state` (inclusive); metadata events are left out
async fn events_until(events: &mut StreamEvents, state: State) -> Vec<Rec> {
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(LIMIT, events.next())
            .await
            .unwrap_or_else(|_| panic!("in time: {out:?}"))
            .expect("alive");
        let rec = match ev {
            StreamEvent::State(s, _) => Rec::State(s),
            StreamEvent::Rx(d, f) => record_rx(&d, f),
            _ => continue,
        };
        let done = rec == Rec::State(state);
        out.push(rec);
        if done {
            return out;
        }
    }
}

fn perfs(recs: &[Rec]) -> Vec<&Value> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Perf(v) => Some(v),
            _ => None,
        })
        .collect()
}

fn position(recs: &[Rec], want: impl Fn(&Rec) -> bool) -> usize {
    recs.iter()
        .position(want)
        .unwrap_or_else(|| panic!("not in {recs:?}"))
}

/// A time in µs: present, an integer, below the test's limit
fn micros(v: &Value, key: &str) -> u64 {
    let us = v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"));
    assert!(us < LIMIT.as_micros() as u64, "{key} = {us}");
    us
}

/// The keys C writes, in its order
fn assert_c_keys(v: &Value, http: bool) {
    let mut keys = vec![
        "peer",
        "dns_us",
        "dns_disp",
        "sockconn_us",
        "tls_us",
        "txn_resp_us",
        "dns",
    ];
    if http {
        keys.push("prot_specific");
    }
    let got: Vec<_> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = keys.clone();
    want.sort_unstable(); // serde_json's map is sorted
    assert_eq!(got, want, "{v}");
}

#[tokio::test]
async fn raw_connection_gives_one_perf_rx_at_close_with_the_handler() {
    let port = bye_server().await;
    let cx = context(&raw_st(port, true));
    let (out, mut rx) = mpsc::unbounded_channel();
    let stream = cx.create_stream("raw", Recorder(out)).unwrap();
    stream.connect();
    let recs = handler_until(&mut rx, State::DISCONNECTED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    // After the payload, just before DISCONNECTED (as C's RAW_CLOSE).
    let bye = position(&recs, |r| matches!(r, Rec::Rx(d, _) if d == b"bye"));
    assert_eq!(recs[recs.len() - 2], Rec::Perf(perf.clone()));
    assert!(bye < recs.len() - 2, "{recs:?}");
    assert_c_keys(perf, false);
    assert_eq!(perf["peer"], "127.0.0.1");
    assert_eq!(perf["dns_disp"], 1);
    assert_eq!(perf["dns"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(micros(perf, "tls_us"), 0);
    assert_eq!(micros(perf, "txn_resp_us"), 0);
    micros(perf, "dns_us");
    micros(perf, "sockconn_us");

    // A second connection gets its own, and destroying the stream adds none.
    stream.connect();
    let recs = handler_until(&mut rx, State::DISCONNECTED).await;
    assert_eq!(perfs(&recs).len(), 1, "{recs:?}");
    drop(stream);
    let recs = handler_until(&mut rx, State::DESTROYING).await;
    assert!(perfs(&recs).is_empty(), "{recs:?}");
}

#[tokio::test]
async fn h1_transaction_gives_one_perf_rx_with_the_status_on_the_async_face() {
    let (port, _request) =
        support::http_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
    let cx = context(&h1_st(port, true));
    let (stream, mut events) = cx.open("get").unwrap();
    stream.request_tx();
    let recs = events_until(&mut events, State::DISCONNECTED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    // As C: as soon as the response head is in, before CONNECTED and the body.
    let at = position(&recs, |r| matches!(r, Rec::Perf(_)));
    assert!(at < position(&recs, |r| *r == Rec::State(State::CONNECTED)));
    assert!(at < position(&recs, |r| matches!(r, Rec::Rx(d, _) if d == b"ok")));
    assert_c_keys(perf, true);
    assert_eq!(perf["peer"], "127.0.0.1");
    assert_eq!(perf["dns"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(perf["dns_disp"], 1);
    assert_eq!(
        perf["prot_specific"],
        serde_json::json!({ "protocol": "http", "resp": 200 })
    );
    assert_eq!(micros(perf, "tls_us"), 0);
    // A request and its response through two tasks take more than a microsecond.
    assert!(micros(perf, "txn_resp_us") > 0, "{perf}");
    micros(perf, "dns_us");
    micros(perf, "sockconn_us");
    drop(stream);
    let recs = events_until(&mut events, State::DESTROYING).await;
    assert!(perfs(&recs).is_empty(), "{recs:?}");
}

#[tokio::test]
async fn h1_connection_failing_before_a_response_reports_status_0() {
    // Reads nothing, answers nothing: `bye` is not http, so the transaction fails.
    let port = bye_server().await;
    let cx = context(&h1_st(port, true));
    let (stream, mut events) = cx.open("get").unwrap();
    stream.request_tx();
    let recs = events_until(&mut events, State::ALL_RETRIES_FAILED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    assert_c_keys(perf, true);
    assert_eq!(perf["peer"], "127.0.0.1");
    assert_eq!(perf["prot_specific"]["resp"], 0);
    drop(stream);
}

#[tokio::test]
async fn refused_connect_gives_one_perf_rx_before_unreachable() {
    let (_reserved, port) = support::refused_port();
    let cx = context(&format!("{}, {}", raw_st(port, true), h1_st(port, true)));
    for name in ["raw", "get"] {
        let (out, mut rx) = mpsc::unbounded_channel();
        let stream = cx.create_stream(name, Recorder(out)).unwrap();
        stream.connect();
        let recs = handler_until(&mut rx, State::UNREACHABLE).await;
        let [perf] = perfs(&recs)[..] else {
            panic!("{name}: one perf rx: {recs:?}")
        };
        assert_eq!(recs[recs.len() - 2], Rec::Perf(perf.clone()), "{name}");
        // The address tried; no socket, so no protocol part.
        assert_c_keys(perf, false);
        assert_eq!(perf["peer"], "127.0.0.1");
        assert_eq!(perf["dns"], serde_json::json!(["127.0.0.1"]));
        assert_eq!(micros(perf, "sockconn_us"), 0);
        assert_eq!(micros(perf, "tls_us"), 0);
        drop(stream);
        let recs = handler_until(&mut rx, State::DESTROYING).await;
        assert!(perfs(&recs).is_empty(), "{name}: {recs:?}");
    }
}

#[tokio::test]
async fn streams_without_perf_get_no_perf_rx() {
    let raw_port = bye_server().await;
    let (h1_port, _request) =
        support::http_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let (_reserved, refused) = support::refused_port();
    let cx = context(&format!(
        r#"{}, {}, {{ "refused": {{ "endpoint": "127.0.0.1", "port": {refused}, "protocol": "raw" }} }}"#,
        raw_st(raw_port, false),
        h1_st(h1_port, false)
    ));
    for (name, until) in [
        ("raw", State::DISCONNECTED),
        ("get", State::DISCONNECTED),
        ("refused", State::UNREACHABLE),
    ] {
        let (stream, mut events) = cx.open(name).unwrap();
        stream.connect();
        let mut recs = events_until(&mut events, until).await;
        drop(stream);
        recs.extend(events_until(&mut events, State::DESTROYING).await);
        assert!(perfs(&recs).is_empty(), "{name}: {recs:?}");
        assert!(
            !recs
                .iter()
                .any(|r| matches!(r, Rec::Rx(_, f) if f.contains(Flags::PERF_JSON))),
            "{name}"
        );
    }
}

#[tokio::test]
async fn tls_handshake_time_is_measured() {
    use base64::Engine as _;
    let ca = support::ca("perf ca");
    let port = support::serve_once(support::leaf(&ca, "localhost", false), None).await;
    let der = base64::engine::general_purpose::STANDARD.encode(ca.der());
    let policy = format!(
        r#"{{ "certs": [{{ "ca": "{der}" }}], "trust_stores": [{{ "name": "ts", "stack": ["ca"] }}],
             "s": [{{ "tls": {{ "endpoint": "localhost", "port": {port}, "protocol": "raw",
                               "tls": true, "tls_trust_store": "ts", "perf": true }} }}] }}"#
    );
    let cx = Context::builder().policy_json(&policy).build().unwrap();
    let (stream, mut events) = cx.open("tls").unwrap();
    stream.connect();
    let recs = events_until(&mut events, State::DISCONNECTED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    // `localhost` may resolve to ::1 as well; the server listens on 127.0.0.1.
    assert_eq!(perf["peer"], "127.0.0.1");
    assert!(
        perf["dns"]
            .as_array()
            .unwrap()
            .contains(&"127.0.0.1".into())
    );
    // A handshake with certificate checks takes well over a microsecond.
    assert!(micros(perf, "tls_us") > 0, "{perf}");
    drop(stream);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn unix_socket_peer_is_written_as_c_writes_it() {
    use std::os::linux::net::SocketAddrExt;
    let name = support::unique_name("perf");
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    l.set_nonblocking(true).unwrap();
    let l = tokio::net::UnixListener::from_std(l).unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let _ = s.write_all(b"bye").await;
        let _ = s.shutdown().await;
    });
    let cx = context(&format!(
        r#"{{ "unix": {{ "endpoint": "+@{name}", "protocol": "raw", "perf": true }} }}"#
    ));
    let (stream, mut events) = cx.open("unix").unwrap();
    stream.connect();
    let recs = events_until(&mut events, State::DISCONNECTED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    // No lookup for a Unix socket: disposition 0 and no results.
    assert_eq!(perf["peer"], "(unix skt)");
    assert_eq!(perf["dns_disp"], 0);
    assert_eq!(perf["dns_us"], 0);
    assert_eq!(perf["dns"], serde_json::json!([]));
    micros(perf, "sockconn_us");
    drop(stream);
}

#[tokio::test]
async fn h1_redirect_reports_once_for_the_connection_that_answered() {
    let (final_port, _request) =
        support::http_once(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
    let redirect: &'static [u8] = format!(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{final_port}/y\r\ncontent-length: 0\r\n\r\n"
    )
    .into_bytes()
    .leak();
    let (port, _request) = support::http_once(redirect).await;
    let cx = context(&format!(
        r#"{{ "get": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
                       "http_method": "GET", "http_url": "x", "perf": true,
                       "allow_redirects": true }} }}"#
    ));
    let (stream, mut events) = cx.open("get").unwrap();
    stream.request_tx();
    let recs = events_until(&mut events, State::DISCONNECTED).await;
    let [perf] = perfs(&recs)[..] else {
        panic!("one perf rx: {recs:?}")
    };
    assert_eq!(perf["prot_specific"]["resp"], 201);
    assert_eq!(perf["peer"], "127.0.0.1");
    assert!(micros(perf, "txn_resp_us") > 0, "{perf}");
    assert!(
        recs.contains(&Rec::State(State::QOS_ACK_REMOTE)),
        "{recs:?}"
    );
    drop(stream);
}

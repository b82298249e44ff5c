//! Faults around the SS proxy: the proxy killed and restarted under a proxied client, a
//! client killed mid-stream, and 1,000 concurrent links on one proxy with bounded memory

mod support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams::stream::Flags;
use sstreams::{Context, StreamEvent};
use sstreams_core::smd::SmdClass;
use sstreams_core::stream::State;
use sstreams_core::wire::{ConnState, Decoder, Frame, Payload, StreamType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(10);

/// The tests of this file run one at a time, so that the RSS measured by one is its own
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn echo_policy(port: u16) -> String {
    format!(
        r#"{{ "s": [{{ "echo": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "raw" }} }}] }}"#
    )
}

/// A running proxy that stops (closing every link) when told to
struct Proxy {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    cx: Context,
}

impl Proxy {
    async fn start(policy: &str, name: &str, options: ListenOptions) -> Self {
        let cx = Context::builder().policy_json(policy).build().unwrap();
        let l = ProxyListener::bind(ProxyAddr::Abstract(name.to_owned()), options)
            .await
            .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(cx.clone(), l, async move {
            let _ = stopped.await;
        }));
        Self { stop, task, cx }
    }

    /// Stops it and waits until its links and its listening socket are closed
    async fn kill(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the proxy stops in time")
            .expect("serve did not panic")
            .expect("serve ended cleanly");
    }
}

/// A scripted client speaking the C wire format
struct Client {
    s: UnixStream,
    dec: Decoder,
}

impl Client {
    async fn connect(name: &str) -> std::io::Result<Self> {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        let s = std::os::unix::net::UnixStream::connect_addr(&addr)?;
        s.set_nonblocking(true)?;
        Ok(Self {
            s: UnixStream::from_std(s)?,
            dec: Decoder::client_side(),
        })
    }

    async fn send(&mut self, frames: &[Frame]) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out).unwrap();
        }
        self.s.write_all(&out).await
    }

    /// The next frame; `None` when the proxy closed (or reset) the link
    async fn next(&mut self) -> Option<Frame> {
        support::next_frame(&mut self.s, &mut self.dec)
            .await
            .unwrap_or(None)
    }

    async fn state(&mut self) -> State {
        match self.next().await {
            Some(Frame::ConnState(ConnState { state, .. })) => state,
            other => panic!("expected CONNSTATE, got {other:?}"),
        }
    }

    /// Creates a stream: `true` if CREATE_RESULT said ok, `false` if the link was refused
    async fn create(&mut self, streamtype: &str, credit: u32) -> bool {
        let st = Frame::StreamType(StreamType {
            pid: std::process::id(),
            tx_credit: credit,
            name: Bytes::copy_from_slice(streamtype.as_bytes()),
        });
        if self.send(&[st]).await.is_err() {
            return false;
        }
        match self.next().await {
            Some(Frame::CreateResult(r)) => r.is_ok(),
            None => false,
            Some(other) => panic!("expected CREATE_RESULT, got {other:?}"),
        }
    }

    /// An SMD link up to CONNECTED
    async fn smd(name: &str) -> Option<Self> {
        let mut c = Self::connect(name).await.ok()?;
        if !c.create("_lws_smd", SmdClass::NETWORK.bits()).await {
            return None;
        }
        for expected in [State::CREATING, State::CONNECTING, State::CONNECTED] {
            assert_eq!(c.state().await, expected);
        }
        Some(c)
    }
}

/// The next event of a proxied stream, within [`LIMIT`]
async fn event(events: &mut sstreams::StreamEvents) -> StreamEvent {
    tokio::time::timeout(LIMIT, events.next())
        .await
        .expect("an event in time")
        .expect("the stream is alive")
}

/// Proxy killed and restarted: the proxied client reports DISCONNECTED and
/// UPSTREAM_LINK_RETRY, keeps retrying, then recovers on the new proxy (without a second
/// CREATING) and the payload sent while the proxy was down is echoed back.
#[tokio::test]
async fn proxy_killed_and_restarted() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let port = support::echo_server().await;
    let name = support::unique_name("restart");
    let proxy = Proxy::start(&echo_policy(port), &name, ListenOptions::default()).await;
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name.clone()))
        .build()
        .unwrap();
    let (stream, mut events) = client.open("echo").unwrap();
    stream.send(&b"before"[..], Flags::empty());
    let mut states = Vec::new();
    let mut data = Vec::new();
    while data.len() < b"before".len() {
        match event(&mut events).await {
            StreamEvent::State(s, _) => states.push(s),
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(data, b"before");
    assert_eq!(
        states,
        [
            State::CREATING,
            State::POLL,
            State::CONNECTING,
            State::CONNECTED
        ]
    );

    // Kill the proxy: every link closes and nobody listens on the name any more.
    proxy.kill().await;
    assert!(
        matches!(
            event(&mut events).await,
            StreamEvent::State(State::DISCONNECTED, _)
        ),
        "DISCONNECTED first"
    );
    let StreamEvent::State(State::UPSTREAM_LINK_RETRY, first_ack) = event(&mut events).await else {
        panic!("UPSTREAM_LINK_RETRY after DISCONNECTED")
    };
    // Payload while the proxy is down, then one more failed attempt a second later.
    stream.send(&b"while-down"[..], Flags::empty());
    let StreamEvent::State(State::UPSTREAM_LINK_RETRY, second_ack) = event(&mut events).await
    else {
        panic!("another UPSTREAM_LINK_RETRY while the proxy is down")
    };
    assert!(
        second_ack >= first_ack + 900,
        "retried about a second later: {first_ack} ms, then {second_ack} ms"
    );

    // A new proxy on the same name: the client recovers and nothing queued is lost.
    let _proxy = Proxy::start(&echo_policy(port), &name, ListenOptions::default()).await;
    let mut states = Vec::new();
    let mut data = Vec::new();
    while data.len() < b"while-down".len() {
        match event(&mut events).await {
            StreamEvent::State(State::UPSTREAM_LINK_RETRY, _) => {}
            StreamEvent::State(s, _) => states.push(s),
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        data, b"while-down",
        "payload sent while the proxy was down is not lost"
    );
    assert_eq!(
        states,
        [State::POLL, State::CONNECTING, State::CONNECTED],
        "no second CREATING"
    );
    // And the recovered stream goes on working.
    stream.send(&b"after"[..], Flags::empty());
    let mut data = Vec::new();
    while data.len() < b"after".len() {
        match event(&mut events).await {
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(data, b"after");
}

/// A stream the app only connected (it sends nothing later) is connected again on the new
/// proxy after a restart, as a direct stream reconnects and as the C client does (it sends
/// ONWARD_CONNECT again on every new link)
#[tokio::test]
async fn connected_stream_reconnects_after_proxy_restart_without_app_action() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let port = support::echo_server().await;
    let name = support::unique_name("reconnect");
    let proxy = Proxy::start(&echo_policy(port), &name, ListenOptions::default()).await;
    let client = Context::builder()
        .proxy(ProxyAddr::Abstract(name.clone()))
        .build()
        .unwrap();
    let (stream, mut events) = client.open("echo").unwrap();
    stream.connect();
    let mut states = Vec::new();
    while states.last() != Some(&State::CONNECTED) {
        match event(&mut events).await {
            StreamEvent::State(s, _) => states.push(s),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        states,
        [State::CREATING, State::CONNECTING, State::CONNECTED]
    );
    proxy.kill().await;
    assert!(matches!(
        event(&mut events).await,
        StreamEvent::State(State::DISCONNECTED, _)
    ));
    assert!(matches!(
        event(&mut events).await,
        StreamEvent::State(State::UPSTREAM_LINK_RETRY, _)
    ));
    let _proxy = Proxy::start(&echo_policy(port), &name, ListenOptions::default()).await;
    let mut states = Vec::new();
    while states.last() != Some(&State::CONNECTED) {
        match event(&mut events).await {
            StreamEvent::State(State::UPSTREAM_LINK_RETRY, _) => {}
            StreamEvent::State(s, _) => states.push(s),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(states, [State::CONNECTING, State::CONNECTED]);
    stream.send(&b"still here"[..], Flags::empty());
    let mut data = Vec::new();
    while data.len() < b"still here".len() {
        match event(&mut events).await {
            StreamEvent::Rx(d, _) => data.extend_from_slice(&d),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(data, b"still here");
}

/// Client killed mid-stream: the proxy closes the onward connection it made for that link.
#[tokio::test]
async fn client_killed_mid_stream_frees_the_onward_connection() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let name = support::unique_name("killed");
    let proxy = Proxy::start(&echo_policy(port), &name, ListenOptions::default()).await;

    let mut c = Client::connect(&name).await.unwrap();
    assert!(c.create("echo", 500_000_000).await);
    assert_eq!(c.state().await, State::CREATING);
    c.send(&[Frame::OnwardConnect]).await.unwrap();
    let (mut onward, _): (TcpStream, _) = tokio::time::timeout(LIMIT, server.accept())
        .await
        .expect("the proxy connects onward")
        .unwrap();
    // ONWARD_CONNECT connects without a tx request, so no POLL.
    for expected in [State::CONNECTING, State::CONNECTED] {
        assert_eq!(c.state().await, expected);
    }
    // Payload both ways, so the onward connection is busy when the client goes.
    c.send(&[Frame::TxPayload(Payload::new(
        Flags::empty(),
        Bytes::from_static(b"to-server"),
    ))])
    .await
    .unwrap();
    let mut got = [0u8; 9];
    tokio::time::timeout(LIMIT, onward.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"to-server");
    onward.write_all(b"to-client").await.unwrap();
    match c.next().await {
        Some(Frame::RxPayload(p)) => assert_eq!(p.data, Bytes::from_static(b"to-client")),
        other => panic!("{other:?}"),
    }
    onward.write_all(b"unread by the client").await.unwrap();

    // The client process dies: its socket closes without DESTROYING.
    drop(c);
    let mut rest = Vec::new();
    match tokio::time::timeout(LIMIT, onward.read_to_end(&mut rest))
        .await
        .expect("the proxy closes the onward connection in time")
    {
        Ok(_) => assert!(rest.is_empty(), "nothing more from the proxy: {rest:?}"),
        // Closing with "unread by the client" still unread resets the connection.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }

    // The proxy is still fine.
    assert!(Client::smd(&name).await.is_some());
    proxy.kill().await;
}

/// The process's resident set size in KiB
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Makes sure at least `needed` file descriptors may be open; `false` if that cannot be
fn enough_fds(needed: u64) -> bool {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current.is_none_or(|c| c >= needed) {
        return true;
    }
    if lim.maximum.is_some_and(|m| m < needed) {
        return false;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed),
            maximum: lim.maximum,
        },
    )
    .is_ok()
}

const LINKS: usize = 1000;
/// Generous: the proxy's link and SMD stream plus the test's own client, per link
const MAX_GROWTH_PER_LINK_KIB: u64 = 64;

/// `n` SMD links, each CONNECTED, all open at once
async fn open_links(name: &str, n: usize) -> Vec<Client> {
    let mut links = Vec::with_capacity(n);
    for i in 0..n {
        let c = Client::smd(name)
            .await
            .unwrap_or_else(|| panic!("link {i} refused"));
        links.push(c);
    }
    links
}

/// Closes every link and waits until the proxy has closed its end of each
async fn close_links(links: Vec<Client>) {
    let mut links = links;
    for c in &mut links {
        c.s.shutdown().await.unwrap();
    }
    for c in &mut links {
        let mut rest = Vec::new();
        tokio::time::timeout(LIMIT, c.s.read_to_end(&mut rest))
            .await
            .expect("the proxy closes the link")
            .unwrap();
    }
}

/// A new SMD link is served (a link's place under the limit is given back just after its
/// socket closes, so a refused attempt is retried, as C clients do)
async fn served_again(name: &str) -> Client {
    tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(c) = Client::smd(name).await {
                return c;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the proxy serves a new link")
}

/// Waits (within [`LIMIT`], letting other tasks run) until `done` holds
async fn wait_for(done: impl Fn() -> bool, what: &str) {
    tokio::time::timeout(LIMIT, async {
        while !done() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("in time: {what}"));
}

/// 1,000 concurrent SMD links on one proxy: all created and CONNECTED, memory per link bounded,
/// the link limit holds, once they are all closed the proxy serves a new link, and a second
/// thousand reuses the memory of the first (nothing leaks per link).
#[tokio::test]
async fn a_thousand_concurrent_links_with_bounded_memory() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Both ends of every link live in this process, plus slack.
    let needed = 2 * (LINKS as u64 + 2) + 256;
    if !enough_fds(needed) {
        eprintln!("skipped: cannot raise RLIMIT_NOFILE to {needed}");
        return;
    }
    let name = support::unique_name("thousand");
    let mut options = ListenOptions::default();
    // The warm-up link and the thousand fill the proxy exactly.
    options.max_links = LINKS + 1;
    let proxy = Proxy::start(r#"{ "s": [] }"#, &name, options).await;

    // One link first, so one-off allocations are not counted per link.
    let warm = Client::smd(&name).await.expect("the first link is served");
    let participants = || proxy.cx.smd().stats().participants;
    let base = participants();
    let before = rss_kib();
    let mut links = open_links(&name, LINKS).await;
    let after = rss_kib();
    assert_eq!(participants(), base + LINKS, "one SMD participant per link");
    let growth = after.saturating_sub(before);
    let per_link = growth as f64 / LINKS as f64;
    eprintln!(
        "{LINKS} SMD links through the proxy: VmRSS {before} KiB before, {after} KiB after, \
         {per_link:.1} KiB per link (both ends of every link are in this process)"
    );
    assert!(
        growth < MAX_GROWTH_PER_LINK_KIB * LINKS as u64,
        "memory grows by {per_link:.1} KiB per link"
    );

    // All of them are live: a message on the proxy's bus reaches every one.
    proxy
        .cx
        .smd()
        .post(SmdClass::NETWORK, b"{\"to\":\"all\"}")
        .unwrap();
    for (i, c) in links.iter_mut().enumerate() {
        assert!(
            matches!(c.next().await, Some(Frame::RxPayload(_))),
            "link {i} got the message"
        );
    }

    // The limit holds: one more link is refused.
    let mut over = Client::connect(&name).await.unwrap();
    assert!(!over.create("_lws_smd", 0).await, "link over the limit");

    // Close them all; the proxy closes its end of each and serves a new link.
    close_links(links).await;
    let again = served_again(&name).await;
    // Each closed link's onward stream is destroyed and leaves the proxy's bus.
    wait_for(
        || participants() == base + 1,
        "the closed links leave the bus",
    )
    .await;
    eprintln!("after closing them: VmRSS {} KiB", rss_kib());

    // A second thousand (with `again` and `warm`, the limit again) fits in the memory the first
    // one left behind: what a link takes is given back when it closes.
    let second = open_links(&name, LINKS - 1).await;
    let after2 = rss_kib();
    eprintln!(
        "a second {} links: VmRSS {after2} KiB ({:+} KiB over the first thousand)",
        LINKS - 1,
        after2 as i64 - after as i64
    );
    assert!(
        after2 < after + growth,
        "a second thousand links needs as much memory again: {after} KiB, then {after2} KiB"
    );
    close_links(second).await;
    close_links(vec![warm, again]).await;
    wait_for(|| participants() == base - 1, "every link left the bus").await;
    proxy.kill().await;
}

//! The task that drives one stream: its lifecycle core, its connection and its user side
//!
//! The connection (transport and binding) runs as a future polled by the stream's own task,
//! not as a task of its own, so the events between them never cross threads.
//!
//! One loop per stream (see `sstreams_core::stream` for the protocol it follows): drain the
//! core's events into callbacks and connection actions, then wait for the earliest of a user
//! command, a connection event or the core's deadline, and report it to the core.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use sstreams_core::policy::{Endpoint, Protocol, StreamType, Target};
use sstreams_core::smd::SmdClass;
use sstreams_core::stream::perf::ConnPerf;
use sstreams_core::stream::{
    ConnectFailure, Event, PayloadFlags, State, StateReturn, StreamConfig, StreamCore,
};
use tokio::sync::{mpsc, oneshot};

use super::{Command, Deliver, Face, Flow, FlowTask, MetadataStore, Stream, StreamEvent};
use crate::bind::blobs::HttpBlobs;
use crate::bind::cookies::CookieJar;
use crate::bind::{self, BindContext, BindEvent, EVENT_QUEUE, TxChunk};
use crate::context::JitterSource;
use crate::smd::{SmdBus, SsBridge};
use crate::tls::TlsContext;
use crate::transport::{ConnectError, connect, connect_measured};

/// How a stream's connections are made
#[derive(Debug, Clone)]
pub(crate) enum Link {
    /// Over the network, per the policy
    Network(Arc<Network>),
    /// To the SMD bus (`_lws_smd`), receiving these classes
    Smd(SmdBus, SmdClass),
}

/// What network connections share within a context
#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) tls: Arc<TlsContext>,
    pub(crate) cookies: Arc<CookieJar>,
    pub(crate) blobs: HttpBlobs,
}

/// Starts the task of a new stream and returns its handle
pub(crate) fn spawn(
    streamtype: StreamType,
    face: Face,
    link: Link,
    jitter: Option<JitterSource>,
    tx_queue_limit: usize,
) -> Stream {
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let flow = Flow::new(tx_queue_limit);
    let metadata = Arc::new(MetadataStore::new(&streamtype));
    let mut config = StreamConfig::from_streamtype(&streamtype);
    if matches!(link, Link::Smd(..)) {
        // The bus is always there: connect at once, never retry.
        config.nailed_up(true).retry(None);
    }
    let driver = Driver {
        core: match jitter {
            Some(j) => StreamCore::new(config, move || j()),
            None => StreamCore::new(config, jitter_source()),
        },
        streamtype: streamtype.clone(),
        face,
        metadata: Arc::clone(&metadata),
        commands,
        link,
        conn: None,
        length_hint: None,
        user_wants_tx: false,
        conn_count: 0,
        tx_asked_during: None,
        tx_ord: 0,
        pending: Vec::new(),
        flow: FlowTask(Arc::clone(&flow)),
    };
    let span = tracing::debug_span!("stream", streamtype = streamtype.name());
    tokio::spawn(tracing::Instrument::instrument(driver.run(), span));
    Stream {
        commands: commands_tx,
        streamtype,
        metadata,
        proxied: false,
        flow,
    }
}

/// Uniform 16-bit samples for the backoff jitter, from the std hasher's random keys
fn jitter_source() -> impl FnMut() -> u16 + Send + 'static {
    let state = std::collections::hash_map::RandomState::new();
    let mut n = 0u64;
    move || {
        n = n.wrapping_add(1);
        let mut h = state.build_hasher();
        h.write_u64(n);
        h.finish() as u16
    }
}

struct Driver {
    core: StreamCore,
    streamtype: StreamType,
    face: Face,
    metadata: Arc<MetadataStore>,
    commands: mpsc::UnboundedReceiver<Command>,
    link: Link,
    conn: Option<Conn>,
    length_hint: Option<u64>,
    /// The user asked for tx and has not been given a tx callback since
    user_wants_tx: bool,
    /// Connections started so far
    conn_count: u64,
    /// `conn_count` when the user last asked for tx (so a request made while a connection was
    /// finishing is renewed when it closes, and the request that opened it is not)
    tx_asked_during: Option<u64>,
    tx_ord: u32,
    /// Commands issued from inside callbacks, applied after them
    pending: Vec<Command>,
    flow: FlowTask,
}

/// The connection (or attempt) in progress
struct Conn {
    /// The connection's future; `None` once it has finished
    run: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    events: mpsc::Receiver<BindEvent>,
    /// Reports a failed attempt; `None` once the attempt got through
    failed: Option<oneshot::Receiver<Failed>>,
    tx: mpsc::Sender<TxChunk>,
    /// The binding asked for a chunk and has not had one
    wants_tx: bool,
    /// The binding reported `Connected`
    connected: bool,
}

/// A connection attempt that failed, with its performance record (`"perf": true` only)
struct Failed {
    error: ConnectError,
    perf: Option<Box<ConnPerf>>,
}

enum Wake {
    Command(Option<Command>),
    Bind(Option<BindEvent>),
    ConnectFailed(Failed),
    /// The connection attempt succeeded: stop watching for its failure
    GotThrough,
    Deadline,
}

fn now() -> Instant {
    // tokio's clock, so that tests with paused time drive the timers.
    tokio::time::Instant::now().into_std()
}

impl Driver {
    async fn run(mut self) {
        loop {
            if !self.drain().await {
                return;
            }
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            let wake = tokio::select! {
                c = self.commands.recv() => Wake::Command(c),
                w = conn_wake(&mut self.conn) => w,
                () = sleep_until(deadline) => Wake::Deadline,
            };
            match wake {
                Wake::Command(Some(c)) => self.apply(c),
                // Every handle is gone (it sends Destroy on drop, so this is a backstop).
                Wake::Command(None) => self.core.handle_destroy(),
                Wake::Bind(Some(e)) => self.on_bind(e).await,
                Wake::Bind(None) => {
                    // The binding ended without saying Closed (it was aborted or panicked).
                    let connected = self.conn.take().is_some_and(|c| c.connected);
                    if connected {
                        self.core.handle_disconnected(now());
                        self.renew_pending_tx();
                    } else {
                        self.core
                            .handle_connect_failed(now(), ConnectFailure::Unreachable);
                    }
                }
                Wake::ConnectFailed(Failed { error, perf }) => {
                    tracing::info!("{}: {error}", self.streamtype.name());
                    self.conn = None;
                    // As C: the record goes before UNREACHABLE.
                    if let Some(p) = perf {
                        self.deliver_perf(&p).await;
                    }
                    self.core
                        .handle_connect_failed(now(), ConnectFailure::Unreachable);
                }
                Wake::Deadline => self.core.handle_timeout(now()),
                Wake::GotThrough => {
                    if let Some(c) = &mut self.conn {
                        c.failed = None;
                    }
                }
            }
        }
    }

    /// Delivers the core's events; `false` once the stream is destroyed
    async fn drain(&mut self) -> bool {
        loop {
            self.apply_pending();
            let Some(event) = self.core.poll_event() else {
                return true;
            };
            match event {
                Event::State { state, ack } => {
                    tracing::debug!("{}: {state}", self.streamtype.name());
                    let ret = self.deliver_state(state, ack).await;
                    self.callback_returned(ret);
                }
                Event::Connect => self.start_connection(),
                Event::Disconnect => self.conn = None,
                Event::RequestWritable => {
                    self.user_wants_tx = true;
                    self.maybe_tx();
                }
                Event::Destroyed => {
                    self.conn = None;
                    return false;
                }
                _ => {}
            }
        }
    }

    fn apply(&mut self, c: Command) {
        match c {
            Command::RequestTx(len) => {
                if len.is_some() {
                    self.length_hint = len;
                }
                self.user_wants_tx = true;
                self.tx_asked_during = Some(self.conn_count);
                self.core.handle_request_tx();
                self.maybe_tx();
            }
            Command::Connect => self.core.handle_client_connect(),
            Command::StartTimeout(t) => {
                let t = t.or_else(|| self.streamtype.timeout());
                self.core.start_timeout(now(), t);
            }
            Command::CancelTimeout => self.core.cancel_timeout(),
            Command::Send(data, flags) => {
                if self.face.queue_send(data, flags, &self.flow) {
                    self.apply(Command::RequestTx(None));
                }
            }
            Command::Destroy => self.core.handle_destroy(),
            // Neither raw nor h1 has credit; the handle keeps the estimate.
            Command::AddPeerTxCredit(_) => {}
            // Direct streams share the metadata store with their handle.
            Command::Metadata(..) => {}
        }
    }

    fn apply_pending(&mut self) {
        for c in std::mem::take(&mut self.pending) {
            self.apply(c);
        }
    }

    fn callback_returned(&mut self, ret: StateReturn) {
        if ret != StateReturn::Ok && ret != StateReturn::TxDontSend {
            self.core.handle_callback_return(now(), ret);
        }
    }

    async fn deliver_state(&mut self, state: State, ack: u32) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.pending,
        };
        let ret = self.face.state(d, state, ack).await;
        if state == State::DESTROYING {
            // Nothing may follow DESTROYING.
            self.pending.clear();
        }
        ret
    }

    async fn deliver_rx(&mut self, data: Bytes, flags: PayloadFlags) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.pending,
        };
        self.face.rx(d, data, flags).await
    }

    /// Delivers a connection's performance record as one `SOM|EOM|PERF_JSON` rx
    async fn deliver_perf(&mut self, perf: &ConnPerf) {
        let json = Bytes::from(perf.to_json());
        let flags = PayloadFlags::SOM | PayloadFlags::EOM | PayloadFlags::PERF_JSON;
        // C ignores what the rx callback returns for it: so do we.
        let _ = self.deliver_rx(json, flags).await;
    }

    async fn on_bind(&mut self, e: BindEvent) {
        match e {
            BindEvent::Metadata(items) => {
                self.face.metadata(&items).await;
                self.metadata.capture(&self.streamtype, items);
            }
            BindEvent::Connected => {
                if let Some(c) = &mut self.conn {
                    c.connected = true;
                }
                self.core.handle_connected();
            }
            BindEvent::State(s) => {
                if let Err(err) = self.core.handle_binding_state(s, 0) {
                    tracing::warn!(
                        "{}: binding state {s} refused: {err}",
                        self.streamtype.name()
                    );
                }
            }
            BindEvent::Rx(data, flags) => {
                let ret = self.deliver_rx(data, flags).await;
                self.callback_returned(ret);
            }
            BindEvent::WantTx => {
                if let Some(c) = &mut self.conn {
                    c.wants_tx = true;
                }
                self.maybe_tx();
            }
            BindEvent::RetryLater(d) => self.core.handle_retry_later(now(), d),
            BindEvent::Perf(p) => self.deliver_perf(&p).await,
            BindEvent::Closed { error } => {
                if let Some(e) = error {
                    tracing::info!("{}: connection closed: {e}", self.streamtype.name());
                }
                self.conn = None;
                self.core.handle_disconnected(now());
                self.renew_pending_tx();
            }
        }
    }

    /// A tx asked for while the last connection was finishing would be lost with it: ask
    /// again once it has closed (the core connects anew if the stream is idle, and leaves it
    /// to a scheduled retry otherwise)
    fn renew_pending_tx(&mut self) {
        if self.user_wants_tx && self.tx_asked_during == Some(self.conn_count) {
            self.core.handle_request_tx();
        }
    }

    /// Gives the binding a chunk if it wants one and the user asked to send
    fn maybe_tx(&mut self) {
        let Some(conn) = &mut self.conn else { return };
        if !(conn.wants_tx && self.user_wants_tx) {
            return;
        }
        let http = self.streamtype.protocol().is_http();
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.pending,
        };
        let (chunk, ret) = self.face.produce_tx(d, &mut self.tx_ord, &self.flow);
        // A handler's payload goes only with OK.
        let chunk = chunk
            .filter(|_| ret == StateReturn::Ok)
            .map(|(data, flags)| TxChunk { data, flags });
        match chunk {
            Some(chunk) => {
                // An http body without EOM continues: ask for the next part at once.
                self.user_wants_tx =
                    self.face.has_queued() || (http && !chunk.flags.contains(PayloadFlags::EOM));
                conn.wants_tx = false;
                if chunk.flags.contains(PayloadFlags::EOM) {
                    // The announced length was for this message only (C keeps it for MQTT,
                    // which then mis-sizes the next publish).
                    self.length_hint = None;
                }
                // Capacity 1 and one chunk per WantTx: this cannot be full.
                let _ = conn.tx.try_send(chunk);
            }
            None => self.user_wants_tx = false,
        }
        if !self.user_wants_tx {
            self.tx_asked_during = None;
        }
        self.callback_returned(ret);
    }

    fn start_connection(&mut self) {
        self.conn = None;
        self.conn_count += 1;
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let (tx, tx_rx) = mpsc::channel(1);
        let (failed_tx, failed) = oneshot::channel();
        let (slots, direct) = self.metadata.snapshot();
        let endpoint = match &self.link {
            Link::Smd(..) => None,
            Link::Network(_) => {
                let lookup = |name: &str| {
                    let i = self.streamtype.metadata_index(name)?;
                    slots.get(i)?.as_deref()
                };
                match self.streamtype.resolve_endpoint(lookup) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!("{e}");
                        self.core
                            .handle_connect_failed(now(), ConnectFailure::Unreachable);
                        return;
                    }
                }
            }
        };
        let (tls, cookies, blobs) = match (&self.link, &endpoint) {
            (Link::Network(net), Some(ep)) => {
                let tls = if ep.tls {
                    net.tls
                        .client_config(&self.streamtype)
                        .map_err(|e| tracing::warn!("{}: {e}", self.streamtype.name()))
                        .ok()
                } else {
                    None
                };
                (tls, Some(Arc::clone(&net.cookies)), net.blobs.clone())
            }
            _ => (None, None, HttpBlobs::default()),
        };
        let cx = BindContext {
            streamtype: self.streamtype.clone(),
            endpoint: endpoint.clone().unwrap_or_else(|| Endpoint {
                target: Target::UnixAbstract(sstreams_core::smd::STREAMTYPE_NAME.to_owned()),
                tls: false,
                path: None,
            }),
            metadata: slots.clone(),
            direct_headers: direct,
            length_hint: self.length_hint,
            // Set by `connection`, which measures the connect.
            perf: None,
            events: events_tx,
            tx: tx_rx,
            tls: tls.clone(),
            cookies,
            blobs,
        };
        let run: Pin<Box<dyn Future<Output = ()> + Send>> = match (&self.link, endpoint) {
            (Link::Smd(bus, mask), _) => Box::pin(bind::smd::run(cx, SsBridge::new(bus, *mask))),
            (Link::Network(_), Some(endpoint)) => {
                Box::pin(connection(cx, endpoint, tls, failed_tx))
            }
            (Link::Network(_), None) => return,
        };
        let failed = Some(failed);
        self.conn = Some(Conn {
            run: Some(run),
            events,
            failed,
            tx,
            wants_tx: false,
            connected: false,
        });
    }
}

/// One network connection: open the transport, then run the protocol's binding on it
///
/// With `"perf": true` the connect is measured and the record goes with the failure, or to
/// the binding, which completes and reports it.
async fn connection(
    mut cx: BindContext,
    endpoint: Endpoint,
    tls: Option<Arc<rustls::ClientConfig>>,
    failed: oneshot::Sender<Failed>,
) {
    let mut perf = cx.streamtype.spec().perf.then(Box::<ConnPerf>::default);
    let connected = match perf.as_deref_mut() {
        Some(p) => connect_measured(&endpoint, tls, p).await,
        None => connect(&endpoint, tls).await,
    };
    let transport = match connected {
        Ok(t) => t,
        Err(error) => {
            let _ = failed.send(Failed { error, perf });
            return;
        }
    };
    cx.perf = perf;
    match cx.streamtype.protocol() {
        Protocol::Raw => bind::raw::run(cx, transport).await,
        Protocol::H1 => bind::h1::run(cx, transport).await,
        other => {
            // Refused when the stream is created; kept as a guard.
            let error = Some(format!("protocol {other} is not supported yet"));
            cx.emit(BindEvent::Closed { error }).await;
        }
    }
}

/// The next thing the connection has to say (polling the connection meanwhile)
async fn conn_wake(conn: &mut Option<Conn>) -> Wake {
    let Some(c) = conn else {
        return std::future::pending().await;
    };
    loop {
        let failed = async {
            match &mut c.failed {
                Some(rx) => rx.await,
                None => std::future::pending().await,
            }
        };
        let run = async {
            match &mut c.run {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            f = failed => {
                return match f {
                    Ok(e) => Wake::ConnectFailed(e),
                    Err(_) => Wake::GotThrough,
                };
            }
            e = c.events.recv() => {
                // A failed attempt drops its event sender too: report the failure, not an end.
                if e.is_none() {
                    if let Some(Ok(err)) = c.failed.as_mut().map(|rx| rx.try_recv()) {
                        return Wake::ConnectFailed(err);
                    }
                }
                return Wake::Bind(e);
            }
            () = run => {
                // Its last events (if any) are still queued; they come next.
                c.run = None;
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Keeps the type of the async face's queue in one place
pub(crate) fn channel_face(events: mpsc::Sender<StreamEvent>) -> Face {
    Face::Channel {
        events,
        queued: VecDeque::new(),
    }
}

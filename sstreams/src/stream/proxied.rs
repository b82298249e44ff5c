//! The task of a proxied stream: the same user side, with the lifecycle run by an SS proxy
//!
//! The stream opens a link (one per stream) to the proxy, creates the onward stream there
//! with STREAMTYPE and relays everything over the C wire format (spec `wire-protocol.md`):
//!
//! * link: connect, STREAMTYPE, CREATE_RESULT within [`CREATE_RESULT_TIMEOUT`]; on any
//!   failure (refused, closed, create failed) retry every [`LINK_RETRY`], forever, telling
//!   the user `UPSTREAM_LINK_RETRY` with `ack` = ms spent trying (C behaviour);
//! * the user gets `CREATING` once the first CREATE_RESULT arrives (the proxied `CREATING` is
//!   swallowed), then every proxied state; a link lost after `CONNECTED` gives a local
//!   `DISCONNECTED` first;
//! * user commands become frames: metadata (METADATA), timeouts (TIMEOUT_UPDATE), length hints
//!   (PAYLOAD_LENGTH_HINT), connect and tx requests (ONWARD_CONNECT), payload (TX_PAYLOAD).
//!   Commands given while the link is down are kept and sent once it is up again; a stream
//!   the user had asked to connect is connected again on a new link (C sends ONWARD_CONNECT
//!   on every new link).
//!
//! Tx is sent as soon as the link is up and the user asked to send (the proxy holds it until
//! the onward stream can take it), so an http POST body does not wait for `CONNECTED`.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sstreams_core::stream::{PayloadFlags, State, StateReturn};
use sstreams_core::wire::{self, ConnState, Decoder, Frame, Metadata, Payload, StreamType};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Deliver, Face, MetadataStore, StreamCx};
use crate::proxy::frame_io::{FrameIoError, READ_SIZE, read_frame, write_frames};
use crate::proxy::listen::ProxyAddr;
use crate::transport::Transport;

/// Wait between link attempts (C: 1 s, fixed)
pub const LINK_RETRY: Duration = Duration::from_secs(1);
/// How long the proxy may take to answer STREAMTYPE (C: 3 s)
pub const CREATE_RESULT_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) struct Proxied {
    pub(crate) name: String,
    pub(crate) tx_credit: u32,
    pub(crate) addr: ProxyAddr,
    pub(crate) face: Face,
    pub(crate) metadata: std::sync::Arc<MetadataStore>,
    pub(crate) streamtype: sstreams_core::policy::StreamType,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) flow: super::FlowTask,
}

/// Why the link went down
enum LinkEnd {
    /// Try again after [`LINK_RETRY`]
    Retry,
    /// The stream is destroyed
    Destroyed,
}

/// Starts the task of a proxied stream and returns its handle
pub(crate) fn spawn_proxied(
    name: &str,
    face: Face,
    addr: ProxyAddr,
    tx_credit: Option<i32>,
    tx_queue_limit: usize,
) -> super::Stream {
    let flow = super::Flow::new(tx_queue_limit);
    use sstreams_core::policy::spec::{PolicySpec, Protocol, StreamTypeSpec};
    // The client does not know the policy: a placeholder streamtype carries the name.
    let spec = PolicySpec {
        streamtypes: vec![StreamTypeSpec {
            protocol: Protocol::Raw,
            ..StreamTypeSpec::named(name)
        }],
        ..PolicySpec::default()
    };
    let streamtype = sstreams_core::Policy::from_spec(spec)
        .ok()
        .and_then(|p| p.streamtype(name).cloned())
        .unwrap_or_else(placeholder);
    let metadata = std::sync::Arc::new(MetadataStore::any_name());
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let task = Proxied {
        name: name.to_owned(),
        // A C client sends 500000000 when it has no manual credit.
        tx_credit: tx_credit.map_or(wire::DEFAULT_TX_CREDIT, |c| c as u32),
        addr,
        face,
        metadata: std::sync::Arc::clone(&metadata),
        streamtype: streamtype.clone(),
        commands,
        flow: super::FlowTask(std::sync::Arc::clone(&flow)),
    };
    let span = tracing::debug_span!("proxied", streamtype = name);
    tokio::spawn(tracing::Instrument::instrument(task.run(), span));
    super::Stream {
        commands: commands_tx,
        streamtype,
        metadata,
        proxied: true,
        flow,
    }
}

/// A streamtype for names the policy model refuses (the proxy will refuse them too)
fn placeholder() -> sstreams_core::policy::StreamType {
    let spec = sstreams_core::policy::spec::PolicySpec {
        streamtypes: vec![sstreams_core::policy::spec::StreamTypeSpec::named("?")],
        ..Default::default()
    };
    let p = sstreams_core::Policy::from_spec(spec).expect("a fixed, valid streamtype");
    p.streamtype("?").expect("just declared").clone()
}

/// What is pending for the proxy, kept across links
#[derive(Default)]
struct Pending {
    metadata: Vec<(String, Bytes)>,
    /// TXCR_UPDATE deltas to send
    credit: Vec<i32>,
    timeout: Option<u32>,
    length_hint: Option<u32>,
    /// The user asked to connect (ONWARD_CONNECT)
    connect: bool,
    /// The user asked to send: the first TX_PAYLOAD asks the proxy to send (which connects as
    /// a direct `request_tx` does, POLL first); with nothing to send, ONWARD_CONNECT instead
    tx_connect: bool,
    /// The user asked for the onward connection at some time (connect, tx request or send):
    /// a stream recreated on a new link is connected again
    onward: bool,
    user_wants_tx: bool,
    queued: VecDeque<(Bytes, PayloadFlags)>,
    tx_ord: u32,
    /// Commands issued from inside callbacks
    from_callbacks: Vec<Command>,
}

impl Proxied {
    pub(crate) async fn run(mut self) {
        let mut pending = Pending::default();
        let mut created = false;
        let started = Instant::now();
        loop {
            match self.link(&mut pending, &mut created).await {
                LinkEnd::Destroyed => return,
                LinkEnd::Retry => {}
            }
            let ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
            if self
                .deliver_state(State::UPSTREAM_LINK_RETRY, ms, &mut pending)
                .await
                == StateReturn::DestroyMe
            {
                return self.destroy(false, &mut pending).await;
            }
            // Wait a second, still taking commands.
            let until = Instant::now() + LINK_RETRY;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(until) => break,
                    c = self.commands.recv() => match c {
                        None | Some(Command::Destroy) => return self.destroy(false, &mut pending).await,
                        Some(c) => pending.take(c),
                    },
                }
            }
        }
    }

    /// One link, from connect to its end
    async fn link(&mut self, pending: &mut Pending, created: &mut bool) -> LinkEnd {
        let endpoint = self.addr.endpoint();
        let Ok(mut io) = crate::transport::connect(&endpoint, None).await else {
            return LinkEnd::Retry;
        };
        let mut out = BytesMut::new();
        let st = Frame::StreamType(StreamType {
            pid: std::process::id(),
            tx_credit: self.tx_credit,
            name: Bytes::from(self.name.clone()),
        });
        if write_frames(&mut io, &mut out, &[st]).await.is_err() {
            return LinkEnd::Retry;
        }
        let mut decoder = Decoder::client_side();
        let first =
            tokio::time::timeout(CREATE_RESULT_TIMEOUT, read_frame(&mut io, &mut decoder)).await;
        match first {
            Ok(Ok(Some(Frame::CreateResult(r)))) if r.is_ok() => {}
            _ => return LinkEnd::Retry,
        }
        if *created {
            // The stream was recreated on the proxy: connect it again if it was asked to
            // connect before, as C does (ONWARD_CONNECT on every new link) and as a direct
            // stream reconnects. Tx or a length hint pending connect it anyway.
            if pending.onward && !pending.tx_connect && pending.length_hint.is_none() {
                pending.connect = true;
            }
        } else {
            *created = true;
            if self.deliver_state(State::CREATING, 0, pending).await == StateReturn::DestroyMe {
                return self.end(false, pending).await;
            }
        }
        let mut swallow_creating = true;
        let mut connected = false;
        loop {
            self.apply_from_callbacks(pending);
            if self.flush(&mut io, &mut out, pending).await.is_err() {
                return self.link_lost(connected, pending).await;
            }
            // Frames already read come first.
            let frame = match decoder.poll_frame() {
                Ok(Some(f)) => Some(f),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!("{}: malformed frame from the proxy: {e}", self.name);
                    return self.link_lost(connected, pending).await;
                }
            };
            if let Some(frame) = frame {
                let ret = match frame {
                    Frame::ConnState(ConnState { state, ack }) => {
                        if swallow_creating && state == State::CREATING {
                            swallow_creating = false;
                            continue;
                        }
                        swallow_creating = false;
                        connected = match state {
                            State::CONNECTED => true,
                            State::DISCONNECTED => false,
                            _ => connected,
                        };
                        self.deliver_state(state, ack, pending).await
                    }
                    Frame::RxPayload(p) => self.deliver_rx(p.data, p.flags, pending).await,
                    Frame::RxMetadata(m) => {
                        let name = String::from_utf8_lossy(&m.name).into_owned();
                        self.face.metadata(&[(name.clone(), m.value.clone())]).await;
                        self.metadata
                            .capture(&self.streamtype, vec![(name, m.value)]);
                        StateReturn::Ok
                    }
                    Frame::RxCreditUpdate(delta) => {
                        self.flow.add_tx_credit(delta);
                        StateReturn::Ok
                    }
                    // Performance JSON is advisory.
                    _ => StateReturn::Ok,
                };
                match ret {
                    StateReturn::DestroyMe => return self.end(connected, pending).await,
                    StateReturn::DisconnectMe => return self.link_lost(connected, pending).await,
                    _ => continue,
                }
            }
            decoder.buffer_mut().reserve(READ_SIZE);
            tokio::select! {
                n = io.read_buf(decoder.buffer_mut()) => match n {
                    Ok(n) if n > 0 => {}
                    _ => return self.link_lost(connected, pending).await,
                },
                c = self.commands.recv() => match c {
                    None | Some(Command::Destroy) => return self.end(connected, pending).await,
                    Some(c) => pending.take(c),
                },
            }
        }
    }

    /// Sends what is pending: metadata, timeout, length hint, connect, then payload
    async fn flush(
        &mut self,
        io: &mut Transport,
        out: &mut BytesMut,
        p: &mut Pending,
    ) -> Result<(), FrameIoError> {
        let mut frames = Vec::new();
        for (name, value) in p.metadata.drain(..) {
            frames.push(Frame::TxMetadata(Metadata {
                name: Bytes::from(name),
                value,
            }));
        }
        frames.extend(p.credit.drain(..).map(Frame::TxCreditUpdate));
        if let Some(t) = p.timeout.take() {
            frames.push(Frame::TimeoutUpdate(t));
        }
        let hinted = p
            .length_hint
            .take()
            .map(|n| frames.push(Frame::PayloadLengthHint(n)))
            .is_some();
        let mut sent_tx = false;
        while p.user_wants_tx {
            match self.produce_tx(p) {
                Some(chunk) => {
                    frames.push(Frame::TxPayload(chunk));
                    sent_tx = true;
                }
                None => break,
            }
        }
        let tx_connect = std::mem::take(&mut p.tx_connect) && !sent_tx && !hinted;
        if std::mem::take(&mut p.connect) || tx_connect {
            frames.push(Frame::OnwardConnect);
        }
        if frames.is_empty() {
            return Ok(());
        }
        write_frames(io, out, &frames).await
    }

    /// One tx chunk from the user, if it gives one
    fn produce_tx(&mut self, p: &mut Pending) -> Option<Payload> {
        let (data, flags) = match &mut self.face {
            Face::Handler(h) => {
                let mut buf = BytesMut::new();
                let mut flags = PayloadFlags::empty();
                let mut cx = StreamCx {
                    streamtype: &self.streamtype,
                    metadata: &self.metadata,
                    commands: &mut p.from_callbacks,
                };
                let ret = h.tx(&mut cx, p.tx_ord, &mut buf, &mut flags);
                p.tx_ord = p.tx_ord.wrapping_add(1);
                if ret == StateReturn::TxDontSend {
                    p.user_wants_tx = false;
                    return None;
                }
                // Without EOM more of the message follows (http bodies): ask again.
                p.user_wants_tx = !flags.contains(PayloadFlags::EOM);
                (buf.freeze(), flags)
            }
            Face::Channel { .. } => match p.queued.pop_front() {
                Some(x) => {
                    self.flow.taken(x.0.len());
                    p.user_wants_tx = !p.queued.is_empty();
                    x
                }
                None => {
                    p.user_wants_tx = false;
                    return None;
                }
            },
        };
        let mut payload = Payload::new(flags, data);
        payload.timestamp_us = crate::clock::monotonic_us();
        Some(payload)
    }

    fn apply_from_callbacks(&mut self, p: &mut Pending) {
        for c in std::mem::take(&mut p.from_callbacks) {
            p.take(c);
        }
    }

    async fn link_lost(&mut self, connected: bool, p: &mut Pending) -> LinkEnd {
        if connected
            && self.deliver_state(State::DISCONNECTED, 0, p).await == StateReturn::DestroyMe
        {
            return self.end(false, p).await;
        }
        LinkEnd::Retry
    }

    async fn end(&mut self, connected: bool, p: &mut Pending) -> LinkEnd {
        self.destroy(connected, p).await;
        LinkEnd::Destroyed
    }

    /// `DISCONNECTED` (if connected) and `DESTROYING`; the link closes when dropped
    async fn destroy(&mut self, connected: bool, p: &mut Pending) {
        if connected {
            self.deliver_state(State::DISCONNECTED, 0, p).await;
        }
        self.deliver_state(State::DESTROYING, 0, p).await;
        if let Face::Channel { events, .. } = &mut self.face {
            // Close the events: nothing follows DESTROYING.
            let (closed, _) = mpsc::channel(1);
            *events = closed;
        }
    }

    async fn deliver_state(&mut self, state: State, ack: u32, p: &mut Pending) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut p.from_callbacks,
        };
        self.face.state(d, state, ack).await
    }

    async fn deliver_rx(
        &mut self,
        data: Bytes,
        flags: PayloadFlags,
        p: &mut Pending,
    ) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut p.from_callbacks,
        };
        self.face.rx(d, data, flags).await
    }
}

impl Pending {
    fn take(&mut self, c: Command) {
        match c {
            Command::RequestTx(len) => {
                if let Some(n) = len {
                    // The hint also asks the proxy to send, which connects.
                    self.length_hint = Some(u32::try_from(n).unwrap_or(u32::MAX));
                }
                self.tx_connect = true;
                self.onward = true;
                self.user_wants_tx = true;
            }
            Command::Connect => {
                self.connect = true;
                self.onward = true;
            }
            Command::StartTimeout(None) => self.timeout = Some(0),
            Command::StartTimeout(Some(d)) => {
                let ms = u32::try_from(d.as_millis())
                    .unwrap_or(u32::MAX - 1)
                    .clamp(1, u32::MAX - 1);
                self.timeout = Some(ms);
            }
            Command::CancelTimeout => self.timeout = Some(u32::MAX),
            Command::Send(data, flags) => {
                self.queued.push_back((data, flags));
                self.tx_connect = true;
                self.onward = true;
                self.user_wants_tx = true;
            }
            Command::Metadata(name, value) => self.metadata.push((name, value)),
            Command::AddPeerTxCredit(d) => self.credit.push(d),
            Command::Destroy => {}
        }
    }
}

//! The task of a proxied stream: the same user side, with the lifecycle run by an SS proxy
//!
//! The stream opens a link (one per stream) to the proxy, creates the onward stream there
//! with STREAMTYPE and relays everything over the C wire format (spec `wire-protocol.md`).
//! All the link logic is the sans-IO [`ClientLink`] of `sstreams-core`; this task only does
//! the I/O around it: connect, read into the [`Decoder`], write frames, run its timer, call
//! the user. What that gives the user:
//!
//! * link: connect (given up after [`CREATE_RESULT_TIMEOUT`] too), STREAMTYPE, CREATE_RESULT
//!   within [`CREATE_RESULT_TIMEOUT`]; on any
//!   failure (refused, closed, create failed, a frame the client does not accept) retry every
//!   [`LINK_RETRY`], forever, telling the user `UPSTREAM_LINK_RETRY` with `ack` = ms spent
//!   trying (C behaviour);
//! * the user gets `CREATING` once the first CREATE_RESULT arrives (the proxied `CREATING` is
//!   swallowed), then every proxied state; a link lost after `CONNECTED` gives a local
//!   `DISCONNECTED` first. A state C does not know (18 to 999) or an illegal transition
//!   destroys the stream;
//! * user commands become frames: metadata (METADATA), credit (TXCR_UPDATE), timeouts
//!   (TIMEOUT_UPDATE), length hints (PAYLOAD_LENGTH_HINT), connect and tx requests
//!   (ONWARD_CONNECT), payload (TX_PAYLOAD). Commands given while the link is down are kept
//!   and sent once it is up again; a stream the user had asked to connect is connected again
//!   on a new link (C sends ONWARD_CONNECT on every new link);
//! * credit granted by the proxy (TXCR_UPDATE) shows in [`Stream::tx_credit`]; PERF JSON is
//!   delivered as rx with flags `SOM|EOM|PERF_JSON`.
//!
//! Tx is sent as soon as the link is up and the user asked to send (the proxy holds it until
//! the onward stream can take it), so an http POST body does not wait for `CONNECTED`.
//!
//! [`Stream::tx_credit`]: super::Stream::tx_credit

use bytes::{Bytes, BytesMut};
use sstreams_core::stream::{PayloadFlags, State, StateReturn};
use sstreams_core::wire::{
    self, ClientEvent, ClientLink, ClientLinkConfig, ClientLinkState, Decoder, Frame,
    PERF_RX_FLAGS, Payload, Transmit,
};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Command, Deliver, Face, MetadataStore};
use crate::proxy::frame_io::{READ_SIZE, write_frames};
use crate::proxy::listen::ProxyAddr;
use crate::transport::Transport;

pub use sstreams_core::wire::{CREATE_RESULT_TIMEOUT, LINK_RETRY};

pub(crate) struct Proxied {
    pub(crate) addr: ProxyAddr,
    pub(crate) face: Face,
    pub(crate) metadata: std::sync::Arc<MetadataStore>,
    pub(crate) streamtype: sstreams_core::policy::StreamType,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) flow: super::FlowTask,
    link: ClientLink,
    tx_ord: u32,
    /// Commands issued from inside callbacks
    from_callbacks: Vec<Command>,
}

/// The transport of the current link and its decoder
struct Io {
    transport: Transport,
    decoder: Decoder,
    /// Encoded frames of one write
    out: BytesMut,
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
    let config = ClientLinkConfig {
        streamtype: Bytes::copy_from_slice(name.as_bytes()),
        pid: std::process::id(),
        // A C client sends 500000000 when it has no manual credit.
        tx_credit: tx_credit.map_or(wire::DEFAULT_TX_CREDIT, |c| c as u32),
    };
    let task = Proxied {
        addr,
        face,
        metadata: std::sync::Arc::clone(&metadata),
        streamtype: streamtype.clone(),
        commands,
        flow: super::FlowTask(std::sync::Arc::clone(&flow)),
        link: ClientLink::new(config, Instant::now().into_std()),
        tx_ord: 0,
        from_callbacks: Vec::new(),
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

/// The link's clock reading of now (tokio's clock, so paused time works)
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl Proxied {
    pub(crate) async fn run(mut self) {
        let mut io: Option<Io> = None;
        loop {
            self.deliver_events().await;
            let state = self.link.state();
            if !state.is_link_up() {
                // Closes the transport of a link the machine gave up.
                io = None;
            }
            match state {
                ClientLinkState::Destroyed => return self.close_events(),
                ClientLinkState::Connecting => {
                    // A TCP connect that hangs counts as failed after the time the proxy
                    // would have had to answer STREAMTYPE.
                    let endpoint = self.addr.endpoint();
                    let connect = crate::transport::connect(&endpoint, None);
                    match tokio::time::timeout(CREATE_RESULT_TIMEOUT, connect).await {
                        Ok(Ok(transport)) => {
                            io = Some(Io {
                                transport,
                                decoder: Decoder::client_side(),
                                out: BytesMut::new(),
                            });
                            self.link.handle_connected(now());
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("link to the proxy: {e}");
                            self.link.handle_connect_failed(now());
                        }
                        Err(_) => {
                            tracing::debug!("link to the proxy: connect timed out");
                            self.link.handle_connect_failed(now());
                        }
                    }
                }
                ClientLinkState::Waiting => self.wait().await,
                _ => match &mut io {
                    Some(io) => self.serve(io).await,
                    // The machine only goes up through handle_connected, which sets `io`.
                    None => self.link.handle_link_closed(now()),
                },
            }
        }
    }

    /// No link: take commands until the next attempt is due
    async fn wait(&mut self) {
        let until = self.link.poll_timeout().map(Instant::from_std);
        tokio::select! {
            () = sleep_until(until) => self.link.handle_timeout(now()),
            c = self.commands.recv() => self.command(c),
        }
    }

    /// One step of a link that is up: write what is due, then handle one frame, command or
    /// timeout
    async fn serve(&mut self, io: &mut Io) {
        let frames = self.transmit();
        if !frames.is_empty() {
            if let Err(e) = write_frames(&mut io.transport, &mut io.out, &frames).await {
                tracing::debug!("link to the proxy: {e}");
                return self.link.handle_link_closed(now());
            }
        }
        if !self.link.state().is_link_up() {
            return;
        }
        // Frames already read come first.
        match io.decoder.poll_frame() {
            Ok(Some(frame)) => return self.frame(frame),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("malformed frame from the proxy: {e}");
                return self.link.handle_link_closed(now());
            }
        }
        io.decoder.buffer_mut().reserve(READ_SIZE);
        let until = self.link.poll_timeout().map(Instant::from_std);
        tokio::select! {
            n = io.transport.read_buf(io.decoder.buffer_mut()) => {
                if !matches!(n, Ok(n) if n > 0) {
                    self.link.handle_link_closed(now());
                }
            }
            c = self.commands.recv() => self.command(c),
            () = sleep_until(until) => self.link.handle_timeout(now()),
        }
    }

    fn frame(&mut self, frame: Frame) {
        if let Err(e) = self.link.handle_frame(now(), frame) {
            tracing::warn!("frame from the proxy refused: {e}");
        }
    }

    /// The frames due on the link, asking the user for payload when the link says so
    fn transmit(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            self.apply_from_callbacks();
            match self.link.poll_transmit() {
                Some(Transmit::Frame(f)) => frames.push(f),
                Some(Transmit::Tx) => {
                    let (payload, more) = self.produce_tx();
                    self.link.handle_tx(payload, more);
                }
                Some(_) => {}
                None => return frames,
            }
        }
    }

    /// One tx chunk from the user, if it gives one, and whether it wants to be asked again
    fn produce_tx(&mut self) -> (Option<Payload>, bool) {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.from_callbacks,
        };
        // As C: what the handler produced goes even if it also asked to disconnect.
        let (Some((data, flags)), _) = self.face.produce_tx(d, &mut self.tx_ord, &self.flow) else {
            return (None, false);
        };
        let more = match self.face {
            // Without EOM more of the message follows (http bodies): ask again.
            Face::Handler(_) => !flags.contains(PayloadFlags::EOM),
            Face::Channel { .. } => self.face.has_queued(),
        };
        let mut payload = Payload::new(flags, data);
        payload.timestamp_us = crate::clock::monotonic_us();
        (Some(payload), more)
    }

    fn apply_from_callbacks(&mut self) {
        for c in std::mem::take(&mut self.from_callbacks) {
            self.command(Some(c));
        }
    }

    /// A user command; `None` (all handles gone) destroys the stream
    fn command(&mut self, c: Option<Command>) {
        let Some(c) = c else {
            return self.link.destroy();
        };
        match c {
            Command::RequestTx(len) => self
                .link
                .request_tx(len.map(|n| u32::try_from(n).unwrap_or(u32::MAX))),
            Command::Connect => self.link.connect(),
            Command::StartTimeout(t) => self.link.start_timeout(t),
            Command::CancelTimeout => self.link.cancel_timeout(),
            Command::Send(data, flags) => {
                if self.face.queue_send(data, flags, &self.flow) {
                    self.link.request_tx(None);
                }
            }
            Command::Metadata(name, value) => {
                if let Err(e) = self.link.set_metadata(Bytes::from(name), value) {
                    tracing::warn!("metadata not sent to the proxy: {e}");
                }
            }
            Command::AddPeerTxCredit(d) => self.link.add_peer_tx_credit(d),
            Command::Destroy => self.link.destroy(),
        }
    }

    /// Hands the link's events to the user, acting on what the callbacks return
    async fn deliver_events(&mut self) {
        while let Some(event) = self.link.poll_event() {
            let ret = match event {
                ClientEvent::State { state, ack } => self.deliver_state(state, ack).await,
                ClientEvent::Rx(p) => self.deliver_rx(p.data, p.flags).await,
                ClientEvent::Perf(json) => self.deliver_rx(json, PERF_RX_FLAGS).await,
                ClientEvent::Metadata(m) => {
                    let name = String::from_utf8_lossy(&m.name).into_owned();
                    self.face.metadata(&[(name.clone(), m.value.clone())]).await;
                    self.metadata
                        .capture(&self.streamtype, vec![(name, m.value)]);
                    StateReturn::Ok
                }
                ClientEvent::TxCredit(delta) => {
                    self.flow.add_tx_credit(delta);
                    StateReturn::Ok
                }
                ClientEvent::Created {
                    client_buflen,
                    rideshares,
                } => {
                    tracing::debug!(client_buflen, ?rideshares, "created at the proxy");
                    StateReturn::Ok
                }
                _ => StateReturn::Ok,
            };
            self.apply_from_callbacks();
            match ret {
                StateReturn::DestroyMe => self.link.destroy(),
                StateReturn::DisconnectMe => self.link.handle_link_closed(now()),
                _ => {}
            }
        }
    }

    /// Nothing follows `DESTROYING`: close the events of the async face
    fn close_events(&mut self) {
        if let Face::Channel { events, .. } = &mut self.face {
            let (closed, _) = mpsc::channel(1);
            *events = closed;
        }
    }

    async fn deliver_state(&mut self, state: State, ack: u32) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.from_callbacks,
        };
        self.face.state(d, state, ack).await
    }

    async fn deliver_rx(&mut self, data: Bytes, flags: PayloadFlags) -> StateReturn {
        let d = Deliver {
            streamtype: &self.streamtype,
            metadata: &self.metadata,
            commands: &mut self.from_callbacks,
        };
        self.face.rx(d, data, flags).await
    }
}

/// Sleeps until `until`, or forever
async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

//! Secure streams: the application's side
//!
//! A stream is created by streamtype name on a [`Context`](crate::Context) and carries only
//! payload, metadata and advisory states; the policy decides everything else. Two faces over
//! one engine:
//!
//! * **Handler**: implement [`StreamHandler`] (`state`, `rx`, `tx`, returning the C
//!   [`StateReturn`] codes) and create the stream with
//!   [`Context::create_stream`](crate::Context::create_stream). This mirrors the C callbacks,
//!   so C examples port line by line.
//! * **Async**: [`Context::open`](crate::Context::open) gives a [`Stream`] and a
//!   [`StreamEvents`]; [`Stream::send`] queues payload, [`StreamEvents::next`] yields states
//!   and rx.
//!
//! Each stream is driven by one tokio task; callbacks run on it, one at a time, never
//! concurrently with each other.
//!
//! # Cancel safety and drop
//!
//! Dropping the [`Stream`] handle destroys the stream: the connection is closed,
//! `DISCONNECTED` (if connected) and `DESTROYING` are delivered, and payload queued with
//! [`Stream::send`] but not yet taken by the binding is discarded. [`StreamEvents::next`] is
//! cancel-safe: an event is either returned or stays queued.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sstreams_core::policy::StreamType;
use sstreams_core::stream::{PayloadFlags, State};
use tokio::sync::mpsc;

pub(crate) mod driver;
mod flow;
mod metadata;
pub mod proxied;

pub(crate) use driver::spawn;
pub use flow::DEFAULT_TX_QUEUE_LIMIT;
pub(crate) use flow::{Flow, FlowTask};
pub use metadata::MetadataError;
pub(crate) use metadata::MetadataStore;

/// A user's stream callbacks, run on the stream's task
///
/// Every method has a default, so a handler implements only what it uses. From inside a
/// callback, act on the stream through the [`StreamCx`]; to destroy the stream, return
/// [`StateReturn::DestroyMe`].
pub trait StreamHandler: Send + 'static {
    /// A state change (advisory); `ack` is extra information for some states (e.g.
    /// `UNREACHABLE`: 1 when the DNS server was unreachable)
    fn state(&mut self, cx: &mut StreamCx<'_>, state: State, ack: u32) -> StateReturn {
        let _ = (cx, state, ack);
        StateReturn::Ok
    }

    /// Payload from the peer, with the protocol's SOM/EOM placement
    ///
    /// With policy `"perf": true`, also once per connection an rx with `SOM|EOM|PERF_JSON`
    /// holding the connection's performance JSON (see `sstreams_core::stream::perf`): when the
    /// connect fails, when an http response head arrives, or else when the peer or the
    /// protocol ends the connection. It may come in the middle of a message, so handle it
    /// apart from the payload. A connection the stream itself drops (destroy, `DisconnectMe`,
    /// the stream timeout) reports nothing.
    fn rx(&mut self, cx: &mut StreamCx<'_>, data: &[u8], flags: PayloadFlags) -> StateReturn {
        let _ = (cx, data, flags);
        StateReturn::Ok
    }

    /// The binding can send: append payload to `buf` and set `flags` (SOM/EOM); return
    /// [`StateReturn::TxDontSend`] to send nothing. `ord` counts tx calls on this stream.
    fn tx(
        &mut self,
        cx: &mut StreamCx<'_>,
        ord: u32,
        buf: &mut BytesMut,
        flags: &mut PayloadFlags,
    ) -> StateReturn {
        let _ = (cx, ord, buf, flags);
        StateReturn::TxDontSend
    }
}

/// What a callback may do to its own stream (applied when the callback returns)
#[derive(Debug)]
pub struct StreamCx<'a> {
    pub(crate) streamtype: &'a StreamType,
    pub(crate) metadata: &'a MetadataStore,
    pub(crate) commands: &'a mut Vec<Command>,
}

impl StreamCx<'_> {
    /// The stream's streamtype
    pub fn streamtype(&self) -> &StreamType {
        self.streamtype
    }

    /// Asks for a `tx` callback (connecting first if needed)
    pub fn request_tx(&mut self) {
        self.commands.push(Command::RequestTx(None));
    }

    /// As [`request_tx`](Self::request_tx), announcing the total payload length in bytes
    /// (http Content-Length, MQTT publish length)
    pub fn request_tx_len(&mut self, len: u64) {
        self.commands.push(Command::RequestTx(Some(len)));
    }

    /// Connects now, starting a fresh retry cycle
    pub fn connect(&mut self) {
        self.commands.push(Command::Connect);
    }

    /// Sets metadata `name` (declared in the policy, or a header name ending in `:` with
    /// `direct_proto_str`)
    pub fn set_metadata(
        &mut self,
        name: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), MetadataError> {
        self.metadata.set(self.streamtype, name, value.into())
    }

    /// The current value of metadata `name` (set by the user or captured from the peer)
    pub fn metadata(&self, name: &str) -> Option<Bytes> {
        self.metadata.get(self.streamtype, name)
    }

    /// Starts the stream timeout; `None` uses the policy's `timeout_ms`
    pub fn start_timeout(&mut self, timeout: Option<Duration>) {
        self.commands.push(Command::StartTimeout(timeout));
    }

    /// Cancels the stream timeout
    pub fn cancel_timeout(&mut self) {
        self.commands.push(Command::CancelTimeout);
    }

    /// Lets the remote peer send `delta` more bytes (signed; C `lws_ss_add_peer_tx_credit`)
    pub fn add_peer_tx_credit(&mut self, delta: i32) {
        self.commands.push(Command::AddPeerTxCredit(delta));
    }
}

/// Requests from the application to a stream's task
#[derive(Debug)]
pub(crate) enum Command {
    RequestTx(Option<u64>),
    Connect,
    StartTimeout(Option<Duration>),
    CancelTimeout,
    Send(Bytes, PayloadFlags),
    /// Metadata for the proxy (proxied streams only; direct streams share the store)
    Metadata(String, Bytes),
    /// Let the remote peer send this many more bytes
    AddPeerTxCredit(i32),
    Destroy,
}

/// The application's handle on a stream; dropping it destroys the stream
#[derive(Debug)]
pub struct Stream {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) streamtype: StreamType,
    pub(crate) metadata: Arc<MetadataStore>,
    /// The stream runs at an SS proxy: metadata is also sent there
    pub(crate) proxied: bool,
    pub(crate) flow: Arc<Flow>,
}

impl Stream {
    /// The stream's streamtype
    pub fn streamtype(&self) -> &StreamType {
        &self.streamtype
    }

    /// Asks for a `tx` callback (connecting first if needed)
    pub fn request_tx(&self) {
        self.command(Command::RequestTx(None));
    }

    /// As [`request_tx`](Self::request_tx), announcing the total payload length in bytes
    pub fn request_tx_len(&self, len: u64) {
        self.command(Command::RequestTx(Some(len)));
    }

    /// Connects now, starting a fresh retry cycle (C `lws_ss_client_connect`)
    pub fn connect(&self) {
        self.command(Command::Connect);
    }

    /// Queues payload for the async face: it is sent, in order, when the binding can take it
    /// (connecting first if needed). With a handler, payload comes from its `tx` instead.
    ///
    /// Never waits, so the queue is unbounded; [`write`](Self::write) waits for room.
    pub fn send(&self, data: impl Into<Bytes>, flags: PayloadFlags) {
        let data = data.into();
        self.flow.queued(data.len());
        self.command(Command::Send(data, flags));
    }

    /// As [`send`](Self::send), first waiting while the stream has the options'
    /// `tx_queue_limit` bytes (default [`DEFAULT_TX_QUEUE_LIMIT`]) or more queued that its
    /// connection has not taken yet. Cancel-safe: if dropped while waiting, nothing is queued.
    pub async fn write(&self, data: impl Into<Bytes>, flags: PayloadFlags) {
        self.flow.room().await;
        self.send(data, flags);
    }

    /// Payload bytes queued with [`send`](Self::send) that the connection has not taken yet
    pub fn queued_tx(&self) -> usize {
        self.flow.queued_bytes()
    }

    /// Lets the remote peer send `delta` more bytes (signed; C `lws_ss_add_peer_tx_credit`).
    /// Applies to protocols with credit (h2 windows, and across the SS proxy).
    pub fn add_peer_tx_credit(&self, delta: i32) {
        self.flow.add_peer_credit(delta);
        self.command(Command::AddPeerTxCredit(delta));
    }

    /// How many more bytes this stream has let the remote peer send, as far as it knows
    /// (C `lws_ss_get_est_peer_tx_credit`)
    pub fn est_peer_tx_credit(&self) -> i32 {
        self.flow.peer_credit()
    }

    /// Bytes the remote peer has let this stream send (credit reported by the protocol or
    /// the SS proxy; 0 where there is none). Advisory: sending does not wait for it.
    pub fn tx_credit(&self) -> i32 {
        self.flow.tx_credit()
    }

    /// Sets metadata `name`; used from the next connection on
    pub fn set_metadata(&self, name: &str, value: impl Into<Bytes>) -> Result<(), MetadataError> {
        let value = value.into();
        self.metadata.set(&self.streamtype, name, value.clone())?;
        if self.proxied {
            self.command(Command::Metadata(name.to_owned(), value));
        }
        Ok(())
    }

    /// The current value of metadata `name`
    pub fn metadata(&self, name: &str) -> Option<Bytes> {
        self.metadata.get(&self.streamtype, name)
    }

    /// Starts the stream timeout; `None` uses the policy's `timeout_ms`
    pub fn start_timeout(&self, timeout: Option<Duration>) {
        self.command(Command::StartTimeout(timeout));
    }

    /// Cancels the stream timeout
    pub fn cancel_timeout(&self) {
        self.command(Command::CancelTimeout);
    }

    /// Destroys the stream (the same as dropping the handle)
    pub fn destroy(self) {}

    fn command(&self, c: Command) {
        // The task ends only after a Destroy, which only drop sends: it is alive here.
        let _ = self.commands.send(c);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Destroy);
    }
}

/// What the async face of a stream yields
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// A state change and its `ack`
    State(State, u32),
    /// Payload from the peer; or, flagged `SOM|EOM|PERF_JSON`, the performance JSON of a
    /// connection of a `"perf": true` streamtype (see [`StreamHandler::rx`])
    Rx(Bytes, PayloadFlags),
    /// The peer supplied a metadata value (e.g. a response header the policy maps); it is
    /// also readable with [`Stream::metadata`]. Comes before the state or payload it goes with.
    Metadata(String, Bytes),
}

/// The events of a stream opened with [`Context::open`](crate::Context::open)
#[derive(Debug)]
pub struct StreamEvents {
    pub(crate) rx: mpsc::Receiver<StreamEvent>,
}

impl StreamEvents {
    /// The next event; `None` after `DESTROYING` has been delivered (cancel-safe)
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.rx.recv().await
    }
}

/// Events the async face may have queued before the stream waits for the application (and
/// so stops reading its connection)
pub(crate) const ASYNC_EVENT_QUEUE: usize = 16;

/// The user side of a stream's task: a handler, or the channels of the async face
pub(crate) enum Face {
    Handler(Box<dyn StreamHandler>),
    Channel {
        events: mpsc::Sender<StreamEvent>,
        queued: std::collections::VecDeque<(Bytes, PayloadFlags)>,
    },
}

/// What a callback may touch, borrowed from the task that delivers to the face
pub(crate) struct Deliver<'a> {
    pub(crate) streamtype: &'a StreamType,
    pub(crate) metadata: &'a MetadataStore,
    pub(crate) commands: &'a mut Vec<Command>,
}

impl Face {
    /// Delivers a state: the handler's callback, or an event (waiting for room)
    pub(crate) async fn state(&mut self, d: Deliver<'_>, state: State, ack: u32) -> StateReturn {
        match self {
            Self::Handler(h) => {
                let mut cx = StreamCx {
                    streamtype: d.streamtype,
                    metadata: d.metadata,
                    commands: d.commands,
                };
                h.state(&mut cx, state, ack)
            }
            Self::Channel { events, .. } => {
                // A closed receiver just means nobody listens any more.
                let _ = events.send(StreamEvent::State(state, ack)).await;
                StateReturn::Ok
            }
        }
    }

    /// Delivers payload: the handler's callback, or an event (waiting for room)
    pub(crate) async fn rx(
        &mut self,
        d: Deliver<'_>,
        data: Bytes,
        flags: PayloadFlags,
    ) -> StateReturn {
        match self {
            Self::Handler(h) => {
                let mut cx = StreamCx {
                    streamtype: d.streamtype,
                    metadata: d.metadata,
                    commands: d.commands,
                };
                h.rx(&mut cx, &data, flags)
            }
            Self::Channel { events, .. } => {
                let _ = events.send(StreamEvent::Rx(data, flags)).await;
                StateReturn::Ok
            }
        }
    }

    /// Queues payload given to [`Stream::send`]; `false` (and the payload dropped) for a
    /// handler, whose `tx` gives the payload instead
    pub(crate) fn queue_send(&mut self, data: Bytes, flags: PayloadFlags, flow: &Flow) -> bool {
        match self {
            Self::Channel { queued, .. } => {
                queued.push_back((data, flags));
                true
            }
            Self::Handler(_) => {
                flow.taken(data.len());
                tracing::warn!("send() on a stream with a handler: its tx gives the payload");
                false
            }
        }
    }

    /// The user's next payload: the handler's `tx` (`ord` counts its calls; `None` when it
    /// returns `TX_DONT_SEND`), or the async face's next queued chunk (`None` when there is
    /// none); with the handler's return code
    pub(crate) fn produce_tx(
        &mut self,
        d: Deliver<'_>,
        ord: &mut u32,
        flow: &Flow,
    ) -> (Option<(Bytes, PayloadFlags)>, StateReturn) {
        match self {
            Self::Handler(h) => {
                let mut buf = BytesMut::new();
                let mut flags = PayloadFlags::empty();
                let mut cx = StreamCx {
                    streamtype: d.streamtype,
                    metadata: d.metadata,
                    commands: d.commands,
                };
                let ret = h.tx(&mut cx, *ord, &mut buf, &mut flags);
                *ord = ord.wrapping_add(1);
                let chunk = (ret != StateReturn::TxDontSend).then(|| (buf.freeze(), flags));
                (chunk, ret)
            }
            Self::Channel { queued, .. } => match queued.pop_front() {
                Some((data, flags)) => {
                    flow.taken(data.len());
                    (Some((data, flags)), StateReturn::Ok)
                }
                None => (None, StateReturn::TxDontSend),
            },
        }
    }

    /// The async face has payload queued
    pub(crate) fn has_queued(&self) -> bool {
        matches!(self, Self::Channel { queued, .. } if !queued.is_empty())
    }

    /// Captured metadata: an event for the async face (the store is updated by the caller)
    pub(crate) async fn metadata(&mut self, items: &[(String, Bytes)]) {
        if let Self::Channel { events, .. } = self {
            for (name, value) in items {
                let _ = events
                    .send(StreamEvent::Metadata(name.clone(), value.clone()))
                    .await;
            }
        }
    }
}

impl std::fmt::Debug for Face {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Handler(_) => f.write_str("Face::Handler"),
            Self::Channel { queued, .. } => write!(f, "Face::Channel({} queued)", queued.len()),
        }
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No code that can panic runs under these locks.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub use sstreams_core::stream::{PayloadFlags as Flags, State as ConnState, StateReturn};

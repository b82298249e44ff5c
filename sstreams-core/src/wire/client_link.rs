//! The client side of a link as a state machine: links, retries, what to send when, and
//! which proxy frame is acceptable when
//!
//! Spec `wire-protocol.md` §2.4 (timers and retries), §4.1 (states), §4.3 (what the C client
//! accepts), §7.1 (client write priority) and §10 (client hang-up conditions). A
//! [`ClientLink`] lives as long as the proxied stream, across any number of links (transport
//! connections): what the app queued while a link was down is sent on the next one.
//!
//! ```text
//!              handle_connected                   STREAMTYPE written
//!  Connecting ──────────────────► SendingInitialTx ──────────────────► WaitingCreateResult
//!      ▲                                                                       │ CREATE_RESULT
//!      │ LINK_RETRY (1 s)                                                      ▼
//!   Waiting ◄── connect failed; from any link-up state:       ┌──────► LocalConnected
//!               link lost, a refused frame, no CREATE_RESULT  │ DISCONNECTED,    │ CONNECTED
//!               within CREATE_RESULT_TIMEOUT (3 s)            │ UNREACHABLE,     ▼
//!                                                             └─ AUTH_FAILED ─ Operational
//!  Destroyed ◄── from any state: destroy(), a proxied DESTROYING, a bad state
//! ```
//!
//! # Driving it
//!
//! The caller owns the transport and the clock. Every input takes `now`:
//!
//! 1. In [`Connecting`](ClientLinkState::Connecting), open a transport to the proxy, then
//!    call [`handle_connected`](ClientLink::handle_connected) or
//!    [`handle_connect_failed`](ClientLink::handle_connect_failed).
//! 2. While the link is up, write what [`poll_transmit`](ClientLink::poll_transmit) returns
//!    (in order) until it returns `None`. [`Transmit::Tx`] means "the app may produce tx
//!    now": ask it, then report with [`handle_tx`](ClientLink::handle_tx).
//! 3. Feed every decoded frame to [`handle_frame`](ClientLink::handle_frame); a malformed
//!    frame or a closed transport is [`handle_link_closed`](ClientLink::handle_link_closed).
//! 4. Deliver [`poll_event`](ClientLink::poll_event) to the app until it returns `None`.
//! 5. Call [`handle_timeout`](ClientLink::handle_timeout) at
//!    [`poll_timeout`](ClientLink::poll_timeout).
//! 6. Whenever [`state`](ClientLink::state) is [`Waiting`](ClientLinkState::Waiting) or
//!    [`Destroyed`](ClientLinkState::Destroyed), close the transport if one is open.
//!
//! App requests ([`request_tx`](ClientLink::request_tx), [`connect`](ClientLink::connect),
//! [`set_metadata`](ClientLink::set_metadata), …) may come in any state; they are queued.

mod outgoing;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{CreateResult, EncodeError, Frame, FrameType, Metadata, Payload, StreamType};
use crate::stream::{PayloadFlags, State, is_legal};
use outgoing::Outgoing;

/// Wait between link attempts, fixed and forever (C: 1 s, spec §2.4)
pub const LINK_RETRY: Duration = Duration::from_secs(1);

/// How long after its transport connects a link may wait for CREATE_RESULT (C: 3 s)
pub const CREATE_RESULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The rx flags a PERF JSON is delivered with: `SOM|EOM|PERF_JSON` (0x43, spec §5.13)
pub const PERF_RX_FLAGS: PayloadFlags = PayloadFlags::from_bits_retain(
    PayloadFlags::SOM.bits() | PayloadFlags::EOM.bits() | PayloadFlags::PERF_JSON.bits(),
);

/// Longest CREATE_RESULT rideshare list a C client accepts, exclusive, in bytes
const MAX_RIDESHARE_LIST: usize = 128;

/// Most commas a C client accepts in the rideshare list (it keeps 4 offsets)
const MAX_RIDESHARE_COMMAS: usize = 3;

/// Where the client side of the link is (C `LPCSCLI_*`, plus the time between links)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientLinkState {
    /// No link; the next attempt starts at [`ClientLink::poll_timeout`]
    Waiting,
    /// The caller should open a transport now
    Connecting,
    /// Transport up; STREAMTYPE not written yet (C `SENDING_INITIAL_TX`)
    SendingInitialTx,
    /// STREAMTYPE written, waiting for CREATE_RESULT (C `WAITING_CREATE_RESULT`)
    WaitingCreateResult,
    /// The stream exists at the proxy; the onward stream is not connected (C
    /// `LOCAL_CONNECTED`)
    LocalConnected,
    /// The onward stream is connected (C `OPERATIONAL`)
    Operational,
    /// The stream is destroyed; nothing more happens
    Destroyed,
}

impl ClientLinkState {
    /// Whether a transport is open in this state
    pub fn is_link_up(self) -> bool {
        matches!(
            self,
            Self::SendingInitialTx
                | Self::WaitingCreateResult
                | Self::LocalConnected
                | Self::Operational
        )
    }

    /// Whether CREATE_RESULT was received on this link
    fn is_created(self) -> bool {
        matches!(self, Self::LocalConnected | Self::Operational)
    }
}

/// What the client learned from the link, for the app
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The proxy created the stream on a new link (every link, not only the first)
    Created {
        /// Buffer size in bytes the proxy recommends (0 = unset: use 32768)
        client_buflen: u32,
        /// The non-empty names of the rideshare list
        rideshares: Vec<Bytes>,
    },
    /// A state for the app's state callback: proxied, or generated locally (`CREATING` at
    /// the first CREATE_RESULT, `DISCONNECTED` when a connected link is lost,
    /// `UPSTREAM_LINK_RETRY` with `ack` = ms spent trying, `DESTROYING`)
    State {
        /// The state
        state: State,
        /// Its argument
        ack: u32,
    },
    /// Payload for the app's rx
    Rx(Payload),
    /// A metadata value the onward stream received
    Metadata(Metadata),
    /// The remote peer lets the client send this many more bytes (signed delta)
    TxCredit(i32),
    /// Connection-performance JSON (PERF), out of band of payload: C hands it to rx with
    /// flags [`PERF_RX_FLAGS`] (`SOM|EOM|PERF_JSON`, 0x43)
    Perf(Bytes),
}

/// The next thing to write on the link
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Write this frame
    Frame(Frame),
    /// The app may produce payload now: ask it, then call [`ClientLink::handle_tx`]
    Tx,
}

/// A proxy frame the client does not accept (spec §4.3, §10)
///
/// [`destroys_stream`](Self::destroys_stream) tells the two outcomes apart: most close the
/// link (the client retries after [`LINK_RETRY`]); a bad state destroys the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientLinkError {
    /// A frame while no link is up
    #[error("{0:?} without a link")]
    NoLink(FrameType),
    /// A frame of the client's own direction (C accepts 0xAF as 0x58; this does not)
    #[error("{0:?} is a client-to-proxy frame")]
    WrongDirection(FrameType),
    /// CREATE_RESULT when the stream already exists on this link
    #[error("CREATE_RESULT in state {0:?}")]
    UnexpectedCreateResult(ClientLinkState),
    /// CREATE_RESULT reporting failure
    #[error("the proxy could not create the stream (result {0})")]
    CreateFailed(u8),
    /// A rideshare list of 128 bytes or more, or with more than 3 commas
    #[error("bad rideshare list in CREATE_RESULT")]
    BadRideshareList,
    /// CONNSTATE or RX_PAYLOAD before CREATE_RESULT
    #[error("{0:?} before CREATE_RESULT")]
    BeforeCreateResult(FrameType),
    /// A state C does not know on the wire (18 to 999): destroys the stream
    #[error("unknown state {0}")]
    UnknownState(State),
    /// A state the transition table forbids after the last one: destroys the stream
    #[error("illegal state transition {from:?} -> {to}")]
    IllegalTransition {
        /// The last state the app was given (`None`: none yet)
        from: Option<State>,
        /// The state received
        to: State,
    },
}

impl ClientLinkError {
    /// Whether the stream is destroyed (`true`) or only the link closed and retried
    pub fn destroys_stream(&self) -> bool {
        matches!(self, Self::UnknownState(_) | Self::IllegalTransition { .. })
    }
}

/// What the client announces in STREAMTYPE
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLinkConfig {
    /// Streamtype name, 1 to 31 bytes
    pub streamtype: Bytes,
    /// The client's process id (for the proxy's logs; 0 where there is none)
    pub pid: u32,
    /// Initial rx credit offered, in bytes (C default
    /// [`DEFAULT_TX_CREDIT`](super::DEFAULT_TX_CREDIT)); for `_lws_smd`, the SMD class mask
    pub tx_credit: u32,
}

/// The client side of the proxy link of one proxied stream, across all its links
#[derive(Debug)]
pub struct ClientLink {
    config: ClientLinkConfig,
    state: ClientLinkState,
    /// When the stream started trying (the first attempt): `UPSTREAM_LINK_RETRY` ack origin
    started: Instant,
    /// `Waiting`: when to connect again. Up, before CREATE_RESULT: when to give up
    deadline: Option<Instant>,
    /// A CREATE_RESULT was received on some link: `CREATING` was given to the app
    created_once: bool,
    /// The next CONNSTATE may be the proxied `CREATING`, which is swallowed
    swallow_creating: bool,
    /// The last non-transient state given to the app, for the transition check
    last_state: Option<State>,
    out: Outgoing,
    events: VecDeque<ClientEvent>,
}

impl ClientLink {
    /// A stream that wants its first link now
    pub fn new(config: ClientLinkConfig, now: Instant) -> Self {
        Self {
            config,
            state: ClientLinkState::Connecting,
            started: now,
            deadline: None,
            created_once: false,
            swallow_creating: false,
            last_state: None,
            out: Outgoing::default(),
            events: VecDeque::new(),
        }
    }

    /// Where the link is
    pub fn state(&self) -> ClientLinkState {
        self.state
    }

    // Link inputs --------------------------------------------------------------------------

    /// The transport to the proxy is open: STREAMTYPE goes out next, and CREATE_RESULT must
    /// arrive within [`CREATE_RESULT_TIMEOUT`]
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == ClientLinkState::Connecting {
            self.state = ClientLinkState::SendingInitialTx;
            self.deadline = Some(now + CREATE_RESULT_TIMEOUT);
        }
    }

    /// The transport could not be opened: retry after [`LINK_RETRY`]
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if self.state == ClientLinkState::Connecting {
            self.lose_link(now);
        }
    }

    /// The link is gone (closed by the proxy, an I/O error, a malformed frame, or the app
    /// asked to disconnect): retry after [`LINK_RETRY`]
    pub fn handle_link_closed(&mut self, now: Instant) {
        if self.state.is_link_up() {
            self.lose_link(now);
        }
    }

    /// Time passed: give up on a link without CREATE_RESULT, or start the next attempt
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            ClientLinkState::Waiting => {
                self.deadline = None;
                self.state = ClientLinkState::Connecting;
            }
            ClientLinkState::SendingInitialTx | ClientLinkState::WaitingCreateResult => {
                self.lose_link(now);
            }
            _ => self.deadline = None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// A frame from the proxy
    ///
    /// A proxied `DESTROYING` is accepted and ends the stream ([`ClientLinkState::Destroyed`]:
    /// close the transport). On an error the link is already closed (a retry is scheduled) or, if
    /// [`ClientLinkError::destroys_stream`], the stream destroyed; the caller closes its
    /// transport either way.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<(), ClientLinkError> {
        let result = self.accept(frame);
        match &result {
            Err(ClientLinkError::NoLink(_)) | Ok(()) => {}
            Err(e) if e.destroys_stream() => self.destroy(),
            Err(_) => self.lose_link(now),
        }
        result
    }

    // App requests -------------------------------------------------------------------------

    /// The app wants its tx callback (C `lws_ss_request_tx`); with `len`, it announces that
    /// many bytes (PAYLOAD_LENGTH_HINT, C `lws_ss_request_tx_len`). Connects if needed.
    pub fn request_tx(&mut self, len: Option<u32>) {
        self.out.request_tx(len);
    }

    /// The app asks for the onward connection (C `lws_ss_client_connect`)
    pub fn connect(&mut self) {
        self.out.connect();
    }

    /// Starts the onward stream's timeout; `None` uses the policy's `timeout_ms`. Durations
    /// are sent in ms, clamped to 1 ..= `u32::MAX - 1`.
    pub fn start_timeout(&mut self, timeout: Option<Duration>) {
        self.out.start_timeout(timeout);
    }

    /// Cancels the onward stream's timeout
    pub fn cancel_timeout(&mut self) {
        self.out.cancel_timeout();
    }

    /// Queues metadata `name` = `value` for the proxy; a value queued earlier for the same
    /// name and not sent yet is replaced. Refused if no C proxy would accept the frame (a
    /// name of 0 or more than 30 bytes, an empty value).
    pub fn set_metadata(&mut self, name: Bytes, value: Bytes) -> Result<(), EncodeError> {
        self.out.set_metadata(name, value)
    }

    /// Lets the remote peer send `delta` more bytes (TXCR_UPDATE, C
    /// `lws_ss_add_peer_tx_credit`)
    pub fn add_peer_tx_credit(&mut self, delta: i32) {
        self.out.add_credit(delta);
    }

    /// Destroys the stream: the app gets `DISCONNECTED` (if connected) and `DESTROYING`;
    /// events not yet polled are dropped. The caller closes the transport.
    pub fn destroy(&mut self) {
        if self.state == ClientLinkState::Destroyed {
            return;
        }
        self.events.clear();
        if self.state == ClientLinkState::Operational {
            self.push_state(State::DISCONNECTED, 0);
        }
        self.push_state(State::DESTROYING, 0);
        self.state = ClientLinkState::Destroyed;
        self.deadline = None;
    }

    // Outputs ------------------------------------------------------------------------------

    /// The next event for the app
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// The next thing to write on the link, in the priority of spec §7.1; `None` when nothing
    /// is due (or no link is up)
    ///
    /// 1. a pending TIMEOUT_UPDATE (once STREAMTYPE is out: before it, the proxy would
    ///    ignore it and the value would be lost);
    /// 2. STREAMTYPE, then nothing else until CREATE_RESULT;
    /// 3. queued METADATA and TXCR_UPDATE, newest first (as C; since only the latest value
    ///    per metadata name is queued, this order never sends a stale value last);
    /// 4. PAYLOAD_LENGTH_HINT;
    /// 5. ONWARD_CONNECT if the app asked to connect (only in LOCAL_CONNECTED);
    /// 6. payload: [`Transmit::Tx`] while the app wants to send. This comes before
    ///    CONNECTED too (the proxy holds payload until the onward stream takes it, so an
    ///    http body does not wait); the first payload asks the proxy to send, which
    ///    connects, like a direct `request_tx`. If the app asked to send but produced
    ///    nothing, ONWARD_CONNECT instead.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        use ClientLinkState as S;
        match self.state {
            S::SendingInitialTx => {
                self.state = S::WaitingCreateResult;
                let c = &self.config;
                return Some(Transmit::Frame(Frame::StreamType(StreamType {
                    pid: c.pid,
                    tx_credit: c.tx_credit,
                    name: c.streamtype.clone(),
                })));
            }
            S::WaitingCreateResult | S::LocalConnected | S::Operational => {}
            S::Waiting | S::Connecting | S::Destroyed => return None,
        }
        if let Some(t) = self.out.timeout.take() {
            return Some(Transmit::Frame(Frame::TimeoutUpdate(t)));
        }
        if !self.state.is_created() {
            return None;
        }
        if let Some(f) = self.out.pop_item() {
            return Some(Transmit::Frame(f));
        }
        if let Some(n) = self.out.length_hint.take() {
            // The hint asks the proxy to send, which connects.
            self.out.tx_connect = false;
            return Some(Transmit::Frame(Frame::PayloadLengthHint(n)));
        }
        if std::mem::take(&mut self.out.connect) && self.state == S::LocalConnected {
            self.out.tx_connect = false;
            return Some(Transmit::Frame(Frame::OnwardConnect));
        }
        if let Some(p) = self.out.tx_ready.take() {
            self.out.tx_connect = false;
            return Some(Transmit::Frame(Frame::TxPayload(p)));
        }
        if self.out.tx_wanted {
            return Some(Transmit::Tx);
        }
        if std::mem::take(&mut self.out.tx_connect) && self.state == S::LocalConnected {
            return Some(Transmit::Frame(Frame::OnwardConnect));
        }
        None
    }

    /// What the app did when asked for payload ([`Transmit::Tx`]): `payload` is `None` if it
    /// declined (C `TX_DONT_SEND`); `more` if it wants to be asked again
    pub fn handle_tx(&mut self, payload: Option<Payload>, more: bool) {
        self.out.tx_wanted = payload.is_some() && more;
        if payload.is_some() {
            self.out.tx_ready = payload;
        }
    }

    // Internals ----------------------------------------------------------------------------

    fn accept(&mut self, frame: Frame) -> Result<(), ClientLinkError> {
        let ty = frame.frame_type();
        if !self.state.is_link_up() {
            return Err(ClientLinkError::NoLink(ty));
        }
        if frame.direction() == super::Direction::ClientToProxy {
            return Err(ClientLinkError::WrongDirection(ty));
        }
        let created = self.state.is_created();
        match frame {
            Frame::CreateResult(_) if created => {
                Err(ClientLinkError::UnexpectedCreateResult(self.state))
            }
            Frame::CreateResult(r) => self.handle_create_result(r),
            Frame::ConnState(_) | Frame::RxPayload(_) if !created => {
                Err(ClientLinkError::BeforeCreateResult(ty))
            }
            Frame::ConnState(c) => self.handle_state(c.state, c.ack),
            Frame::RxPayload(p) => {
                self.events.push_back(ClientEvent::Rx(p));
                Ok(())
            }
            Frame::RxMetadata(m) => {
                self.events.push_back(ClientEvent::Metadata(m));
                Ok(())
            }
            Frame::RxCreditUpdate(c) => {
                self.events.push_back(ClientEvent::TxCredit(c));
                Ok(())
            }
            Frame::Perf(json) => {
                self.events.push_back(ClientEvent::Perf(json));
                Ok(())
            }
            // Every proxy frame is covered above; a new frame type lands here.
            _ => Err(ClientLinkError::WrongDirection(ty)),
        }
    }

    fn handle_create_result(&mut self, r: CreateResult) -> Result<(), ClientLinkError> {
        if !r.is_ok() {
            return Err(ClientLinkError::CreateFailed(r.result));
        }
        let commas = r.rideshares.iter().filter(|&&b| b == b',').count();
        if r.rideshares.len() >= MAX_RIDESHARE_LIST || commas > MAX_RIDESHARE_COMMAS {
            return Err(ClientLinkError::BadRideshareList);
        }
        self.state = ClientLinkState::LocalConnected;
        self.deadline = None;
        self.swallow_creating = true;
        let rideshares = r
            .rideshares
            .split(|&b| b == b',')
            .filter(|n| !n.is_empty())
            .map(|n| r.rideshares.slice_ref(n))
            .collect();
        self.events.push_back(ClientEvent::Created {
            client_buflen: r.client_buflen,
            rideshares,
        });
        if self.created_once {
            self.out.recreated();
        } else {
            self.created_once = true;
            self.push_state(State::CREATING, 0);
        }
        Ok(())
    }

    fn handle_state(&mut self, state: State, ack: u32) -> Result<(), ClientLinkError> {
        let swallow_creating = std::mem::take(&mut self.swallow_creating);
        if swallow_creating && state == State::CREATING {
            return Ok(());
        }
        // A second CONNECTED while connected is swallowed, as in C.
        if state == State::CONNECTED && self.state == ClientLinkState::Operational {
            return Ok(());
        }
        let v = state.as_u32();
        if (State::UPSTREAM_LINK_RETRY.as_u32()..State::USER_BASE.as_u32()).contains(&v) {
            return Err(ClientLinkError::UnknownState(state));
        }
        if !is_legal(self.last_state, state) {
            return Err(ClientLinkError::IllegalTransition {
                from: self.last_state,
                to: state,
            });
        }
        match state {
            State::DESTROYING => {
                // Nothing follows DESTROYING: the stream ends with the onward one. (The C
                // proxy never forwards it; a proxy that does destroys the client stream.)
                self.push_state(state, ack);
                self.state = ClientLinkState::Destroyed;
                self.deadline = None;
                return Ok(());
            }
            State::CONNECTED => self.state = ClientLinkState::Operational,
            State::DISCONNECTED | State::UNREACHABLE | State::AUTH_FAILED => {
                self.state = ClientLinkState::LocalConnected;
                // The onward request is over (C: back to NONE).
                self.out.connect = false;
            }
            _ => {}
        }
        self.push_state(state, ack);
        Ok(())
    }

    /// The link is gone: `DISCONNECTED` if it was connected, `UPSTREAM_LINK_RETRY`, and the
    /// next attempt after [`LINK_RETRY`]
    fn lose_link(&mut self, now: Instant) {
        if self.state == ClientLinkState::Operational {
            self.push_state(State::DISCONNECTED, 0);
        }
        let ms = now.saturating_duration_since(self.started).as_millis();
        self.push_state(
            State::UPSTREAM_LINK_RETRY,
            u32::try_from(ms).unwrap_or(u32::MAX),
        );
        self.state = ClientLinkState::Waiting;
        self.deadline = Some(now + LINK_RETRY);
        self.swallow_creating = false;
    }

    fn push_state(&mut self, state: State, ack: u32) {
        if !state.is_transient() {
            self.last_state = Some(state);
        }
        self.events.push_back(ClientEvent::State { state, ack });
    }
}

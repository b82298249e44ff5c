//! The lifecycle of one client stream: connect, fail, back off, retry, time out, destroy

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

use super::config::{CloseRule, StreamConfig};
use super::ret::StateReturn;
use super::state::{State, is_legal};
use crate::policy::{RetryState, RetryStep};

/// Something the runtime must do, in order, as returned by [`StreamCore::poll_event`]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Call the user's state callback with `state` and `ack`
    ///
    /// If it returns anything but [`StateReturn::Ok`], pass that to
    /// [`StreamCore::handle_callback_return`] before polling the next event.
    State {
        /// The new state
        state: State,
        /// The callback's `ack` argument: 1 for `UNREACHABLE` caused by an unreachable DNS
        /// server, else 0 for the states the core makes (bindings choose it for theirs)
        ack: u32,
    },
    /// Open the connection now (DNS, connect, TLS, protocol handshake), then report
    /// [`handle_connected`](StreamCore::handle_connected) or
    /// [`handle_connect_failed`](StreamCore::handle_connect_failed), and later
    /// [`handle_disconnected`](StreamCore::handle_disconnected)
    Connect,
    /// Close the connection, or abandon the attempt, and report nothing more about it
    Disconnect,
    /// The user wants to send: have the binding call the tx callback when the connection can
    /// take data (at once if it already can)
    RequestWritable,
    /// The stream is gone; nothing follows
    Destroyed,
}

/// Why a connection attempt failed
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// DNS, connect, TLS or handshake failure (`UNREACHABLE` with `ack` 0)
    #[default]
    Unreachable,
    /// The DNS server itself could not be reached (`UNREACHABLE` with `ack` 1)
    DnsServerUnreachable,
}

/// A state a binding asked to deliver was refused
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The transition table does not allow it after the last state
    #[error("{} -> {to} is not a legal transition", from.map_or("(unset)".to_string(), |s| s.to_string()))]
    Illegal {
        /// The last recorded state
        from: Option<State>,
        /// The refused state
        to: State,
    },
    /// The core makes this state itself; bindings report the event instead
    #[error("{0} is made by the stream core, not reported by bindings")]
    NotABindingState(State),
    /// A QoS verdict needs an established connection that has delivered `CONNECTED`
    #[error("{0} needs a connection that reached CONNECTED")]
    NotConnected(State),
    /// The stream was destroyed
    #[error("the stream is destroyed")]
    Destroyed,
}

/// The sans-IO lifecycle of one client secure stream
///
/// It owns the connection state, the retry counter and timer, the stream timeout and the
/// transition check; the runtime owns the socket, the protocol binding, the clock and the
/// user callbacks. See the [module documentation](super) for the driving loop.
///
/// Every `State` event it produces is legal after the one before it
/// ([`is_legal`]); a state that would not be is not delivered (and asserts in debug builds).
pub struct StreamCore {
    config: StreamConfig,
    link: Link,
    seq: Seq,
    retry: RetryState,
    /// Deadline of the stream timeout (`start_timeout`)
    timeout_at: Option<Instant>,
    /// A QoS verdict was reported on the current connection (C `txn_ok`)
    txn_complete: bool,
    /// What the user will have seen once every queued event is delivered
    queued: Seen,
    /// What the user has seen: the events returned by `poll_event` so far
    delivered: Seen,
    events: VecDeque<Event>,
    destroyed: bool,
    random: Box<dyn FnMut() -> u16 + Send>,
}

/// The connection, as far as the core knows
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// No connection
    None,
    /// `Connect` was issued (or is queued): waiting for connected or failed
    AwaitingConnect,
    /// Connected: waiting for it to close
    AwaitingClose,
}

/// The connection sequence (C `seqstate`)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seq {
    /// Nothing under way: `request_tx` may start a connection
    Idle,
    /// A connection is being made or is up
    Active,
    /// Waiting for the retry timer
    AwaitingRetry { at: Instant },
}

/// States seen by the user (at the head or the tail of the event queue)
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// The last state checked by the table (transient states are not recorded)
    last: Option<State>,
    /// `CONNECTED` was delivered and no `DISCONNECTED` since (C `ss_dangling_connected`)
    connected: bool,
}

impl Seen {
    fn record(&mut self, state: State) {
        if state.is_transient() {
            return;
        }
        self.last = Some(state);
        match state {
            State::CONNECTED => self.connected = true,
            State::DISCONNECTED => self.connected = false,
            _ => {}
        }
    }
}

impl StreamCore {
    /// A new stream: queues `CREATING`, and when the streamtype is `nailed_up` also
    /// `CONNECTING` and [`Event::Connect`]
    ///
    /// `random` supplies the uniformly distributed 16-bit samples for the backoff jitter; it
    /// is called once per failure that backs off.
    pub fn new(config: StreamConfig, random: impl FnMut() -> u16 + Send + 'static) -> Self {
        let mut core = Self {
            config,
            link: Link::None,
            seq: Seq::Idle,
            retry: RetryState::new(),
            timeout_at: None,
            txn_complete: false,
            queued: Seen::default(),
            delivered: Seen::default(),
            events: VecDeque::new(),
            destroyed: false,
            random: Box::new(random),
        };
        core.notify(State::CREATING, 0);
        if core.config.nailed_up {
            core.connect(true);
        }
        core
    }

    /// The user requested tx (C `lws_ss_request_tx`)
    ///
    /// With a connection (being made or up): [`Event::RequestWritable`]. Without one, if
    /// nothing is under way: `POLL` (unless that was the last state) then `CONNECTING` and
    /// [`Event::Connect`]. While a retry is scheduled it does nothing: the retry will come.
    /// The retry counter is **not** reset, so after `ALL_RETRIES_FAILED` this gives exactly
    /// one more attempt.
    pub fn handle_request_tx(&mut self) {
        if self.destroyed {
            return;
        }
        if self.link != Link::None {
            self.events.push_back(Event::RequestWritable);
            return;
        }
        if self.seq == Seq::Idle {
            self.poll_and_connect();
        }
    }

    /// The user asked to connect (C `lws_ss_client_connect`, or a proxied `ONWARD_CONNECT`)
    ///
    /// Resets the retry counter (a fresh cycle) and, unless a connection exists already,
    /// connects at once: `CONNECTING` (no `POLL`) and [`Event::Connect`], cancelling a
    /// scheduled retry.
    pub fn handle_client_connect(&mut self) {
        if self.destroyed {
            return;
        }
        self.retry.reset();
        if self.link == Link::None {
            self.connect(true);
        }
    }

    /// The binding reports the connection up: for http when the response headers arrived, for
    /// the others when the protocol handshake is done
    ///
    /// Resets the retry counter and delivers `CONNECTED`, unless the last state is already
    /// `CONNECTED`, `QOS_ACK_REMOTE` or `QOS_NACK_REMOTE` (a further transaction on the same
    /// connection). After `DISCONNECTED` a `CONNECTING` is put first.
    pub fn handle_connected(&mut self) {
        if self.destroyed || self.link == Link::None {
            return;
        }
        self.link = Link::AwaitingClose;
        self.seq = Seq::Active;
        self.retry.reset();
        let last = self.queued.last;
        if last == Some(State::DISCONNECTED) {
            self.notify(State::CONNECTING, 0);
        }
        if !matches!(
            last,
            Some(State::CONNECTED | State::QOS_ACK_REMOTE | State::QOS_NACK_REMOTE)
        ) {
            self.notify(State::CONNECTED, 0);
        }
    }

    /// The connection attempt failed before [`handle_connected`](Self::handle_connected)
    /// (C `CLIENT_CONNECTION_ERROR`)
    ///
    /// Delivers `UNREACHABLE` (unless the last state is already `UNREACHABLE` or
    /// `ALL_RETRIES_FAILED`), or `DISCONNECTED` if a `CONNECTED` is still outstanding from an
    /// http connection that was being replaced, then takes a backoff step. Reported on a
    /// connection that is up, it is taken as [`handle_disconnected`](Self::handle_disconnected).
    pub fn handle_connect_failed(&mut self, now: Instant, failure: ConnectFailure) {
        match self.link {
            _ if self.destroyed => {}
            Link::None => {}
            Link::AwaitingClose => self.handle_disconnected(now),
            Link::AwaitingConnect => {
                self.link = Link::None;
                self.txn_complete = false;
                let ack = match failure {
                    ConnectFailure::Unreachable => 0,
                    ConnectFailure::DnsServerUnreachable => 1,
                };
                if self.queued.connected {
                    self.notify_disconnected();
                } else if !matches!(
                    self.queued.last,
                    Some(State::UNREACHABLE | State::ALL_RETRIES_FAILED)
                ) {
                    self.notify(State::UNREACHABLE, ack);
                }
                self.backoff(now, Duration::ZERO);
            }
        }
    }

    /// The connection closed (peer, network or protocol)
    ///
    /// Applies the configured [`CloseRule`]: `DISCONNECTED` and/or a reconnect with backoff.
    /// Closing cancels the stream timeout, except when an http transaction is being retried.
    /// It may come before [`handle_connected`](Self::handle_connected) (http: the socket was
    /// up but closed before the response headers): the rule then reports `UNREACHABLE`, or
    /// for a retried http transaction nothing.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if self.destroyed || self.link == Link::None {
            return;
        }
        self.close(now, None);
    }

    /// The server said to come back later (http 503 or 429): back off, by at least
    /// `at_least` (its `Retry-After`; zero if none), and drop the connection
    ///
    /// Queues [`Event::Disconnect`] and applies the close rule, taking a backoff step in any
    /// case (also on an opportunistic stream, or after an earlier transaction on the same
    /// connection completed). This is a concealed failure, not a `QOS_NACK_REMOTE`.
    pub fn handle_retry_later(&mut self, now: Instant, at_least: Duration) {
        if self.destroyed || self.link == Link::None {
            return;
        }
        self.events.push_back(Event::Disconnect);
        self.close(now, Some(at_least));
    }

    /// A binding delivers a state of its own
    ///
    /// Accepted: `QOS_ACK_REMOTE` and `QOS_NACK_REMOTE` on a connection that delivered
    /// `CONNECTED` (they also mark the transaction complete), and transient states at any
    /// time (user states, e.g. from `http_resp_map`, `EVENT_WAIT_CANCELLED`,
    /// `UPSTREAM_LINK_RETRY`). The lifecycle states are made by the core from the
    /// `handle_*` calls; server and sink states do not belong to client streams.
    pub fn handle_binding_state(&mut self, state: State, ack: u32) -> Result<(), TransitionError> {
        if self.destroyed {
            return Err(TransitionError::Destroyed);
        }
        match state {
            State::QOS_ACK_REMOTE | State::QOS_NACK_REMOTE => {
                if self.link != Link::AwaitingClose || !self.queued.connected {
                    return Err(TransitionError::NotConnected(state));
                }
            }
            s if s.is_transient() => {}
            s => return Err(TransitionError::NotABindingState(s)),
        }
        if !is_legal(self.queued.last, state) {
            return Err(TransitionError::Illegal {
                from: self.queued.last,
                to: state,
            });
        }
        if matches!(state, State::QOS_ACK_REMOTE | State::QOS_NACK_REMOTE) {
            self.txn_complete = true;
        }
        self.notify(state, ack);
        Ok(())
    }

    /// Starts (or restarts) the stream timeout (C `lws_ss_start_timeout`)
    ///
    /// `timeout` `None` or zero means the streamtype's `timeout_ms`; if that is not set
    /// either, nothing changes (a running timeout keeps running). When it expires `TIMEOUT`
    /// is delivered, and nothing else happens.
    pub fn start_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        if self.destroyed {
            return;
        }
        if let Some(t) = timeout.filter(|t| !t.is_zero()).or(self.config.timeout) {
            self.timeout_at = Some(now + t);
        }
    }

    /// Stops the stream timeout (C `lws_ss_cancel_timeout`)
    pub fn cancel_timeout(&mut self) {
        self.timeout_at = None;
    }

    /// Time passed: fire whatever is due by `now` (stream timeout, retry timer)
    ///
    /// Call it when [`poll_timeout`](Self::poll_timeout) is reached; calling it early does
    /// nothing. A due retry goes the `request_tx` way: `POLL`, `CONNECTING`,
    /// [`Event::Connect`]. When both are due the earlier fires first; at the same instant the
    /// stream timeout first.
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            if self.destroyed {
                return;
            }
            let retry_at = match self.seq {
                Seq::AwaitingRetry { at } if at <= now => Some(at),
                _ => None,
            };
            let timeout_at = self.timeout_at.filter(|&at| at <= now);
            match (timeout_at, retry_at) {
                (Some(t), Some(r)) if r < t => self.fire_retry(),
                (Some(_), _) => {
                    self.timeout_at = None;
                    self.notify(State::TIMEOUT, 0);
                }
                (None, Some(_)) => self.fire_retry(),
                (None, None) => return,
            }
        }
    }

    /// Applies what a user callback (state, rx or tx) returned
    ///
    /// Call it right after the callback, before polling the next event.
    ///
    /// * [`DestroyMe`](StateReturn::DestroyMe): the events not yet delivered are dropped and
    ///   the stream is destroyed as by [`handle_destroy`](Self::handle_destroy).
    /// * [`DisconnectMe`](StateReturn::DisconnectMe) from the `CONNECTING` callback (the
    ///   attempt has not started: `Connect` is still queued): the attempt is dropped and a
    ///   backoff step taken. During an attempt: [`Event::Disconnect`], then as
    ///   [`handle_connect_failed`](Self::handle_connect_failed). On a connection that is up:
    ///   [`Event::Disconnect`] and the close rule, as if the peer had closed it. From
    ///   `CREATING` or `POLL` it is ignored: the connect they announce goes ahead.
    /// * [`Ok`](StateReturn::Ok), [`TxDontSend`](StateReturn::TxDontSend): nothing.
    pub fn handle_callback_return(&mut self, now: Instant, ret: StateReturn) {
        if self.destroyed {
            return;
        }
        match ret {
            StateReturn::DestroyMe => {
                self.events.clear();
                self.queued = self.delivered;
                self.destroy();
            }
            StateReturn::DisconnectMe => match self.link {
                Link::None => {}
                Link::AwaitingConnect => {
                    if self.events.front() == Some(&Event::Connect) {
                        // from CONNECTING: the attempt never starts (C returns the verdict
                        // from the connect call, and the caller backs off)
                        self.events.pop_front();
                        self.link = Link::None;
                        self.backoff(now, Duration::ZERO);
                    } else if !self.events.contains(&Event::Connect) {
                        // during the attempt: C kills the connection, which fails it
                        self.events.push_back(Event::Disconnect);
                        self.handle_connect_failed(now, ConnectFailure::Unreachable);
                    }
                }
                Link::AwaitingClose => {
                    self.events.push_back(Event::Disconnect);
                    self.close(now, None);
                }
            },
            StateReturn::Ok | StateReturn::TxDontSend => {}
        }
    }

    /// Destroys the stream (C `lws_ss_destroy`), from outside any of its callbacks
    ///
    /// Queues [`Event::Disconnect`] if there is a connection, `DISCONNECTED` if a `CONNECTED`
    /// is outstanding, `DESTROYING`, then [`Event::Destroyed`]. Every later input is ignored.
    pub fn handle_destroy(&mut self) {
        self.destroy();
    }

    /// The next thing for the runtime to do, if any
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::State { state, .. } = event {
            self.delivered.record(state);
        }
        Some(event)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.destroyed {
            return None;
        }
        let retry_at = match self.seq {
            Seq::AwaitingRetry { at } => Some(at),
            _ => None,
        };
        match (self.timeout_at, retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last state delivered by [`poll_event`](Self::poll_event) that the transition
    /// table records (transient states are not)
    pub fn state(&self) -> Option<State> {
        self.delivered.last
    }

    /// Failures counted since the retry counter was last reset
    pub fn tries(&self) -> u16 {
        self.retry.tries()
    }

    /// Whether the stream was destroyed
    pub fn is_destroyed(&self) -> bool {
        self.destroyed
    }

    /// `POLL` unless it was the last state, then connect (C `_lws_ss_request_tx` without a
    /// connection)
    fn poll_and_connect(&mut self) {
        if self.queued.last != Some(State::POLL) {
            self.notify(State::POLL, 0);
        }
        self.connect(false);
    }

    /// C `_lws_ss_client_connect`: `CONNECTING`, then dial
    fn connect(&mut self, reset_retry: bool) {
        if reset_retry {
            self.retry.reset();
        }
        self.txn_complete = false;
        self.link = Link::AwaitingConnect;
        self.seq = Seq::Active;
        self.notify(State::CONNECTING, 0);
        self.events.push_back(Event::Connect);
    }

    /// The retry timer fired (C `lws_ss_timeout_sul_check_cb`)
    fn fire_retry(&mut self) {
        self.seq = Seq::Idle;
        self.handle_request_tx();
    }

    /// The connection is gone: apply the close rule
    ///
    /// `retry_after` is set when the server asked to come back later: then a backoff step is
    /// taken whatever the rule says, waiting at least that long (C backs off before closing).
    fn close(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.link = Link::None;
        let complete = std::mem::take(&mut self.txn_complete);
        let at_least = retry_after.unwrap_or_default();
        match self.config.close_rule {
            CloseRule::Http if !self.config.opportunistic && !complete => {
                // retried without a word; DISCONNECTED comes if the retry fails or we give up
                self.backoff(now, at_least);
                if self.seq == Seq::Idle {
                    self.timeout_at = None;
                }
            }
            CloseRule::Http => {
                self.settle();
                self.timeout_at = None;
                if self.queued.connected {
                    self.notify_disconnected();
                    if retry_after.is_some() {
                        self.backoff(now, at_least);
                    }
                } else if !complete {
                    self.notify(State::UNREACHABLE, 0);
                    self.backoff(now, at_least);
                }
            }
            CloseRule::Stream => {
                self.timeout_at = None;
                if self.queued.connected {
                    self.notify_disconnected();
                } else {
                    self.notify(State::UNREACHABLE, 0);
                }
                self.settle();
                if !self.config.opportunistic || retry_after.is_some() {
                    self.backoff(now, at_least);
                }
            }
        }
    }

    /// Nothing is under way any more (a scheduled retry stays scheduled)
    fn settle(&mut self) {
        if self.seq == Seq::Active {
            self.seq = Seq::Idle;
        }
    }

    /// One backoff step after a failure (C `_lws_ss_backoff`)
    ///
    /// With a retry already scheduled, nothing. Otherwise the retry policy decides: retry
    /// after the delay (at least `at_least`), or give up: go idle and deliver
    /// `ALL_RETRIES_FAILED`, once (nothing if already idle).
    fn backoff(&mut self, now: Instant, at_least: Duration) {
        if matches!(self.seq, Seq::AwaitingRetry { .. }) {
            return;
        }
        let sample = (self.random)();
        match self
            .retry
            .handle_failure(self.config.retry.as_deref(), sample)
        {
            RetryStep::RetryAfter(delay) => {
                self.seq = Seq::AwaitingRetry {
                    at: now + delay.max(at_least),
                };
            }
            RetryStep::GiveUp(_) => {
                if self.seq == Seq::Idle {
                    return;
                }
                self.seq = Seq::Idle;
                // an http connection replaced silently: close the books on its CONNECTED
                if self.queued.connected {
                    self.notify(State::DISCONNECTED, 0);
                }
                // the table has no ALL_RETRIES_FAILED after DISCONNECTED, CONNECTED or
                // TIMEOUT (C asserts there); the stream is idle all the same
                if is_legal(self.queued.last, State::ALL_RETRIES_FAILED) {
                    self.notify(State::ALL_RETRIES_FAILED, 0);
                }
            }
        }
    }

    /// `DISCONNECTED`, which also ends an active sequence (C `lws_ss_event_helper`)
    fn notify_disconnected(&mut self) {
        self.notify(State::DISCONNECTED, 0);
        self.settle();
    }

    /// C `lws_ss_destroy`
    fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        self.timeout_at = None;
        self.seq = Seq::Idle;
        if self.link != Link::None {
            self.link = Link::None;
            self.events.push_back(Event::Disconnect);
        }
        if self.queued.last.is_some() {
            if self.queued.connected && is_legal(self.queued.last, State::DISCONNECTED) {
                self.notify(State::DISCONNECTED, 0);
            }
            self.notify(State::DESTROYING, 0);
        }
        self.events.push_back(Event::Destroyed);
    }

    /// Queues `state` for the user after checking it against the table
    fn notify(&mut self, state: State, ack: u32) {
        let legal = is_legal(self.queued.last, state);
        debug_assert!(
            legal,
            "illegal transition {:?} -> {state:?}",
            self.queued.last
        );
        if !legal {
            tracing::error!(from = ?self.queued.last, to = ?state, "illegal transition dropped");
            return;
        }
        self.queued.record(state);
        self.events.push_back(Event::State { state, ack });
    }
}

impl fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCore")
            .field("config", &self.config)
            .field("link", &self.link)
            .field("seq", &self.seq)
            .field("retry", &self.retry)
            .field("timeout_at", &self.timeout_at)
            .field("txn_complete", &self.txn_complete)
            .field("state", &self.delivered.last)
            .field("queued_events", &self.events.len())
            .field("destroyed", &self.destroyed)
            .finish_non_exhaustive()
    }
}

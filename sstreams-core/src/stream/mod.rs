//! The lifecycle of a client secure stream, without I/O
//!
//! A secure stream outlives its connections: it connects when asked (or at once when
//! `nailed_up`), loses the connection, backs off and retries as its policy says, reports each
//! step to the user as a [`State`], and ends with `DESTROYING`. [`StreamCore`] holds that
//! lifecycle for one stream, independent of the protocol, in the style of `quinn-proto`:
//! inputs are `handle_*` calls that take the current time where it matters, outputs are
//! [`Event`]s from [`StreamCore::poll_event`] and a deadline from
//! [`StreamCore::poll_timeout`]. It reads no clock, does no I/O and draws no random numbers
//! (the backoff jitter comes from a closure the runtime supplies).
//!
//! Alongside: the [`State`] values and the C transition table ([`is_legal`]), the
//! [`PayloadFlags`] of rx/tx chunks, the [`StateReturn`] codes of user callbacks, and the
//! connection performance record of `"perf": true` streamtypes ([`perf::ConnPerf`]).
//!
//! # Driving a stream
//!
//! The runtime (crate `sstreams`) owns the socket, the protocol binding, the timer and the
//! user's callbacks. Per stream it runs a loop like this:
//!
//! 1. Create the core with [`StreamCore::new`] from [`StreamConfig::from_streamtype`].
//! 2. **Drain the events** after every input, in order, with [`StreamCore::poll_event`]:
//!    * [`Event::State`]: call the user's state callback. If it returns
//!      [`StateReturn::DisconnectMe`] or [`StateReturn::DestroyMe`], pass that to
//!      [`StreamCore::handle_callback_return`] *before polling the next event* (the verdict
//!      can cancel what the state announced, e.g. a `Connect` after `CONNECTING`). Do the
//!      same with what rx and tx callbacks return.
//!    * [`Event::Connect`]: start a connection (DNS, connect, TLS, handshake).
//!    * [`Event::Disconnect`]: drop the connection or the attempt at once, and discard any
//!      report still in flight from it: the core has already applied the consequences.
//!    * [`Event::RequestWritable`]: have the binding call the user's tx when it can send.
//!    * [`Event::Destroyed`]: free everything; the core ignores all further input.
//! 3. **Wait** for the earliest of: the deadline from [`StreamCore::poll_timeout`] (then call
//!    [`StreamCore::handle_timeout`]), a connection report, or a user command.
//! 4. **Report** what happened:
//!    * connection made (http: response headers in; others: handshake done) →
//!      [`StreamCore::handle_connected`];
//!    * attempt failed → [`StreamCore::handle_connect_failed`];
//!    * connection closed → [`StreamCore::handle_disconnected`];
//!    * http 503/429 → [`StreamCore::handle_retry_later`] with its `Retry-After`;
//!    * QoS verdicts and user states (`http_resp_map`) → [`StreamCore::handle_binding_state`];
//!    * user commands → [`StreamCore::handle_request_tx`],
//!      [`StreamCore::handle_client_connect`], [`StreamCore::start_timeout`],
//!      [`StreamCore::cancel_timeout`], [`StreamCore::handle_destroy`].
//!
//! Then back to 2. In code, with virtual time:
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! use sstreams_core::stream::{ConnectFailure, Event, State, StreamConfig, StreamCore};
//!
//! let mut config = StreamConfig::default();
//! config.nailed_up(true);
//! let mut core = StreamCore::new(config, || 0x8000);
//! let start = Instant::now();
//!
//! fn drain(core: &mut StreamCore, states: &mut Vec<State>) {
//!     while let Some(event) = core.poll_event() {
//!         match event {
//!             Event::State { state, .. } => states.push(state), // user callback here
//!             Event::Connect => {}                              // open a socket here
//!             _ => {}
//!         }
//!     }
//! }
//! let mut states = Vec::new();
//! drain(&mut core, &mut states);
//! // the connection is refused; without a retry policy that is final
//! core.handle_connect_failed(start, ConnectFailure::Unreachable);
//! drain(&mut core, &mut states);
//! assert_eq!(
//!     states,
//!     [State::CREATING, State::CONNECTING, State::UNREACHABLE, State::ALL_RETRIES_FAILED]
//! );
//! assert_eq!(core.poll_timeout(), None);
//!
//! // the user arms the stream timeout; the runtime sleeps until the deadline
//! core.start_timeout(start, Some(Duration::from_millis(250)));
//! let deadline = core.poll_timeout().unwrap();
//! assert_eq!(deadline, start + Duration::from_millis(250));
//! core.handle_timeout(deadline);
//! drain(&mut core, &mut states);
//! assert_eq!(states.last(), Some(&State::TIMEOUT));
//! ```
//!
//! # Where this differs from C
//!
//! The sequences are the C library's (`lib/secure-streams/secure-streams.c`, the
//! `protocols/ss-*.c` bindings), except where C would assert, stall or misbehave:
//!
//! * `ALL_RETRIES_FAILED` is not delivered where the table forbids it (after `CONNECTED`,
//!   `DISCONNECTED` or `TIMEOUT`); C asserts in debug builds and destroys the stream in
//!   release builds. An http connection that was being replaced silently gets its
//!   `DISCONNECTED` when the retries run out (C leaves the stream "connected" for good).
//! * [`StateReturn::DisconnectMe`] from `POLL` is ignored (C leaves the stream stuck until
//!   it is destroyed).
//! * A `Retry-After` (http 503/429) is honoured on opportunistic streams too, and after an
//!   earlier transaction on the same connection completed (C loses it in both cases).
//! * Destroy leaves out a `DISCONNECTED` the table would refuse (C asserts).
//! * [`StreamCore::handle_client_connect`] while a connection exists only resets the retry
//!   counter (C would open a second connection and lose track of the first).
//! * There is no separate "transaction complete" input: an http transaction is complete once
//!   its `QOS_ACK_REMOTE`/`QOS_NACK_REMOTE` is reported, which is where C sets `txn_ok`.

mod config;
mod core;
mod flags;
pub mod perf;
mod ret;
pub mod state;
#[cfg(test)]
mod tests;

pub use self::core::{ConnectFailure, Event, StreamCore, TransitionError};
pub use config::{CloseRule, StreamConfig};
pub use flags::PayloadFlags;
pub use ret::{StateReturn, UnknownReturnCode};
pub use state::{State, is_legal};

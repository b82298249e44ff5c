//! Secure Streams for Rust
//!
//! Application code sends and receives payload and hears advisory states; where it connects,
//! over which protocol, with which trust chain, retry and headers all live in a JSON
//! [`Policy`]. This crate is the tokio runtime and public API; the sans-IO core is
//! `sstreams-core`.
//!
//! ```no_run
//! use sstreams::stream::{ConnState, Flags};
//! use sstreams::{Context, StreamEvent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let cx = Context::builder().policy_json("policy.json").build()?;
//! let (stream, mut events) = cx.open("mintest")?;
//! stream.set_metadata("uptag", "demo")?;
//! stream.request_tx();
//! while let Some(event) = events.next().await {
//!     match event {
//!         StreamEvent::Rx(data, flags) => print!("{}", String::from_utf8_lossy(&data)),
//!         StreamEvent::State(ConnState::QOS_ACK_REMOTE, _) => break,
//!         StreamEvent::State(state, _) => eprintln!("{state}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! * [`Context`]: the policy, TLS configurations, the SMD bus and the system states; streams
//!   are created from it by streamtype name, with a [`StreamHandler`] (the C callbacks) or
//!   the async face ([`Context::open`]).
//! * [`stream`]: the stream handle, handler trait and events; each stream runs on one task
//!   driving the sans-IO lifecycle of `sstreams_core::stream`.
//! * [`bind`]: the protocol bindings (h1, raw, and `_lws_smd` on the bus).
//! * [`transport`] and [`tls`]: DNS, TCP and Unix sockets, rustls from policy trust stores.
//! * [`smd`]: the System Message Distribution bus (class-filtered, bounded, ordered, with
//!   monotonic microsecond timestamps), its async subscriptions and the [`smd::SsBridge`]
//!   that turns bus messages into `_lws_smd` stream payloads and back;
//! * [`system_state`]: the lws_system state sequence, with holds, announced on the bus.
//!
//! # Cancel safety
//!
//! [`StreamEvents::next`], [`smd::Subscription::recv`] and [`smd::SsBridge::recv_payload`]
//! are cancel safe: dropping the future loses no event. Dropping a [`Stream`] destroys the
//! stream (see [`stream`]).

mod clock;
mod context;

pub mod bind;
pub mod proxy;
pub mod smd;
pub mod stream;
pub mod system_state;
pub mod tls;
pub mod transport;

pub use context::{Context, ContextBuilder, ContextError, CreateError, StreamOptions};
pub use sstreams_core::policy::{self, Policy};
pub use stream::{Stream, StreamEvent, StreamEvents, StreamHandler};

//! Secure Streams for Rust
//!
//! Application code sends and receives payload and hears advisory states; where it connects,
//! over which protocol, with which trust chain, retry and headers all live in a JSON
//! [`Policy`]. This crate is the tokio runtime and public API; the sans-IO core is
//! `sstreams-core`.
//!
//! Available so far:
//!
//! * [`smd`]: the System Message Distribution bus (class-filtered, bounded, ordered, with
//!   monotonic microsecond timestamps), its async subscriptions and the [`smd::SsBridge`]
//!   that turns bus messages into `_lws_smd` stream payloads and back;
//! * [`system_state`]: the lws_system state sequence, with holds, announced on the bus.
//!
//! # Cancel safety
//!
//! [`smd::Subscription::recv`] and [`smd::SsBridge::recv_payload`] are cancel safe: dropping
//! the future loses no message.

mod clock;
pub mod smd;
pub mod system_state;

pub use sstreams_core::policy::{self, Policy};

pub use context::{Context, ContextBuilder, ContextError, CreateError, StreamOptions};
pub use stream::{Stream, StreamEvent, StreamEvents, StreamHandler};

mod context;

pub mod bind;
pub mod stream;
pub mod tls;
pub mod transport;

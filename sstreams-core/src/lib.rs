//! Sans-IO core of sstreams
//!
//! This crate holds everything in Secure Streams that is pure logic: the policy model and its
//! loader, the retry/backoff schedule, and (as they land) the stream state machine, the proxy
//! wire codec and the SMD message types. It does no I/O, reads no clock and draws no random
//! numbers: time comes in as an argument, and so does randomness.
//!
//! ```text
//!  policy JSON ──► policy::json ──► PolicySpec ──► Policy (validated, immutable)
//!  static Rust ──────────────────►    ▲               │
//!                                     │               ▼
//!                        policy::codegen   runtime (crate `sstreams`): streams, bindings, proxy
//! ```
//!
//! The runtime lives in the `sstreams` crate; the command-line tools in `sstreams-cli`.
#![forbid(unsafe_code)]

pub mod policy;
pub mod smd;
pub mod stream;
pub mod system_state;
pub mod wire;

pub use policy::Policy;

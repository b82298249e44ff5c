//! Secure Streams for Rust
//!
//! Application code sends and receives payload and hears advisory states; where it connects,
//! over which protocol, with which trust chain, retry and headers all live in a JSON
//! [`Policy`]. This crate is the tokio runtime and public API; the sans-IO core is
//! `sstreams-core`.

mod clock;
pub mod smd;
pub mod system_state;

pub use sstreams_core::policy::{self, Policy};

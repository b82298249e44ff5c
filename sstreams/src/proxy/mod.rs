//! The SS proxy: serves secure streams to clients in other processes over the C wire format
//!
//! So far: where the proxy listens and who may connect ([`listen`]). The wire codec lives in
//! `sstreams_core::wire`; the link handling and the proxied client follow.

pub(crate) mod frame_io;
pub mod listen;
pub mod server;

//! The proxy wire codec: Serialized Secure Streams (SSSv1) frames, sans-IO
//!
//! A proxied client and the Secure Streams proxy talk over one byte stream per stream (a Unix
//! or TCP socket). Every message on it is a frame (`spec/wire-protocol.md` §3):
//!
//! ```text
//!  offset  size  field
//!  0       1     type code (FrameType)
//!  1       2     L, the body length in bytes (big-endian u16)
//!  3       L     body
//! ```
//!
//! This module turns bytes into [`Frame`]s and back, and nothing else: it does no I/O, keeps no
//! link state and reads no clock. [`Decoder`] is fed whatever the socket returned (frames may be
//! split over reads or coalesced in one) and yields complete frames; [`Frame::encode`] writes
//! exactly the bytes the C implementation writes. The link state machines that decide which
//! frame is acceptable when (spec §4.3) sit on top of this: [`ProxyLink`] for the proxy side,
//! [`ClientLink`] for the client side (which also runs the link retries and the client's
//! write priority).
//!
//! ```text
//!  socket bytes ──► Decoder::handle_bytes ──► Decoder::poll_frame ──► Frame ──► link
//!  link ──► Frame ──► Frame::encode ──► BytesMut ──► socket
//! ```
//!
//! Errors separate "need more bytes" ([`WireError::Incomplete`], never fatal) from
//! "malformed" ([`MalformedFrame`]: the receiver must close the link, spec §3.3 and §10).

mod client_link;
mod decoder;
mod error;
mod frame;
mod frame_type;
mod link;
mod outbox;

#[cfg(test)]
mod tests;

pub use client_link::{
    CREATE_RESULT_TIMEOUT, ClientEvent, ClientLink, ClientLinkConfig, ClientLinkError,
    ClientLinkState, LINK_RETRY, PERF_RX_FLAGS, Transmit,
};
pub use decoder::Decoder;
pub use error::{EncodeError, MalformedFrame, WireError};
pub use frame::{ConnState, CreateResult, Frame, Metadata, Payload, StreamType};
pub use frame_type::{Direction, FrameType};
pub use link::{LinkViolation, ProxyAction, ProxyLink, ProxyLinkState, rideshare_list};
pub use outbox::{MAX_RX_CHUNK, Outbox, OutboxLimits};

/// Length in bytes of every frame header: type code and the 2-byte body length
pub const HEADER_LEN: usize = 3;

/// Largest body length the wire can express, in bytes (a `u16`)
pub const MAX_BODY_LEN: usize = u16::MAX as usize;

/// The only protocol version, sent as the first STREAMTYPE body byte (C `LWSSSS_VERSION`)
pub const PROTOCOL_VERSION: u8 = 1;

/// Tx credit a C client announces in STREAMTYPE when it has no manual credit: "practically
/// unlimited" (500000000 bytes)
pub const DEFAULT_TX_CREDIT: u32 = 500_000_000;

/// Longest streamtype name in STREAMTYPE, in bytes (the C proxy's 32-byte buffer with a NUL)
pub const MAX_STREAMTYPE_NAME_LEN: usize = 31;

/// Longest metadata name, in bytes (the C parsers' 32-byte buffer, less one)
pub const MAX_METADATA_NAME_LEN: usize = 30;

/// Longest rideshare name in a payload frame, in bytes (the C parsers' 32-byte buffer)
pub const MAX_RIDESHARE_NAME_LEN: usize = 31;

/// Length in bytes of the header that starts every TX/RX payload frame body: flags (u32),
/// latency (u32) and timestamp (u64)
pub const PAYLOAD_HEADER_LEN: usize = 16;

//! Errors of the wire codec: need more bytes, malformed input, unencodable frame

use super::{Direction, FrameType};

/// Why bytes did not yield a frame
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes so far are a valid prefix of a frame; read more and try again
    #[error("incomplete frame: more bytes are needed")]
    Incomplete,
    /// The bytes can never become a valid frame: close the link
    #[error(transparent)]
    Malformed(#[from] MalformedFrame),
}

impl WireError {
    /// Whether this only means "read more bytes"
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete)
    }
}

/// A frame the C peer would hang up on; the receiver must close the link (spec §10)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedFrame {
    /// A type code that no version of the protocol defines
    #[error("unknown frame type {0}")]
    UnknownType(FrameType),
    /// A type code C reserves but never implemented (0x5A, 0xB2, 0xB3)
    #[error("reserved frame type {0}")]
    ReservedType(FrameType),
    /// A valid code that travels the other way (e.g. CONNSTATE sent to a proxy)
    #[error("frame type {frame_type} not expected in direction {expected:?}")]
    WrongDirection {
        /// The code received
        frame_type: FrameType,
        /// The direction the decoder accepts
        expected: Direction,
    },
    /// A body length outside the range the frame type allows
    #[error("frame type {frame_type} with a {len}-byte body")]
    BadLength {
        /// The frame's type
        frame_type: FrameType,
        /// The body length, bytes
        len: usize,
    },
    /// A body longer than the decoder's configured maximum
    #[error("frame body of {len} bytes exceeds the {max}-byte maximum")]
    TooLong {
        /// The body length announced, bytes
        len: usize,
        /// The configured maximum, bytes
        max: usize,
    },
    /// STREAMTYPE with a protocol version other than 1
    #[error("unsupported protocol version SSSv{0}")]
    UnsupportedVersion(u8),
    /// A metadata name length of 0 or above 30, or one leaving no room for a value
    #[error("metadata name length {len} is invalid in a {body_len}-byte body")]
    MetadataNameLength {
        /// The name length byte
        len: u8,
        /// The body length, bytes
        body_len: usize,
    },
    /// A rideshare name length of 0 or above 31, or one longer than the rest of the body
    #[error("rideshare name length {len} is invalid in a {body_len}-byte body")]
    RideshareLength {
        /// The name length byte
        len: u8,
        /// The body length, bytes
        body_len: usize,
    },
    /// CONNSTATE carrying state 0, which means "no state" in C
    #[error("connection state 0")]
    ZeroState,
}

/// Why a [`Frame`](super::Frame) cannot be written: it breaks a limit the receiver enforces
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The body would exceed 65535 bytes
    #[error("frame body of {len} bytes exceeds 65535")]
    BodyTooLong {
        /// Body length, bytes
        len: usize,
    },
    /// A streamtype name of 0 or more than 31 bytes
    #[error("streamtype name of {len} bytes (1 to 31 allowed)")]
    StreamTypeName {
        /// Name length, bytes
        len: usize,
    },
    /// A metadata name of 0 or more than 30 bytes
    #[error("metadata name of {len} bytes (1 to 30 allowed)")]
    MetadataName {
        /// Name length, bytes
        len: usize,
    },
    /// An empty metadata value, which no C parser accepts
    #[error("empty metadata value")]
    EmptyMetadataValue,
    /// A rideshare name of 0 or more than 31 bytes
    #[error("rideshare name of {len} bytes (1 to 31 allowed)")]
    RideshareName {
        /// Name length, bytes
        len: usize,
    },
    /// The RIDESHARE flag without a rideshare name, or a name without the flag
    #[error("RIDESHARE flag and rideshare name disagree")]
    RideshareMismatch,
    /// An empty PERF body, which the C client refuses
    #[error("empty PERF body")]
    EmptyPerf,
}

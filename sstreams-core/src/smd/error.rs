//! Errors of the SMD value types

/// Why bytes could not become an SMD message, or a body could not be carried
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmdFormatError {
    /// Fewer than the 16 header bytes an `_lws_smd` payload starts with
    #[error("SMD stream payload of {len} bytes is shorter than its 16-byte header")]
    ShortHeader {
        /// Bytes available
        len: usize,
    },
    /// A body longer than [`MAX_PAYLOAD`](super::MAX_PAYLOAD) (384 bytes)
    #[error("SMD body of {len} bytes exceeds the 384-byte maximum")]
    PayloadTooLarge {
        /// Body length offered
        len: usize,
    },
}

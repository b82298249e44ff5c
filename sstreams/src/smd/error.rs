//! Errors of the SMD bus

use sstreams_core::smd::SmdFormatError;

/// Why a message was not accepted by the bus
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmdError {
    /// The queue already holds `depth` undelivered messages; this one was refused and counted
    /// in [`SmdStats::refused`](super::SmdStats::refused). Nothing older was evicted.
    #[error("SMD queue full ({depth} undelivered messages): message refused")]
    QueueFull {
        /// The configured queue depth
        depth: usize,
    },
    /// The body or stream payload is malformed (too long, or shorter than its header)
    #[error(transparent)]
    Format(#[from] SmdFormatError),
    /// The bus was closed
    #[error("SMD bus closed")]
    Closed,
}

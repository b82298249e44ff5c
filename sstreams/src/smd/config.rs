//! Bus configuration and statistics

use std::time::Duration;

use sstreams_core::smd::{DEFAULT_QUEUE_DEPTH, DEFAULT_TTL_US};

/// Settings of an [`SmdBus`](super::SmdBus)
#[derive(Debug, Clone)]
pub struct SmdConfig {
    pub(super) queue_depth: usize,
    pub(super) ttl: Duration,
}

impl SmdConfig {
    /// Maximum number of queued messages still owed to some participant
    ///
    /// A message posted while the queue is full is refused with
    /// [`SmdError::QueueFull`](super::SmdError::QueueFull). Memory: each slot is about 430
    /// bytes, and the queue holds at most about `2 × depth + 64` slots (delivered messages
    /// stuck behind an undelivered one are compacted away beyond that). 0 means the default.
    /// Default is 40 (the C default).
    pub fn queue_depth(&mut self, depth: usize) -> &mut Self {
        self.queue_depth = if depth == 0 {
            DEFAULT_QUEUE_DEPTH
        } else {
            depth
        };
        self
    }

    /// Age after which a queued message is discarded even if undelivered
    ///
    /// Ages are measured from the message timestamp when the dispatcher or a subscription
    /// next looks at the queue; discarded messages are counted in
    /// [`SmdStats::expired`]. Zero means the default. Default is 2 s (the C default).
    pub fn ttl(&mut self, ttl: Duration) -> &mut Self {
        self.ttl = if ttl.is_zero() {
            Duration::from_micros(DEFAULT_TTL_US)
        } else {
            ttl
        };
        self
    }
}

impl Default for SmdConfig {
    fn default() -> Self {
        Self {
            queue_depth: DEFAULT_QUEUE_DEPTH,
            ttl: Duration::from_micros(DEFAULT_TTL_US),
        }
    }
}

/// A snapshot of the bus counters
///
/// Every well-formed message offered to an open bus ends up in exactly one of `posted`,
/// `refused` or `no_listener` (malformed ones and posts to a closed bus get an error and are not
/// counted). A posted message then leaves the queue when every recipient has taken it, when it
/// expires (`expired`), when its last recipients unregister, or when the bus closes
/// (`discarded`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmdStats {
    /// Messages accepted into the queue
    pub posted: u64,
    /// Deliveries made (one per message per participant)
    pub delivered: u64,
    /// Messages refused because the queue was full
    pub refused: u64,
    /// Messages nobody was listening for (accepted, nothing queued)
    pub no_listener: u64,
    /// Messages discarded undelivered because they outlived the TTL
    pub expired: u64,
    /// Messages discarded undelivered because the bus was closed
    pub discarded: u64,
    /// Messages currently queued and owed to someone
    pub queued: usize,
    /// Participants currently registered (handlers and subscriptions)
    pub participants: usize,
}

//! What the lifecycle of one stream needs to know from its streamtype

use std::sync::Arc;
use std::time::Duration;

use crate::policy::{Protocol, RetryPolicy, StreamType};

/// How a closed connection is reported and whether it is reopened
///
/// The C bindings differ here (`spec/feature-inventory.md` §3.1, §3.4–3.6); the two rules
/// below cover them. Pick one with [`CloseRule::for_protocol`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CloseRule {
    /// h1, h2, h3 (C `ss-h1.c`, `CLOSED_CLIENT_HTTP`)
    ///
    /// * Not opportunistic and the transaction did not complete: reconnect with backoff and
    ///   report **nothing** (no `DISCONNECTED`, even after `CONNECTED`); `DISCONNECTED` is
    ///   delivered later if the reconnect fails or the retries run out.
    /// * Otherwise: `DISCONNECTED` if `CONNECTED` was delivered; if not, and the transaction
    ///   did not complete, `UNREACHABLE` and backoff.
    ///
    /// The transaction counts as complete once `QOS_ACK_REMOTE` or `QOS_NACK_REMOTE` was
    /// reported on the connection (C sets `txn_ok` at that point).
    #[default]
    Http,
    /// ws, mqtt, raw (C `ss-ws.c`, `ss-mqtt.c`, `ss-raw.c`)
    ///
    /// `DISCONNECTED` if `CONNECTED` was delivered, else `UNREACHABLE`; then, unless the
    /// streamtype is opportunistic, reconnect with backoff. (raw never completes a
    /// transaction, ws ignores it and mqtt never marks one, so it plays no part.)
    Stream,
}

impl CloseRule {
    /// The rule of the C binding for `protocol`
    pub fn for_protocol(protocol: Protocol) -> Self {
        match protocol {
            Protocol::H1 | Protocol::H2 | Protocol::H3 => Self::Http,
            Protocol::Ws | Protocol::Mqtt | Protocol::Raw => Self::Stream,
        }
    }
}

/// The streamtype settings a [`StreamCore`](super::StreamCore) follows
///
/// Usually made with [`StreamConfig::from_streamtype`]. The defaults (from [`Default`]) are
/// those of a streamtype with no keys set: no retry policy, neither `nailed_up` nor
/// `opportunistic`, no default timeout, the [`CloseRule::Http`] rule (h1 is the default
/// protocol).
#[derive(Debug, Clone, Default)]
pub struct StreamConfig {
    pub(super) retry: Option<Arc<RetryPolicy>>,
    pub(super) nailed_up: bool,
    pub(super) opportunistic: bool,
    pub(super) timeout: Option<Duration>,
    pub(super) close_rule: CloseRule,
}

impl StreamConfig {
    /// The settings of `streamtype`: its `retry`, `nailed_up`, `opportunistic` and
    /// `timeout_ms` keys, and the close rule of its protocol
    pub fn from_streamtype(streamtype: &StreamType) -> Self {
        Self {
            retry: streamtype.retry().cloned(),
            nailed_up: streamtype.spec().nailed_up,
            opportunistic: streamtype.spec().opportunistic,
            timeout: streamtype.timeout(),
            close_rule: CloseRule::for_protocol(streamtype.protocol()),
        }
    }

    /// The retry and backoff scheme; without one the first failure gives
    /// `ALL_RETRIES_FAILED`. Default: none.
    pub fn retry(&mut self, retry: Option<Arc<RetryPolicy>>) -> &mut Self {
        self.retry = retry;
        self
    }

    /// Connect as soon as the stream is created. Default: false.
    pub fn nailed_up(&mut self, nailed_up: bool) -> &mut Self {
        self.nailed_up = nailed_up;
        self
    }

    /// Never reconnect after a connection closes; the next `request_tx` connects again.
    /// Default: false.
    pub fn opportunistic(&mut self, opportunistic: bool) -> &mut Self {
        self.opportunistic = opportunistic;
        self
    }

    /// The timeout `start_timeout` uses when given none (policy `timeout_ms`). Default: none.
    pub fn timeout(&mut self, timeout: Option<Duration>) -> &mut Self {
        self.timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How closed connections are handled. Default: [`CloseRule::Http`].
    pub fn close_rule(&mut self, close_rule: CloseRule) -> &mut Self {
        self.close_rule = close_rule;
        self
    }
}

//! Protocol bindings: one connection of a stream, spoken in its policy's protocol
//!
//! The stream driver opens the [`Transport`](crate::transport::Transport) (DNS, socket, TLS)
//! and hands it to the binding of the streamtype's protocol together with a [`BindContext`].
//! The binding runs until the connection is over, reporting what happens as [`BindEvent`]s
//! and taking payload to send as [`TxChunk`]s. It never touches the stream's lifecycle: the
//! driver turns the events into [`StreamCore`](sstreams_core::stream::StreamCore) inputs and
//! user callbacks.
//!
//! Flow control both ways is by bounded channels: a binding waits while the driver has not
//! taken its rx (so a slow consumer stops the socket being read), and asks for tx with
//! [`BindEvent::WantTx`] only when it can send.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::ClientConfig;
use sstreams_core::policy::{Endpoint, StreamType};
use sstreams_core::stream::perf::ConnPerf;
use sstreams_core::stream::{PayloadFlags, State};
use tokio::sync::mpsc;

pub mod blobs;
pub mod cookies;
pub mod h1;
mod http;
mod multipart;
pub mod raw;
pub mod smd;

/// Rx chunks (and other events) a binding may have queued before it waits for the driver
pub const EVENT_QUEUE: usize = 8;

/// What a binding reports about its connection
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindEvent {
    /// Metadata captured from the peer (e.g. response headers mapped by the policy), to apply
    /// before the next event is delivered; names are metadata names, or header names
    /// (lowercase, no `:`) for `direct_proto_str`
    Metadata(Vec<(String, Bytes)>),
    /// The connection carries the protocol now (raw/ws/mqtt: established; http: the response
    /// headers arrived and were accepted)
    Connected,
    /// A state the protocol produces: QoS verdicts, `http_resp_map` user states
    State(State),
    /// Payload from the peer, with the protocol's SOM/EOM placement
    Rx(Bytes, PayloadFlags),
    /// The binding can send: the driver should produce one [`TxChunk`] when the user has asked
    /// to send
    WantTx,
    /// The peer asked to retry later (http 503/429), no sooner than this
    RetryLater(Duration),
    /// The connection's performance record ([`BindContext::perf`], completed), for the
    /// driver to deliver as a `PERF_JSON` rx; at most one per connection
    Perf(Box<ConnPerf>),
    /// The connection is over; `error` says why if it failed
    Closed {
        /// Why, if this was not an orderly end
        error: Option<String>,
    },
}

/// Payload for the binding to send
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxChunk {
    /// The bytes
    pub data: Bytes,
    /// SOM/EOM and the rest, as the user's tx gave them
    pub flags: PayloadFlags,
}

/// Everything a binding gets for one connection
#[derive(Debug)]
pub struct BindContext {
    /// The streamtype (policy) of the stream
    pub streamtype: StreamType,
    /// The resolved endpoint (host, URL path override, TLS)
    pub endpoint: Endpoint,
    /// The TLS client configuration the transport was opened with, if any; the http bindings
    /// open the connections of the redirects they follow with it (a redirect to `https` fails
    /// without one)
    pub tls: Option<Arc<ClientConfig>>,
    /// The context's cookie jar, used by the http bindings when the streamtype has
    /// `http_cookies` (`None`: no cookies are stored or sent)
    pub cookies: Option<Arc<cookies::CookieJar>>,
    /// The system blob values for the http blob headers (`http_auth_header` and the device
    /// headers); all `None` until the context has a blob store
    pub blobs: blobs::HttpBlobs,
    /// The stream's metadata values, by declared slot (`None` when unset)
    pub metadata: Vec<Option<Bytes>>,
    /// Undeclared header metadata (`direct_proto_str`): lowercase header name, value
    pub direct_headers: Vec<(String, Bytes)>,
    /// The total payload length the user announced with `request_tx_len`, if any
    pub length_hint: Option<u64>,
    /// The connection's performance record when the streamtype has `"perf": true` (`None`
    /// otherwise): the transport's part filled in; the binding adds its protocol's part and
    /// reports it with [`BindEvent::Perf`] once, when it has all of it (h1: the response head;
    /// raw: the close), or before [`BindEvent::Closed`] at the latest
    pub perf: Option<Box<ConnPerf>>,
    /// Where events go (bounded: [`EVENT_QUEUE`])
    pub events: mpsc::Sender<BindEvent>,
    /// Payload to send, one chunk per [`BindEvent::WantTx`]
    pub tx: mpsc::Receiver<TxChunk>,
}

impl BindContext {
    /// The value of metadata `name`, if declared and set
    pub fn metadata_value(&self, name: &str) -> Option<&Bytes> {
        let i = self.streamtype.metadata_index(name)?;
        self.metadata.get(i)?.as_ref()
    }

    /// Sends an event; `false` when the driver has gone (the binding should stop)
    pub async fn emit(&self, event: BindEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// Reports the performance record if it has not been yet; `false` when the driver has
    /// gone
    pub async fn emit_perf(&mut self) -> bool {
        match self.perf.take() {
            Some(p) => self.emit(BindEvent::Perf(p)).await,
            None => true,
        }
    }
}

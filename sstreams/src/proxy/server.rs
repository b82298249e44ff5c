//! The proxy side of the link: one onward stream per client link
//!
//! A link starts with the client's STREAMTYPE (within [`STREAMTYPE_TIMEOUT`]); the proxy
//! creates a stream of that streamtype from its [`Context`] and answers CREATE_RESULT first,
//! before anything else (spec §4.3). Then, until either side goes:
//!
//! * client → stream: TX_PAYLOAD is sent on the stream; METADATA sets metadata;
//!   PAYLOAD_LENGTH_HINT announces the length (and asks to send, which connects);
//!   ONWARD_CONNECT connects; TIMEOUT_UPDATE starts (0: the policy's `timeout_ms`) or cancels
//!   (`u32::MAX`) the stream timeout; TXCR_UPDATE is given to the stream as peer credit
//!   ([`Stream::add_peer_tx_credit`](crate::Stream::add_peer_tx_credit); only protocols with
//!   credit act on it); DESTROYING hangs up, as C does.
//! * stream → client, in the C proxy's write order (spec §7.2, [`Outbox`]): CREATE_RESULT,
//!   then captured metadata as METADATA, then connection-performance JSON (rx flagged
//!   `PERF_JSON`) as PERF with all of the JSON (C truncates it to 5 bytes), then states as
//!   CONNSTATE and payload as RX_PAYLOAD (frames of at most [`rx_chunk_limit`] bytes, SOM on
//!   the first piece and EOM on the last) in the order they came.
//!
//! Reading the client and writing to it run side by side in the link's task; frames are
//! written with vectored writes, the payload bytes straight from the onward stream's buffers.
//!
//! A malformed frame, a frame of the wrong direction or a second STREAMTYPE closes that link
//! only. Closing the link destroys the stream (its last states are not delivered, as in C).
//!
//! # Memory and flow control (spec §6)
//!
//! Per link, both directions are bounded by the streamtype's `proxy_buflen` (default 32768):
//!
//! * toward the client, the frames not yet written are counted; at `proxy_buflen` (or above
//!   `proxy_buflen_rxflow_on_above`, resuming below `proxy_buflen_rxflow_off_below`) the
//!   proxy stops taking the onward stream's events, whose bounded queue then stops the
//!   onward connection being read. The count may pass the limit by one event (one rx).
//!   Unlike C, which discards everything queued for the client on overflow and reports the
//!   onward stream disconnected, nothing is dropped: the onward peer is made to wait.
//! * from the client, payload is handed to the stream with
//!   [`Stream::write`](crate::Stream::write) and a `tx_queue_limit` of `proxy_buflen`: while
//!   the onward connection has not taken that much, the link is not read.
//!
//! # Credit toward the client
//!
//! TXCR_UPDATE to the client ([`Outbox::handle_credit`]) is produced in C only by h2 onward
//! streams (the server's initial window, then its window updates). There is no h2 binding
//! yet, and the stream's events carry no credit; when there is, its credit event goes to
//! `Outbox::handle_credit`.
//!
//! For http POST/PUT/PATCH streamtypes the proxy reports `CONNECTED` right after `CONNECTING`
//! (and drops the later real one of that transaction), as the C proxy does when the request
//! headers go out: C clients send the body only after `CONNECTED`.
//!
//! Metadata the onward stream captures (e.g. mapped response headers) goes back as METADATA
//! (0x59) before the state it came with.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use sstreams_core::smd::STREAMTYPE_NAME;
use sstreams_core::stream::State;
use sstreams_core::wire::{
    self, ConnState, CreateResult, Decoder, LinkViolation, Outbox, OutboxLimits, ProxyAction,
    ProxyLink, rideshare_list,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::task::JoinSet;

use super::frame_io::{FrameIoError, READ_SIZE, WriteBatch, read_frame};
use super::listen::{Accepted, LinkSocket, Peer, ProxyListener};
use crate::{Context, StreamEvent, StreamOptions};

/// How long a new link may take to send STREAMTYPE (C: 3 s)
pub const STREAMTYPE_TIMEOUT: Duration = Duration::from_secs(3);

/// Most payload bytes one RX_PAYLOAD frame can carry
pub const MAX_RX_CHUNK: usize = wire::MAX_RX_CHUNK;

/// The C client's reassembly buffer when CREATE_RESULT says `client_buflen` 0
const C_CLIENT_DEFAULT_BUFLEN: u32 = 32_768;

/// Most payload bytes in one RX_PAYLOAD frame to a client told `client_buflen` in
/// CREATE_RESULT: half that buffer (0: the C client's default, 32768), at most
/// [`MAX_RX_CHUNK`]
///
/// The C client gathers each frame's pieces in a buffer of `client_buflen` bytes; when a frame
/// does not fit, it hands over what it gathered and silently drops the frame's last piece
/// (up to 1380 bytes). Half the buffer leaves room for its per-piece overhead.
pub fn rx_chunk_limit(client_buflen: u32) -> usize {
    let buflen = if client_buflen == 0 {
        C_CLIENT_DEFAULT_BUFLEN
    } else {
        client_buflen
    };
    (buflen as usize / 2).clamp(1, MAX_RX_CHUNK)
}

/// Serves links accepted by `listener` with streams of `cx` until `shutdown` completes; then
/// stops accepting and closes every link
pub async fn serve(
    cx: Context,
    listener: ProxyListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let mut links = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            a = listener.accept() => {
                let a = a?;
                links.spawn(serve_link(cx.clone(), a));
            }
            Some(_) = links.join_next(), if !links.is_empty() => {}
        }
    }
    tracing::info!("SS proxy: shutting down, closing {} links", links.len());
    links.shutdown().await;
    Ok(())
}

/// Serves one link until either side ends it
pub async fn serve_link(cx: Context, accepted: Accepted) {
    let Accepted { socket, peer, .. } = accepted;
    let result = match socket {
        LinkSocket::Unix(s) => {
            let (rd, wr) = s.into_split();
            link(cx, rd, wr, peer).await
        }
        LinkSocket::Tcp(s) => {
            let (rd, wr) = s.into_split();
            link(cx, rd, wr, peer).await
        }
    };
    match result {
        Ok(()) => tracing::debug!("SS proxy: link from {peer} closed"),
        Err(e) => tracing::info!("SS proxy: link from {peer} closed: {e}"),
    }
}

/// Why a link ended early
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("malformed frame: {0}")]
    Malformed(#[from] wire::MalformedFrame),
    #[error("no STREAMTYPE within {0:?}")]
    NoStreamType(Duration),
    #[error(transparent)]
    Violation(#[from] LinkViolation),
    #[error(transparent)]
    Frame(#[from] FrameIoError),
}

async fn link<R, W>(cx: Context, mut rd: R, mut wr: W, peer: Peer) -> Result<(), LinkError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut decoder = Decoder::proxy_side();

    let mut link = ProxyLink::new();
    let wait = async {
        loop {
            let Some(frame) = read_frame(&mut rd, &mut decoder).await? else {
                return Ok(None);
            };
            if let Some(ProxyAction::Create {
                name,
                pid,
                tx_credit,
            }) = link.handle_frame(frame)?
            {
                return Ok::<_, LinkError>(Some((name, pid, tx_credit)));
            }
        }
    };
    let Some((name, pid, tx_credit)) = tokio::time::timeout(STREAMTYPE_TIMEOUT, wait)
        .await
        .map_err(|_| LinkError::NoStreamType(STREAMTYPE_TIMEOUT))??
    else {
        return Ok(());
    };
    // Both directions are bounded by the streamtype's proxy_buflen (spec §6).
    let limits = cx
        .policy()
        .streamtype(&name)
        .map(|st| OutboxLimits::from_policy(st.buffers()))
        .unwrap_or_default();
    let mut outbox = Outbox::new(limits);
    let mut options = StreamOptions::default();
    // For `_lws_smd` the credit field is the SMD class mask; otherwise it is advisory.
    options.tx_credit(tx_credit as i32);
    options.tx_queue_limit(limits.buflen);
    let (stream, events) = match cx.open_with(&name, options) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!("SS proxy: {peer} asked for {name:?}: {e}");
            link.handle_created(false);
            outbox.handle_create_result(CreateResult::failed());
            let mut batch = WriteBatch::default();
            while batch.fill(&mut outbox)? {
                batch.write_all(&mut wr, &mut outbox).await?;
            }
            return Ok(());
        }
    };
    tracing::info!("SS proxy: {peer} (pid {pid}) created stream {name}");
    let st = stream.streamtype();
    let client_buflen = if name == STREAMTYPE_NAME {
        0
    } else {
        st.buffers().client_buflen
    };
    let rideshares = rideshare_list(&name, st.spec().rideshare.as_deref());
    outbox.handle_create_result(CreateResult {
        result: 0,
        client_buflen,
        rideshares,
    });
    outbox.rx_chunk(rx_chunk_limit(client_buflen));
    // Written before anything else (the outbox's order), so the link is operational now.
    link.handle_created(true);
    // An http request with a body: C clients send the body only after CONNECTED, which the
    // onward stream reports at the response, so the proxy says CONNECTED as soon as the
    // connection is being made (C does the same when the headers go out).
    let with_body = {
        let st = stream.streamtype();
        let method = st.http().method.as_deref().unwrap_or("GET");
        st.protocol().is_http() && matches!(method, "POST" | "PUT" | "PATCH")
    };
    let early_connected = if with_body {
        EarlyConnected::Armed
    } else {
        EarlyConnected::Off
    };

    // Reading the client and writing to it run side by side: a client payload waiting for
    // room in the onward stream does not hold up what goes back, and the reverse.
    let from_client = from_client(&mut rd, &mut decoder, &mut link, &stream);
    let to_client = to_client(&mut wr, events, &mut outbox, early_connected);
    tokio::select! {
        r = from_client => r,
        r = to_client => r,
    }
}

/// Client → onward stream, until the client closes the link or breaks the protocol
async fn from_client<R: AsyncRead + Unpin>(
    rd: &mut R,
    decoder: &mut Decoder,
    link: &mut ProxyLink,
    stream: &crate::Stream,
) -> Result<(), LinkError> {
    loop {
        // Frames already read (e.g. sent together with STREAMTYPE) go first.
        while let Some(frame) = decoder.poll_frame()? {
            match link.handle_frame(frame) {
                Ok(Some(action)) => apply(stream, action).await,
                Ok(None) => {}
                // The client hangs up this way (C clients just close the link).
                Err(LinkViolation::Destroying) => return Ok(()),
                Err(v) => return Err(v.into()),
            }
        }
        decoder.buffer_mut().reserve(READ_SIZE);
        if rd.read_buf(decoder.buffer_mut()).await? == 0 {
            return Ok(());
        }
    }
}

/// Onward stream → client: pulls the stream's events while the outbox has room and writes
/// the outbox's frames, both at once; ends when the stream has ended and all is written
async fn to_client<W: AsyncWrite + Unpin>(
    wr: &mut W,
    mut events: crate::StreamEvents,
    outbox: &mut Outbox,
    mut early_connected: EarlyConnected,
) -> Result<(), LinkError> {
    let mut batch = WriteBatch::default();
    let mut open = true;
    loop {
        if batch.is_empty() && !batch.fill(outbox)? && !open {
            return Ok(());
        }
        tokio::select! {
            // Events first: they go into the same write while there is room.
            biased;
            event = events.next(), if open && outbox.wants_rx() => match event {
                None => open = false,
                Some(StreamEvent::State(state, ack)) => {
                    match (state, early_connected) {
                        // Already announced: the client is sending its body.
                        (State::CONNECTED, EarlyConnected::Sent) => {
                            early_connected = EarlyConnected::Armed;
                        }
                        (State::CONNECTING, EarlyConnected::Armed) => {
                            early_connected = EarlyConnected::Sent;
                            outbox.handle_state(ConnState { state, ack });
                            outbox.handle_state(ConnState { state: State::CONNECTED, ack: 0 });
                        }
                        _ => outbox.handle_state(ConnState { state, ack }),
                    }
                }
                Some(StreamEvent::Rx(data, flags)) => {
                    outbox.handle_rx(data, flags, crate::clock::monotonic_us());
                }
                Some(StreamEvent::Metadata(name, value)) => {
                    let m = wire::Metadata { name: Bytes::from(name), value };
                    if let Err(e) = outbox.handle_metadata(m) {
                        tracing::info!("SS proxy: metadata not sent: {e}");
                    }
                }
            },
            n = batch.write(wr), if !batch.is_empty() => {
                let n = n?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero).into());
                }
                batch.advance(n);
                outbox.handle_written(n);
            }
        }
    }
}

/// The synthetic CONNECTED of proxied http requests with a body
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EarlyConnected {
    /// Not an http request with a body
    Off,
    /// Send CONNECTED right after the next CONNECTING
    Armed,
    /// Sent; the real CONNECTED of this transaction is swallowed
    Sent,
}

/// Carries out what a client frame asked for; payload waits while the onward stream has
/// `proxy_buflen` bytes or more queued, which stops the link being read
async fn apply(stream: &crate::Stream, action: ProxyAction) {
    match action {
        ProxyAction::Payload(p) => stream.write(p.data, p.flags).await,
        ProxyAction::Metadata(m) => {
            let name = String::from_utf8_lossy(&m.name);
            if let Err(e) = stream.set_metadata(&name, m.value) {
                tracing::info!("SS proxy: {e}");
            }
        }
        ProxyAction::LengthHint(n) => stream.request_tx_len(u64::from(n)),
        ProxyAction::Connect => stream.connect(),
        ProxyAction::StartTimeout(t) => stream.start_timeout(t),
        ProxyAction::CancelTimeout => stream.cancel_timeout(),
        ProxyAction::Credit(delta) => stream.add_peer_tx_credit(delta),
        // `Create` is handled before the link is operational.
        _ => {}
    }
}

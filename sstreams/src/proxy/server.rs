//! The proxy side of the link: one onward stream per client link
//!
//! A link starts with the client's STREAMTYPE (within [`STREAMTYPE_TIMEOUT`]); the proxy
//! creates a stream of that streamtype from its [`Context`] and answers CREATE_RESULT first,
//! before anything else (spec §4.3). Then, until either side goes:
//!
//! * client → stream: TX_PAYLOAD is sent on the stream; METADATA sets metadata;
//!   PAYLOAD_LENGTH_HINT announces the length (and asks to send, which connects);
//!   ONWARD_CONNECT connects; TIMEOUT_UPDATE starts (0: the policy's `timeout_ms`) or cancels
//!   (`u32::MAX`) the stream timeout; TXCR_UPDATE is accepted and has no effect (no h2 yet);
//!   DESTROYING hangs up, as C does.
//! * stream → client: every state as CONNSTATE, captured metadata as METADATA, payload as
//!   RX_PAYLOAD (split into frames of at most [`rx_chunk_limit`] bytes, SOM on the first
//!   piece and EOM on the last).
//!
//! A malformed frame, a frame of the wrong direction or a second STREAMTYPE closes that link
//! only. Closing the link destroys the stream (its last states are not delivered, as in C).
//!
//! Memory per link is bounded: the stream's events wait in a bounded queue, so a client that
//! does not read stops the proxy reading the onward connection; payload from the client is
//! read only as fast as the onward stream takes it.
//!
//! For http POST/PUT/PATCH streamtypes the proxy reports `CONNECTED` right after `CONNECTING`
//! (and drops the later real one of that transaction), as the C proxy does when the request
//! headers go out: C clients send the body only after `CONNECTED`.
//!
//! Metadata the onward stream captures (e.g. mapped response headers) goes back as METADATA
//! (0x59) before the state it came with. Not yet: PERF (0x5B) and tx credit.

use std::future::Future;
use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sstreams_core::smd::STREAMTYPE_NAME;
use sstreams_core::stream::{PayloadFlags, State};
use sstreams_core::wire::{
    self, ConnState, CreateResult, Decoder, Frame, LinkViolation, MAX_BODY_LEN, PAYLOAD_HEADER_LEN,
    Payload, ProxyAction, ProxyLink, rideshare_list,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::task::JoinSet;

use super::frame_io::{FrameIoError, READ_SIZE, read_frame, write_frames};
use super::listen::{Accepted, LinkSocket, Peer, ProxyListener};
use crate::{Context, StreamEvent, StreamOptions};

/// How long a new link may take to send STREAMTYPE (C: 3 s)
pub const STREAMTYPE_TIMEOUT: Duration = Duration::from_secs(3);

/// Most payload bytes one RX_PAYLOAD frame can carry
pub const MAX_RX_CHUNK: usize = MAX_BODY_LEN - PAYLOAD_HEADER_LEN;

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
        LinkSocket::Unix(s) => link(cx, s, peer).await,
        LinkSocket::Tcp(s) => link(cx, s, peer).await,
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

async fn link<S>(cx: Context, io: S, peer: Peer) -> Result<(), LinkError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut decoder = Decoder::proxy_side();
    let mut out = BytesMut::with_capacity(READ_SIZE);

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
    let mut options = StreamOptions::default();
    // For `_lws_smd` the credit field is the SMD class mask; otherwise it is advisory.
    options.tx_credit(tx_credit as i32);
    let (stream, mut events) = match cx.open_with(&name, options) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!("SS proxy: {peer} asked for {name:?}: {e}");
            link.handle_created(false);
            let failed = Frame::CreateResult(CreateResult::failed());
            write_frames(&mut wr, &mut out, &[failed]).await?;
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
    let created = CreateResult {
        result: 0,
        client_buflen,
        rideshares,
    };
    write_frames(&mut wr, &mut out, &[Frame::CreateResult(created)]).await?;
    link.handle_created(true);
    let rx_limit = rx_chunk_limit(client_buflen);
    // An http request with a body: C clients send the body only after CONNECTED, which the
    // onward stream reports at the response, so the proxy says CONNECTED as soon as the
    // connection is being made (C does the same when the headers go out).
    let with_body = {
        let st = stream.streamtype();
        let method = st.http().method.as_deref().unwrap_or("GET");
        st.protocol().is_http() && matches!(method, "POST" | "PUT" | "PATCH")
    };
    let mut early_connected = if with_body {
        EarlyConnected::Armed
    } else {
        EarlyConnected::Off
    };

    loop {
        // Frames already read (e.g. sent together with STREAMTYPE) go first.
        while let Some(frame) = decoder.poll_frame()? {
            match link.handle_frame(frame) {
                Ok(Some(action)) => apply(&stream, action),
                Ok(None) => {}
                // The client hangs up this way (C clients just close the link).
                Err(LinkViolation::Destroying) => return Ok(()),
                Err(v) => return Err(v.into()),
            }
        }
        decoder.buffer_mut().reserve(READ_SIZE);
        tokio::select! {
            n = rd.read_buf(decoder.buffer_mut()) => {
                if n? == 0 {
                    return Ok(());
                }
            }
            event = events.next() => match event {
                None => return Ok(()),
                Some(StreamEvent::State(state, ack)) => {
                    match (state, early_connected) {
                        // Already announced: the client is sending its body.
                        (State::CONNECTED, EarlyConnected::Sent) => {
                            early_connected = EarlyConnected::Armed;
                            continue;
                        }
                        (State::CONNECTING, EarlyConnected::Armed) => {
                            early_connected = EarlyConnected::Sent;
                            let frames = [
                                Frame::ConnState(ConnState { state, ack }),
                                Frame::ConnState(ConnState { state: State::CONNECTED, ack: 0 }),
                            ];
                            write_frames(&mut wr, &mut out, &frames).await?;
                            continue;
                        }
                        _ => {}
                    }
                    write_frames(&mut wr, &mut out, &[Frame::ConnState(ConnState { state, ack })])
                        .await?;
                }
                Some(StreamEvent::Rx(data, flags)) => {
                    send_rx(&mut wr, &mut out, data, flags, rx_limit).await?;
                }
                Some(StreamEvent::Metadata(name, value)) => {
                    let m = wire::Metadata { name: Bytes::from(name), value };
                    write_frames(&mut wr, &mut out, &[Frame::RxMetadata(m)]).await?;
                }
            },
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

/// Carries out what a client frame asked for
fn apply(stream: &crate::Stream, action: ProxyAction) {
    match action {
        ProxyAction::Payload(p) => stream.send(p.data, p.flags),
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
        // Credit only matters for h2 onward streams, which come later; `Create` is handled
        // before the link is operational.
        _ => {}
    }
}

/// Sends payload as RX_PAYLOAD frames of at most `limit` bytes, in one write
async fn send_rx<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut BytesMut,
    data: Bytes,
    flags: PayloadFlags,
    limit: usize,
) -> Result<(), LinkError> {
    let pieces = data.len().div_ceil(limit).max(1);
    let frames: Vec<Frame> = (0..pieces)
        .map(|i| {
            let piece = data.slice(i * limit..((i + 1) * limit).min(data.len()));
            let mut f = flags;
            if i > 0 {
                f = f - PayloadFlags::SOM;
            }
            if i + 1 < pieces {
                f = f - PayloadFlags::EOM;
            }
            let mut p = Payload::new(f, piece);
            p.timestamp_us = crate::clock::monotonic_us();
            Frame::RxPayload(p)
        })
        .collect();
    write_frames(wr, out, &frames).await?;
    Ok(())
}

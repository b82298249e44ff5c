//! The raw binding: an unframed byte stream
//!
//! The connection counts as established once the transport is up (TLS included). Rx chunks
//! carry no flags: raw has no message boundaries, so SOM and EOM are never set, and the flags
//! of tx chunks are ignored. A read of up to [`READ_CHUNK`] bytes becomes one rx. With
//! `"perf": true`, [`BindEvent::Perf`] comes just before [`BindEvent::Closed`].

use bytes::BytesMut;
use sstreams_core::stream::PayloadFlags;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BindContext, BindEvent};
use crate::transport::Transport;

/// Most bytes delivered in one rx
pub const READ_CHUNK: usize = 256 * 1024;

/// Bytes reserved for the first read; each read that fills the space doubles it, up to
/// [`READ_CHUNK`] (a quiet connection holds little, a bulk one reads in large gulps)
const FIRST_READ: usize = 16 * 1024;

/// Runs one raw connection until either side closes it
pub async fn run(mut cx: BindContext, transport: Transport) {
    let (mut rd, mut wr) = tokio::io::split(transport);
    if !cx.emit(BindEvent::Connected).await || !cx.emit(BindEvent::WantTx).await {
        return;
    }
    let mut want = FIRST_READ;
    let mut buf = BytesMut::with_capacity(want);
    let error = loop {
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => break None,
                Ok(n) => {
                    if n >= want {
                        want = (want * 2).min(READ_CHUNK);
                    }
                    let chunk = buf.split().freeze();
                    if !cx.emit(BindEvent::Rx(chunk, PayloadFlags::empty())).await {
                        return;
                    }
                    buf.reserve(want);
                }
                Err(e) => break Some(e.to_string()),
            },
            chunk = cx.tx.recv() => {
                let Some(chunk) = chunk else { return };
                if let Err(e) = wr.write_all(&chunk.data).await {
                    break Some(e.to_string());
                }
                if !cx.emit(BindEvent::WantTx).await {
                    return;
                }
            }
        }
    };
    let _ = wr.shutdown().await;
    // As C (RAW_CLOSE): the performance record goes just before the close.
    if cx.emit_perf().await {
        cx.emit(BindEvent::Closed { error }).await;
    }
}

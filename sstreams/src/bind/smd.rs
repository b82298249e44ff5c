//! The `_lws_smd` pseudo-binding: a stream whose "connection" is the SMD bus
//!
//! Rx: every bus message matching the stream's class mask, as one payload (16-byte header,
//! then the body) with SOM|EOM. Tx: each chunk is one message in the same format, posted on
//! the bus with the class from its header. While the bus queue is full the chunk waits
//! (retried every [`FULL_RETRY`], at most [`FULL_RETRIES`] times) and the stream takes no
//! further tx; a chunk still refused after that is dropped with a warning (the bus counts it).

use std::time::Duration;

use bytes::Bytes;
use sstreams_core::stream::PayloadFlags;

use super::{BindContext, BindEvent};
use crate::smd::{SmdError, SsBridge};

/// Wait between tries of a tx chunk the full bus refused
pub const FULL_RETRY: Duration = Duration::from_millis(1);
/// Tries of a tx chunk before it is dropped
pub const FULL_RETRIES: u32 = 2000;

/// Runs the stream's link to the bus until the bus closes or the stream goes
pub async fn run(mut cx: BindContext, mut bridge: SsBridge) {
    if !cx.emit(BindEvent::Connected).await || !cx.emit(BindEvent::WantTx).await {
        return;
    }
    let mut buf = Vec::new();
    // A tx chunk the full bus refused, and how often; rx keeps flowing meanwhile (the queue
    // may be full of this very stream's messages).
    let mut pending: Option<(Bytes, u32)> = None;
    loop {
        tokio::select! {
            open = bridge.recv_payload(&mut buf) => {
                if !open {
                    break;
                }
                let flags = PayloadFlags::SOM | PayloadFlags::EOM;
                if !cx.emit(BindEvent::Rx(Bytes::copy_from_slice(&buf), flags)).await {
                    return;
                }
            }
            chunk = cx.tx.recv(), if pending.is_none() => {
                let Some(chunk) = chunk else { return };
                pending = Some((chunk.data, 0));
            }
            () = tokio::time::sleep(FULL_RETRY), if pending.as_ref().is_some_and(|(_, n)| *n > 0) => {}
        }
        if let Some((data, tries)) = pending.take() {
            match bridge.send_payload(&data) {
                Err(SmdError::QueueFull { .. }) if tries < FULL_RETRIES => {
                    pending = Some((data, tries + 1));
                    continue;
                }
                Err(e) => tracing::warn!("_lws_smd tx dropped: {e}"),
                Ok(_) => {}
            }
            if !cx.emit(BindEvent::WantTx).await {
                return;
            }
        }
    }
    cx.emit(BindEvent::Closed { error: None }).await;
}

//! The `_lws_smd` pseudo-binding: a stream whose "connection" is the SMD bus
//!
//! Rx: every bus message matching the stream's class mask, as one payload (16-byte header,
//! then the body) with SOM|EOM. Tx: each chunk is one message in the same format, posted on
//! the bus with the class from its header. A full bus queue refuses the message with a
//! warning (the bus counts it); the stream stays up.

use bytes::Bytes;
use sstreams_core::stream::PayloadFlags;

use super::{BindContext, BindEvent};
use crate::smd::SsBridge;

/// Runs the stream's link to the bus until the bus closes or the stream goes
pub async fn run(mut cx: BindContext, mut bridge: SsBridge) {
    if !cx.emit(BindEvent::Connected).await || !cx.emit(BindEvent::WantTx).await {
        return;
    }
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            open = bridge.recv_payload(&mut buf) => {
                if !open {
                    break;
                }
                let rx = BindEvent::Rx(Bytes::copy_from_slice(&buf), PayloadFlags::SOM | PayloadFlags::EOM);
                if !cx.emit(rx).await {
                    return;
                }
            }
            chunk = cx.tx.recv() => {
                let Some(chunk) = chunk else { return };
                if let Err(e) = bridge.send_payload(&chunk.data) {
                    tracing::warn!("_lws_smd tx refused: {e}");
                }
                if !cx.emit(BindEvent::WantTx).await {
                    return;
                }
            }
        }
    }
    cx.emit(BindEvent::Closed { error: None }).await;
}

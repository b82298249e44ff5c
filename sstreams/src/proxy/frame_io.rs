//! Frames on a link socket, for both ends of the link (the proxy and proxied clients)

use std::io;

use bytes::BytesMut;
use sstreams_core::wire::{Decoder, EncodeError, Frame, MalformedFrame};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes reserved in the decoder's buffer per socket read
pub(crate) const READ_SIZE: usize = 128 * 1024;

/// Why a frame could not be read or written
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameIoError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("malformed frame: {0}")]
    Malformed(#[from] MalformedFrame),
    #[error("cannot encode a frame: {0}")]
    Encode(#[from] EncodeError),
}

/// Reads (straight into the decoder's buffer) until one frame is complete; `None` when the
/// peer closed first
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    rd: &mut R,
    decoder: &mut Decoder,
) -> Result<Option<Frame>, FrameIoError> {
    loop {
        if let Some(f) = decoder.poll_frame()? {
            return Ok(Some(f));
        }
        decoder.buffer_mut().reserve(READ_SIZE);
        if rd.read_buf(decoder.buffer_mut()).await? == 0 {
            return Ok(None);
        }
    }
}

/// Encodes `frames` into `out` (cleared first) and writes them in one write
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut BytesMut,
    frames: &[Frame],
) -> Result<(), FrameIoError> {
    out.clear();
    for f in frames {
        f.encode(out)?;
    }
    wr.write_all(out).await?;
    Ok(())
}

//! Frames on a link socket, for both ends of the link (the proxy and proxied clients)

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use sstreams_core::wire::{Decoder, EncodeError, Frame, MalformedFrame, Outbox};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes reserved in the decoder's buffer per socket read
pub(crate) const READ_SIZE: usize = 256 * 1024;

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

/// Most bytes [`WriteBatch::fill`] takes from an outbox at a time
const BATCH_BYTES: usize = 256 * 1024;

/// Most buffers in one vectored write
const MAX_SLICES: usize = 64;

/// Frames encoded for vectored writes: frame headers (and small frames) are copied into one
/// buffer, payload bytes are written from where they already are
#[derive(Debug, Default)]
pub(crate) struct WriteBatch {
    heads: BytesMut,
    segments: VecDeque<Bytes>,
    len: usize,
}

impl WriteBatch {
    /// Whether every byte taken has been written
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes frames from `outbox`, in its order, until it is empty or about [`BATCH_BYTES`]
    /// are waiting; whether any was taken
    pub(crate) fn fill(&mut self, outbox: &mut Outbox) -> Result<bool, FrameIoError> {
        let before = self.len;
        while self.len + self.heads.len() < BATCH_BYTES {
            let Some(frame) = outbox.poll_transmit() else {
                break;
            };
            let tail = frame.encode_head(&mut self.heads)?;
            if !tail.is_empty() {
                self.push_heads();
                self.len += tail.len();
                self.segments.push_back(tail);
            }
        }
        self.push_heads();
        Ok(self.len > before)
    }

    /// One vectored write of the bytes waiting; returns how many the writer took
    /// (cancel-safe: if dropped before it completes, nothing was written)
    pub(crate) async fn write<W: AsyncWrite + Unpin>(&self, wr: &mut W) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut n = 0;
        for (slot, seg) in slices.iter_mut().zip(&self.segments) {
            *slot = IoSlice::new(seg);
            n += 1;
        }
        wr.write_vectored(&slices[..n]).await
    }

    /// The writer took `n` bytes
    pub(crate) fn advance(&mut self, mut n: usize) {
        self.len -= n.min(self.len);
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            if n < front.len() {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.segments.pop_front();
        }
    }

    /// Writes everything waiting, reporting the progress to `outbox`
    pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        outbox: &mut Outbox,
    ) -> io::Result<()> {
        while !self.is_empty() {
            let n = self.write(wr).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
            outbox.handle_written(n);
        }
        Ok(())
    }

    fn push_heads(&mut self) {
        if !self.heads.is_empty() {
            let h = self.heads.split().freeze();
            self.len += h.len();
            self.segments.push_back(h);
        }
    }
}

//! Incremental decoding: frames out of arbitrarily split or coalesced bytes (spec §3.3)

use bytes::{Buf, Bytes, BytesMut};

use super::{
    Direction, Frame, FrameType, HEADER_LEN, MAX_BODY_LEN, MAX_STREAMTYPE_NAME_LEN, MalformedFrame,
    PAYLOAD_HEADER_LEN, WireError,
};

/// Incremental frame decoder for one direction of one link
///
/// Feed it whatever the socket returned with [`handle_bytes`](Self::handle_bytes), then call
/// [`poll_frame`](Self::poll_frame) until it returns `Ok(None)`. Frames may arrive split over
/// any number of reads, or several in one read.
///
/// A decoder only accepts frames travelling in its [`Direction`]: a proxy decodes
/// client→proxy frames ([`Decoder::proxy_side`]), a client proxy→client ones
/// ([`Decoder::client_side`]). The first malformed frame poisons it: `poll_frame` returns that
/// error from then on, and the link must be closed.
///
/// Memory: the buffer holds the bytes of the last `handle_bytes` call plus at most one
/// incomplete frame, which is at most `3 + max_body_len` bytes (65538 by default). A header
/// announcing a longer body is malformed as soon as its 3 bytes are in; nothing is reserved
/// for it. Decoded frames share the buffer's allocation (their byte fields are slices of it):
/// copy a field that is kept for long, such as a metadata value, so that it does not pin the
/// whole read buffer.
#[derive(Debug)]
pub struct Decoder {
    direction: Direction,
    max_body_len: usize,
    buf: BytesMut,
    failed: Option<MalformedFrame>,
}

impl Decoder {
    /// A decoder of frames travelling in `direction`
    pub fn new(direction: Direction) -> Self {
        Self {
            direction,
            max_body_len: MAX_BODY_LEN,
            buf: BytesMut::new(),
            failed: None,
        }
    }

    /// The proxy's decoder: accepts client→proxy frames only
    pub fn proxy_side() -> Self {
        Self::new(Direction::ClientToProxy)
    }

    /// The client's decoder: accepts proxy→client frames only
    pub fn client_side() -> Self {
        Self::new(Direction::ProxyToClient)
    }

    /// Largest body accepted, in bytes; longer frames are malformed
    ///
    /// Default is 65535, the most the 16-bit length can say. Values above that change nothing.
    pub fn max_body_len(&mut self, max: usize) -> &mut Self {
        self.max_body_len = max.min(MAX_BODY_LEN);
        self
    }

    /// The direction of the frames this decoder accepts
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Bytes received but not yet returned as frames
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether a malformed frame was seen; the link must be closed
    pub fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Append bytes read from the link; ignored once the decoder has failed
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The receive buffer, to read into directly instead of calling
    /// [`handle_bytes`](Self::handle_bytes) (e.g. with tokio's `AsyncReadExt::read_buf`)
    ///
    /// Append only: bytes already in the buffer belong to an incomplete frame. The caller
    /// decides how much to reserve, and so bounds the memory.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed
    ///
    /// An error is final: the same error is returned on every later call.
    #[must_use = "frames and errors must be handled"]
    pub fn poll_frame(&mut self) -> Result<Option<Frame>, MalformedFrame> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match check(self.direction, self.max_body_len, &self.buf) {
            Ok(len) => {
                let frame_type = FrameType::from_u8(self.buf[0]);
                let mut frame = self.buf.split_to(len).freeze();
                frame.advance(HEADER_LEN);
                Frame::parse(frame_type, frame).map(Some)
            }
            Err(WireError::Incomplete) => Ok(None),
            Err(WireError::Malformed(e)) => Err(e),
        };
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            self.buf = BytesMut::new();
        }
        result
    }
}

impl Frame {
    /// Decode the frame at the start of `src`, travelling in `direction`
    ///
    /// Returns the frame and the number of bytes it took; [`WireError::Incomplete`] if `src`
    /// is a valid but unfinished prefix. The body is copied; [`Decoder`] avoids the copy.
    pub fn decode(direction: Direction, src: &[u8]) -> Result<(Self, usize), WireError> {
        let len = check(direction, MAX_BODY_LEN, src)?;
        let body = Bytes::copy_from_slice(&src[HEADER_LEN..len]);
        let frame = Self::parse(FrameType::from_u8(src[0]), body)?;
        Ok((frame, len))
    }
}

/// Whether `src` starts with a whole frame, and if so its length including the header
///
/// Judges as early as it can: the type byte alone, then the header, so an impossible frame is
/// malformed before its body arrives. The body's inner structure is checked by the parse.
pub(super) fn check(direction: Direction, max_body: usize, src: &[u8]) -> Result<usize, WireError> {
    let Some(&code) = src.first() else {
        return Err(WireError::Incomplete);
    };
    let frame_type = FrameType::from_u8(code);
    match frame_type.direction() {
        Some(d) if d == direction => {}
        // The C proxy skips a PERF a client sends (spec §4.3): let it through to be ignored.
        Some(_) if frame_type == FrameType::PERF => {}
        Some(_) => {
            return Err(MalformedFrame::WrongDirection {
                frame_type,
                expected: direction,
            }
            .into());
        }
        None if frame_type.is_reserved() => {
            return Err(MalformedFrame::ReservedType(frame_type).into());
        }
        None => return Err(MalformedFrame::UnknownType(frame_type).into()),
    }
    let Some(&[hi, lo]) = src.get(1..HEADER_LEN) else {
        return Err(WireError::Incomplete);
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let (min, max) = body_len_range(frame_type);
    if len < min || len > max {
        return Err(MalformedFrame::BadLength { frame_type, len }.into());
    }
    if len > max_body {
        return Err(MalformedFrame::TooLong { len, max: max_body }.into());
    }
    if src.len() < HEADER_LEN + len {
        return Err(WireError::Incomplete);
    }
    Ok(HEADER_LEN + len)
}

/// Body lengths in bytes a known frame type can have, inclusive
fn body_len_range(frame_type: FrameType) -> (usize, usize) {
    match frame_type {
        FrameType::STREAMTYPE => (10, 9 + MAX_STREAMTYPE_NAME_LEN),
        FrameType::ONWARD_CONNECT | FrameType::DESTROYING => (0, 0),
        FrameType::TX_PAYLOAD | FrameType::RX_PAYLOAD => (PAYLOAD_HEADER_LEN, MAX_BODY_LEN),
        FrameType::TX_METADATA | FrameType::RX_METADATA => (3, MAX_BODY_LEN),
        FrameType::TX_TXCR_UPDATE
        | FrameType::RX_TXCR_UPDATE
        | FrameType::TIMEOUT_UPDATE
        | FrameType::PAYLOAD_LENGTH_HINT => (4, 4),
        FrameType::CREATE_RESULT => (5, MAX_BODY_LEN),
        FrameType::CONNSTATE => (5, 8),
        _ => (1, MAX_BODY_LEN), // PERF
    }
}

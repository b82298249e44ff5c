//! The frames of both directions, their byte layout (spec §5) and their encoder

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    Direction, EncodeError, FrameType, HEADER_LEN, MAX_BODY_LEN, MAX_METADATA_NAME_LEN,
    MAX_RIDESHARE_NAME_LEN, MAX_STREAMTYPE_NAME_LEN, MalformedFrame, PAYLOAD_HEADER_LEN,
    PROTOCOL_VERSION,
};
use crate::stream::{PayloadFlags, State};

/// One frame of the proxy link, either direction
///
/// Byte strings are [`Bytes`]: frames decoded by [`Decoder`](super::Decoder) share its buffer
/// instead of copying. Names are kept as bytes because C treats them as bytes; compare them
/// with `b"…"` literals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    // Client → proxy
    /// `0xAA`: create the stream; always the first frame of a link
    StreamType(StreamType),
    /// `0xAB`: start the onward connection (empty body)
    OnwardConnect,
    /// `0xAC`: destroy the stream (empty body); C clients close the link instead
    Destroying,
    /// `0xAD`: payload for the onward stream
    TxPayload(Payload),
    /// `0xAE`: set metadata on the onward stream
    TxMetadata(Metadata),
    /// `0xAF`: the client lets the remote peer send it this many more bytes (a signed delta)
    TxCreditUpdate(i32),
    /// `0xB0`: the onward stream's timeout, in milliseconds: 0 = the policy's `timeout_ms`,
    /// `u32::MAX` = cancel, anything else = (re)start for that long
    TimeoutUpdate(u32),
    /// `0xB1`: length in bytes of the payload the client is about to send; also asks the
    /// proxy for a write, which starts the onward connection
    PayloadLengthHint(u32),

    // Proxy → client
    /// `0x55`: payload received by the onward stream
    RxPayload(Payload),
    /// `0x56`: outcome of STREAMTYPE; always the first frame the proxy sends
    CreateResult(CreateResult),
    /// `0x57`: the onward stream's state changed
    ConnState(ConnState),
    /// `0x58`: the remote peer lets the client send this many more bytes (a signed delta)
    RxCreditUpdate(i32),
    /// `0x59`: the onward stream received a value for a policy metadata item
    RxMetadata(Metadata),
    /// `0x5B`: connection-performance JSON (at least 1 byte)
    Perf(Bytes),
}

/// Body of STREAMTYPE (`0xAA`, spec §5.1); the protocol version byte is always 1
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamType {
    /// Client process id, used by the proxy only to tag its logs (0 where there is none)
    pub pid: u32,
    /// Initial rx credit in bytes the client offers (C clients send
    /// [`DEFAULT_TX_CREDIT`](super::DEFAULT_TX_CREDIT) when unset); for the `_lws_smd`
    /// streamtype, the SMD class mask instead
    pub tx_credit: u32,
    /// Streamtype name, 1 to 31 bytes, no NUL
    pub name: Bytes,
}

/// Body of CREATE_RESULT (`0x56`, spec §5.2)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateResult {
    /// 0 = created; anything else = failed (the C proxy sends 1 and closes the link)
    pub result: u8,
    /// Buffer size in bytes the client should use for this streamtype (policy
    /// `client_buflen`; 0 = unset, the client uses 32768)
    pub client_buflen: u32,
    /// The comma-separated rideshare list exactly as sent. The C proxy writes a leading comma,
    /// then the streamtype's name, then `,name` per rideshare (`",(null)"` for `_lws_smd`);
    /// the failure frame has none. See [`rideshares`](Self::rideshares).
    pub rideshares: Bytes,
}

impl CreateResult {
    /// The frame the C proxy sends when it cannot create the stream: `56 00 05 01 00 00 00 00`
    pub fn failed() -> Self {
        Self {
            result: 1,
            client_buflen: 0,
            rideshares: Bytes::new(),
        }
    }

    /// Whether the proxy created the stream
    pub fn is_ok(&self) -> bool {
        self.result == 0
    }

    /// The non-empty names of the rideshare list, in order
    pub fn rideshare_names(&self) -> impl Iterator<Item = &[u8]> {
        self.rideshares
            .split(|&b| b == b',')
            .filter(|n| !n.is_empty())
    }
}

/// Body of CONNSTATE (`0x57`, spec §5.3)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnState {
    /// The new state; sent as 1 byte when below 256, else as a big-endian u32
    pub state: State,
    /// Argument of the state callback (the C proxy sends 0, or 1 for UNREACHABLE caused by an
    /// unreachable DNS server)
    pub ack: u32,
}

/// Body of METADATA in either direction (`0xAE`, `0x59`, spec §5.6)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Metadata name as declared in the policy, 1 to 30 bytes, no NUL
    pub name: Bytes,
    /// Value, at least 1 byte, binary-safe
    pub value: Bytes,
}

/// Body of TX_PAYLOAD (`0xAD`) and RX_PAYLOAD (`0x55`), spec §5.4
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Payload flags; [`PayloadFlags::RIDESHARE`] is set exactly when `rideshare` is `Some`
    pub flags: PayloadFlags,
    /// Informational: on TX, µs between the app's request and the write; on RX, 0
    pub latency_us: u32,
    /// Informational: the sender's monotonic clock in µs when it wrote or queued the frame
    pub timestamp_us: u64,
    /// Rideshare streamtype this chunk belongs to (1 to 31 bytes), only with the RIDESHARE flag
    pub rideshare: Option<Bytes>,
    /// The payload bytes; may be empty
    pub data: Bytes,
}

impl Payload {
    /// A payload with these flags and data, no rideshare and zero informational fields
    pub fn new(flags: PayloadFlags, data: Bytes) -> Self {
        Self {
            flags,
            latency_us: 0,
            timestamp_us: 0,
            rideshare: None,
            data,
        }
    }

    fn body_len(&self) -> usize {
        PAYLOAD_HEADER_LEN + self.rideshare.as_ref().map_or(0, |r| 1 + r.len()) + self.data.len()
    }

    fn validate(&self) -> Result<(), EncodeError> {
        match (
            &self.rideshare,
            self.flags.contains(PayloadFlags::RIDESHARE),
        ) {
            (None, false) => Ok(()),
            (Some(r), true) if (1..=MAX_RIDESHARE_NAME_LEN).contains(&r.len()) => Ok(()),
            (Some(r), true) => Err(EncodeError::RideshareName { len: r.len() }),
            _ => Err(EncodeError::RideshareMismatch),
        }
    }

    /// Everything before the payload bytes
    fn write_head(&self, dst: &mut BytesMut) {
        dst.put_u32(self.flags.bits());
        dst.put_u32(self.latency_us);
        dst.put_u64(self.timestamp_us);
        if let Some(r) = &self.rideshare {
            // Length checked by `validate` (≤ 31).
            dst.put_u8(r.len() as u8);
            dst.put_slice(r);
        }
    }

    fn parse(frame_type: FrameType, body: Bytes) -> Result<Self, MalformedFrame> {
        let len = body.len();
        if len < PAYLOAD_HEADER_LEN {
            return Err(MalformedFrame::BadLength { frame_type, len });
        }
        let flags = PayloadFlags::from_bits_retain(be_u32(&body[0..4]));
        let latency_us = be_u32(&body[4..8]);
        let timestamp_us = u64::from_be_bytes(body[8..16].try_into().unwrap_or_default());
        let (rideshare, data) = if flags.contains(PayloadFlags::RIDESHARE) {
            let Some(&r) = body.get(PAYLOAD_HEADER_LEN) else {
                return Err(MalformedFrame::BadLength { frame_type, len });
            };
            let start = PAYLOAD_HEADER_LEN + 1;
            let end = start + usize::from(r);
            if r == 0 || usize::from(r) > MAX_RIDESHARE_NAME_LEN || end > len {
                return Err(MalformedFrame::RideshareLength {
                    len: r,
                    body_len: len,
                });
            }
            (Some(body.slice(start..end)), body.slice(end..))
        } else {
            (None, body.slice(PAYLOAD_HEADER_LEN..))
        };
        Ok(Self {
            flags,
            latency_us,
            timestamp_us,
            rideshare,
            data,
        })
    }
}

impl Metadata {
    fn validate(&self) -> Result<(), EncodeError> {
        if !(1..=MAX_METADATA_NAME_LEN).contains(&self.name.len()) {
            return Err(EncodeError::MetadataName {
                len: self.name.len(),
            });
        }
        if self.value.is_empty() {
            return Err(EncodeError::EmptyMetadataValue);
        }
        Ok(())
    }

    fn parse(frame_type: FrameType, body: Bytes) -> Result<Self, MalformedFrame> {
        let body_len = body.len();
        if body_len < 3 {
            return Err(MalformedFrame::BadLength {
                frame_type,
                len: body_len,
            });
        }
        let k = body[0];
        // 1 ≤ k ≤ 30, and at least one value byte after the name.
        if k == 0 || usize::from(k) > MAX_METADATA_NAME_LEN || 1 + usize::from(k) >= body_len {
            return Err(MalformedFrame::MetadataNameLength { len: k, body_len });
        }
        let end = 1 + usize::from(k);
        Ok(Self {
            name: body.slice(1..end),
            value: body.slice(end..),
        })
    }
}

impl Frame {
    /// The type code this frame is sent with
    pub fn frame_type(&self) -> FrameType {
        match self {
            Self::StreamType(_) => FrameType::STREAMTYPE,
            Self::OnwardConnect => FrameType::ONWARD_CONNECT,
            Self::Destroying => FrameType::DESTROYING,
            Self::TxPayload(_) => FrameType::TX_PAYLOAD,
            Self::TxMetadata(_) => FrameType::TX_METADATA,
            Self::TxCreditUpdate(_) => FrameType::TX_TXCR_UPDATE,
            Self::TimeoutUpdate(_) => FrameType::TIMEOUT_UPDATE,
            Self::PayloadLengthHint(_) => FrameType::PAYLOAD_LENGTH_HINT,
            Self::RxPayload(_) => FrameType::RX_PAYLOAD,
            Self::CreateResult(_) => FrameType::CREATE_RESULT,
            Self::ConnState(_) => FrameType::CONNSTATE,
            Self::RxCreditUpdate(_) => FrameType::RX_TXCR_UPDATE,
            Self::RxMetadata(_) => FrameType::RX_METADATA,
            Self::Perf(_) => FrameType::PERF,
        }
    }

    /// The direction this frame travels in
    pub fn direction(&self) -> Direction {
        match self {
            Self::StreamType(_)
            | Self::OnwardConnect
            | Self::Destroying
            | Self::TxPayload(_)
            | Self::TxMetadata(_)
            | Self::TxCreditUpdate(_)
            | Self::TimeoutUpdate(_)
            | Self::PayloadLengthHint(_) => Direction::ClientToProxy,
            _ => Direction::ProxyToClient,
        }
    }

    /// Length in bytes of the body [`encode`](Self::encode) writes after the 3-byte header
    pub fn body_len(&self) -> usize {
        match self {
            Self::StreamType(s) => 9 + s.name.len(),
            Self::OnwardConnect | Self::Destroying => 0,
            Self::TxPayload(p) | Self::RxPayload(p) => p.body_len(),
            Self::TxMetadata(m) | Self::RxMetadata(m) => 1 + m.name.len() + m.value.len(),
            Self::TxCreditUpdate(_)
            | Self::TimeoutUpdate(_)
            | Self::PayloadLengthHint(_)
            | Self::RxCreditUpdate(_) => 4,
            Self::CreateResult(c) => 5 + c.rideshares.len(),
            Self::ConnState(c) if c.state.as_u32() < 256 => 5,
            Self::ConnState(_) => 8,
            Self::Perf(json) => json.len(),
        }
    }

    /// Length in bytes of the whole encoded frame, header included
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body_len()
    }

    /// Check the limits a C receiver enforces, without writing anything
    pub fn validate(&self) -> Result<(), EncodeError> {
        match self {
            Self::StreamType(s) if !(1..=MAX_STREAMTYPE_NAME_LEN).contains(&s.name.len()) => {
                return Err(EncodeError::StreamTypeName { len: s.name.len() });
            }
            Self::TxPayload(p) | Self::RxPayload(p) => p.validate()?,
            Self::TxMetadata(m) | Self::RxMetadata(m) => m.validate()?,
            Self::Perf(json) if json.is_empty() => return Err(EncodeError::EmptyPerf),
            _ => {}
        }
        let len = self.body_len();
        if len > MAX_BODY_LEN {
            return Err(EncodeError::BodyTooLong { len });
        }
        Ok(())
    }

    /// Append the frame's bytes to `dst`, exactly as the C implementation writes them
    ///
    /// Nothing is written if the frame breaks a limit (see [`EncodeError`]).
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.validate()?;
        dst.reserve(self.encoded_len());
        let tail = self.write_head(dst);
        dst.put_slice(&tail);
        Ok(())
    }

    /// As [`encode`](Self::encode), but leaves out the bytes at the end of the frame that are
    /// already [`Bytes`] (the data of a payload frame, the JSON of PERF) and returns them
    /// instead (empty for other frames)
    ///
    /// Writing the bytes appended to `dst` and then the returned ones gives exactly what
    /// `encode` writes, without copying the payload: made for vectored writes.
    pub fn encode_head(&self, dst: &mut BytesMut) -> Result<Bytes, EncodeError> {
        self.validate()?;
        Ok(self.write_head(dst))
    }

    /// Writes all but the trailing [`Bytes`] of a valid frame, and returns those
    fn write_head(&self, dst: &mut BytesMut) -> Bytes {
        let body_len = self.body_len();
        dst.put_u8(self.frame_type().as_u8());
        // `validate` checked body_len ≤ 65535.
        dst.put_u16(body_len as u16);
        match self {
            Self::StreamType(s) => {
                dst.put_u8(PROTOCOL_VERSION);
                dst.put_u32(s.pid);
                dst.put_u32(s.tx_credit);
                dst.put_slice(&s.name);
            }
            Self::OnwardConnect | Self::Destroying => {}
            Self::TxPayload(p) | Self::RxPayload(p) => {
                p.write_head(dst);
                return p.data.clone();
            }
            Self::TxMetadata(m) | Self::RxMetadata(m) => {
                // `validate` checked 1 ≤ name length ≤ 30.
                dst.put_u8(m.name.len() as u8);
                dst.put_slice(&m.name);
                dst.put_slice(&m.value);
            }
            Self::TxCreditUpdate(v) | Self::RxCreditUpdate(v) => dst.put_i32(*v),
            Self::TimeoutUpdate(v) | Self::PayloadLengthHint(v) => dst.put_u32(*v),
            Self::CreateResult(c) => {
                dst.put_u8(c.result);
                dst.put_u32(c.client_buflen);
                dst.put_slice(&c.rideshares);
            }
            Self::ConnState(c) => {
                let state = c.state.as_u32();
                if state < 256 {
                    dst.put_u8(state as u8);
                } else {
                    dst.put_u32(state);
                }
                dst.put_u32(c.ack);
            }
            Self::Perf(json) => return json.clone(),
        }
        Bytes::new()
    }

    /// The frame's bytes in a new buffer; see [`encode`](Self::encode)
    pub fn to_bytes(&self) -> Result<Bytes, EncodeError> {
        let mut dst = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut dst)?;
        Ok(dst.freeze())
    }

    /// Parse one body of a known, non-reserved type (`frame_type.direction()` is `Some`)
    pub(super) fn parse(frame_type: FrameType, body: Bytes) -> Result<Self, MalformedFrame> {
        let len = body.len();
        let bad_len = || MalformedFrame::BadLength { frame_type, len };
        Ok(match frame_type {
            FrameType::STREAMTYPE => {
                if !(10..=9 + MAX_STREAMTYPE_NAME_LEN).contains(&len) {
                    return Err(bad_len());
                }
                if body[0] != PROTOCOL_VERSION {
                    return Err(MalformedFrame::UnsupportedVersion(body[0]));
                }
                Self::StreamType(StreamType {
                    pid: be_u32(&body[1..5]),
                    tx_credit: be_u32(&body[5..9]),
                    name: body.slice(9..),
                })
            }
            FrameType::ONWARD_CONNECT | FrameType::DESTROYING if len != 0 => {
                return Err(bad_len());
            }
            FrameType::ONWARD_CONNECT => Self::OnwardConnect,
            FrameType::DESTROYING => Self::Destroying,
            FrameType::TX_PAYLOAD => Self::TxPayload(Payload::parse(frame_type, body)?),
            FrameType::RX_PAYLOAD => Self::RxPayload(Payload::parse(frame_type, body)?),
            FrameType::TX_METADATA => Self::TxMetadata(Metadata::parse(frame_type, body)?),
            FrameType::RX_METADATA => Self::RxMetadata(Metadata::parse(frame_type, body)?),
            FrameType::TX_TXCR_UPDATE
            | FrameType::RX_TXCR_UPDATE
            | FrameType::TIMEOUT_UPDATE
            | FrameType::PAYLOAD_LENGTH_HINT => {
                if len != 4 {
                    return Err(bad_len());
                }
                let v = be_u32(&body);
                match frame_type {
                    FrameType::TX_TXCR_UPDATE => Self::TxCreditUpdate(v as i32),
                    FrameType::RX_TXCR_UPDATE => Self::RxCreditUpdate(v as i32),
                    FrameType::TIMEOUT_UPDATE => Self::TimeoutUpdate(v),
                    _ => Self::PayloadLengthHint(v),
                }
            }
            FrameType::CREATE_RESULT => {
                if len < 5 {
                    return Err(bad_len());
                }
                Self::CreateResult(CreateResult {
                    result: body[0],
                    client_buflen: be_u32(&body[1..5]),
                    rideshares: body.slice(5..),
                })
            }
            FrameType::CONNSTATE => {
                if !(5..=8).contains(&len) {
                    return Err(bad_len());
                }
                // L − 4 state bytes, big-endian, then the u32 ack (C client accepts 1 to 4).
                let (state, ack) = body.split_at(len - 4);
                let state = state.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
                Self::ConnState(ConnState {
                    state: State::from_u32(state).ok_or(MalformedFrame::ZeroState)?,
                    ack: be_u32(ack),
                })
            }
            FrameType::PERF => {
                if len == 0 {
                    return Err(bad_len());
                }
                Self::Perf(body)
            }
            _ => return Err(MalformedFrame::UnknownType(frame_type)),
        })
    }
}

/// A big-endian u32 from exactly 4 bytes (callers slice 4 bytes)
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().unwrap_or_default())
}

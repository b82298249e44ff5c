//! One SMD message as a value

use std::fmt;

use super::{MAX_PAYLOAD, SS_HEADER_LEN, SmdClass, SmdFormatError, SsHeader};

/// An SMD message: class, timestamp and a body of at most 384 bytes, stored inline
///
/// The body lives inside the value (no heap allocation), so a message can be created, queued,
/// copied to a receiver and dropped without touching the allocator. The value is about 400
/// bytes: pass it by reference where you can.
#[derive(Clone)]
pub struct SmdMessage {
    class: SmdClass,
    timestamp_us: u64,
    len: u16,
    body: [u8; MAX_PAYLOAD],
}

impl SmdMessage {
    /// A message with a copy of `body`
    ///
    /// Fails with [`SmdFormatError::PayloadTooLarge`] if `body` is longer than
    /// [`MAX_PAYLOAD`] (384 bytes).
    pub fn new(class: SmdClass, timestamp_us: u64, body: &[u8]) -> Result<Self, SmdFormatError> {
        let mut msg = Self::empty();
        msg.set(class, timestamp_us, body)?;
        Ok(msg)
    }

    /// A message with no class, timestamp 0 and an empty body, to be filled by [`Self::set`]
    pub const fn empty() -> Self {
        Self {
            class: SmdClass::NONE,
            timestamp_us: 0,
            len: 0,
            body: [0; MAX_PAYLOAD],
        }
    }

    /// Overwrite this message in place (no allocation)
    ///
    /// On error the message is left unchanged.
    pub fn set(
        &mut self,
        class: SmdClass,
        timestamp_us: u64,
        body: &[u8],
    ) -> Result<(), SmdFormatError> {
        if body.len() > MAX_PAYLOAD {
            return Err(SmdFormatError::PayloadTooLarge { len: body.len() });
        }
        self.class = class;
        self.timestamp_us = timestamp_us;
        self.body[..body.len()].copy_from_slice(body);
        // Fits: checked against MAX_PAYLOAD (384) above.
        self.len = body.len() as u16;
        Ok(())
    }

    /// Parse an `_lws_smd` stream payload: 16-byte header then body
    pub fn from_ss_payload(payload: &[u8]) -> Result<Self, SmdFormatError> {
        let (header, body) = SsHeader::decode(payload)?;
        Self::new(header.class, header.timestamp_us, body)
    }

    /// Append this message as an `_lws_smd` stream payload (header then body) to `out`
    pub fn write_ss_payload(&self, out: &mut Vec<u8>) {
        out.reserve(SS_HEADER_LEN + self.payload().len());
        out.extend_from_slice(&self.header().encode());
        out.extend_from_slice(self.payload());
    }

    /// The message class
    pub fn class(&self) -> SmdClass {
        self.class
    }

    /// When the message was created: microseconds of the monotonic clock
    pub fn timestamp_us(&self) -> u64 {
        self.timestamp_us
    }

    /// The body
    pub fn payload(&self) -> &[u8] {
        &self.body[..usize::from(self.len)]
    }

    /// The header this message carries on an `_lws_smd` stream
    pub fn header(&self) -> SsHeader {
        SsHeader {
            class: self.class,
            timestamp_us: self.timestamp_us,
        }
    }
}

impl Default for SmdMessage {
    fn default() -> Self {
        Self::empty()
    }
}

impl PartialEq for SmdMessage {
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class
            && self.timestamp_us == other.timestamp_us
            && self.payload() == other.payload()
    }
}

impl Eq for SmdMessage {}

impl fmt::Debug for SmdMessage {
    // The body is application data: show its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmdMessage")
            .field("class", &self.class)
            .field("timestamp_us", &self.timestamp_us)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_payload_round_trip() {
        let body = b"{\"state\":\"INITIALIZED\"}";
        let msg = SmdMessage::new(SmdClass::SYSTEM_STATE, 3_139_600_721_554, body).unwrap();
        let mut out = Vec::new();
        msg.write_ss_payload(&mut out);
        assert_eq!(out.len(), 39); // as in the C example's log: "myss_rx: len 39"
        assert_eq!(
            &out[..16],
            &[
                0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x02, 0xda, 0xfe, 0xc9, 0x26, 0x92
            ]
        );
        assert_eq!(&out[16..], body);
        assert_eq!(SmdMessage::from_ss_payload(&out).unwrap(), msg);
    }

    #[test]
    fn max_payload_is_inclusive() {
        let body = [b'x'; MAX_PAYLOAD];
        assert_eq!(
            SmdMessage::new(SmdClass::NETWORK, 0, &body)
                .unwrap()
                .payload()
                .len(),
            384
        );
        let body = [b'x'; MAX_PAYLOAD + 1];
        assert_eq!(
            SmdMessage::new(SmdClass::NETWORK, 0, &body),
            Err(SmdFormatError::PayloadTooLarge { len: 385 })
        );
    }

    #[test]
    fn short_ss_payload_is_rejected() {
        assert_eq!(
            SmdMessage::from_ss_payload(&[0; 15]),
            Err(SmdFormatError::ShortHeader { len: 15 })
        );
    }

    proptest::proptest! {
        #[test]
        fn ss_payload_round_trips_any_message(
            class: u32,
            ts: u64,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..=MAX_PAYLOAD),
        ) {
            let msg = SmdMessage::new(SmdClass::from_bits(class), ts, &body).unwrap();
            let mut out = Vec::new();
            msg.write_ss_payload(&mut out);
            proptest::prop_assert_eq!(out.len(), SS_HEADER_LEN + body.len());
            proptest::prop_assert_eq!(SmdMessage::from_ss_payload(&out).unwrap(), msg);
        }
    }

    #[test]
    fn set_failure_leaves_message_unchanged() {
        let mut msg = SmdMessage::new(SmdClass::METRICS, 7, b"abc").unwrap();
        assert!(msg.set(SmdClass::NETWORK, 9, &[0; 400]).is_err());
        assert_eq!(msg.class(), SmdClass::METRICS);
        assert_eq!(msg.payload(), b"abc");
    }
}

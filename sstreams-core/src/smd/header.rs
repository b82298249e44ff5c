//! The 16-byte header of SMD messages carried as secure-stream payload

use super::{SS_HEADER_LEN, SmdClass, SmdFormatError};

/// Header before the body of every `_lws_smd` stream payload, in both directions
///
/// Layout: bytes 0..8 the class as a big-endian u64 (only the low 32 bits are meaningful: the
/// upper half is written as zero and ignored when read), bytes 8..16 the timestamp in
/// microseconds of the sender's monotonic clock as a big-endian u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsHeader {
    /// Message class
    pub class: SmdClass,
    /// Monotonic timestamp, microseconds
    pub timestamp_us: u64,
}

impl SsHeader {
    /// The 16 header bytes
    pub fn encode(&self) -> [u8; SS_HEADER_LEN] {
        let mut out = [0u8; SS_HEADER_LEN];
        out[..8].copy_from_slice(&u64::from(self.class.bits()).to_be_bytes());
        out[8..].copy_from_slice(&self.timestamp_us.to_be_bytes());
        out
    }

    /// Split a stream payload into its header and the body after it
    pub fn decode(payload: &[u8]) -> Result<(Self, &[u8]), SmdFormatError> {
        let Some((head, body)) = payload.split_first_chunk::<SS_HEADER_LEN>() else {
            return Err(SmdFormatError::ShortHeader { len: payload.len() });
        };
        let (class, ts) = head.split_at(8);
        let class = u64::from_be_bytes(class.try_into().unwrap_or_default());
        let timestamp_us = u64::from_be_bytes(ts.try_into().unwrap_or_default());
        let header = Self {
            // Truncation intended: the upper 32 bits carry nothing (see type docs).
            class: SmdClass::from_bits(class as u32),
            timestamp_us,
        };
        Ok((header, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_c_capture() {
        // From the C example's log: SYSTEM_STATE message stamped 3139600721554 µs.
        let h = SsHeader {
            class: SmdClass::SYSTEM_STATE,
            timestamp_us: 3_139_600_721_554,
        };
        assert_eq!(
            h.encode(),
            [
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, // class, BE u64
                0x00, 0x00, 0x02, 0xda, 0xfe, 0xc9, 0x26, 0x92, // timestamp µs, BE u64
            ]
        );
    }

    #[test]
    fn decode_splits_body_and_ignores_upper_class_bits() {
        let mut bytes = vec![
            0xde, 0xad, 0xbe, 0xef, 0x80, 0x00, 0x00,
            0x04, // class: junk upper half, 0x80000004
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // timestamp 256
        ];
        bytes.extend_from_slice(b"{\"x\":1}");
        let (h, body) = SsHeader::decode(&bytes).unwrap();
        assert_eq!(h.class.bits(), 0x8000_0004);
        assert_eq!(h.timestamp_us, 256);
        assert_eq!(body, b"{\"x\":1}");
    }

    #[test]
    fn decode_exact_header_gives_empty_body() {
        let h = SsHeader {
            class: SmdClass::NETWORK,
            timestamp_us: u64::MAX,
        };
        let bytes = h.encode();
        assert_eq!(SsHeader::decode(&bytes).unwrap(), (h, &[][..]));
    }

    #[test]
    fn short_input_is_a_typed_error() {
        for len in 0..SS_HEADER_LEN {
            let bytes = vec![0u8; len];
            assert_eq!(
                SsHeader::decode(&bytes),
                Err(SmdFormatError::ShortHeader { len })
            );
        }
    }
}

//! Payload flags passed with every rx and tx chunk (C `LWSSS_FLAG_*`, a `u32` on the proxy wire)

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Sub};

/// A set of payload flags
///
/// A bit set over the wire value: unknown bits are kept, so a value read from the proxy link
/// is written back unchanged. Combine with `|`, test with [`contains`](Self::contains).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PayloadFlags(u32);

impl PayloadFlags {
    /// This chunk starts a message
    pub const SOM: Self = Self(0x01);
    /// This chunk ends a message
    pub const EOM: Self = Self(0x02);
    /// Not real data: poll for rx if the protocol needs it
    pub const POLL: Self = Self(0x04);
    /// Zero-length marker: a group of related messages starts
    pub const RELATED_START: Self = Self(0x08);
    /// Zero-length marker: the group of related messages ends
    pub const RELATED_END: Self = Self(0x10);
    /// Serialized rx: the payload is prefixed with the rideshare name length and name
    pub const RIDESHARE: Self = Self(0x20);
    /// The rx chunk is connection-performance JSON (streams with `"perf": true`)
    pub const PERF_JSON: Self = Self(0x40);

    const NAMED: [(Self, &'static str); 7] = [
        (Self::SOM, "SOM"),
        (Self::EOM, "EOM"),
        (Self::POLL, "POLL"),
        (Self::RELATED_START, "RELATED_START"),
        (Self::RELATED_END, "RELATED_END"),
        (Self::RIDESHARE, "RIDESHARE"),
        (Self::PERF_JSON, "PERF_JSON"),
    ];

    /// No flags
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The flags with wire value `bits`, unknown bits included
    pub const fn from_bits_retain(bits: u32) -> Self {
        Self(bits)
    }

    /// The wire value
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for PayloadFlags {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for PayloadFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for PayloadFlags {
    type Output = Self;

    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl Sub for PayloadFlags {
    type Output = Self;

    /// The flags of `self` that are not in `rhs`
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 & !rhs.0)
    }
}

/// `SOM|EOM`; unknown bits as hex; `(empty)` for no flags
impl fmt::Debug for PayloadFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(empty)");
        }
        let mut rest = *self;
        let mut first = true;
        for (flag, name) in Self::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
                rest = rest - flag;
            }
        }
        if !rest.is_empty() {
            if !first {
                f.write_str("|")?;
            }
            write!(f, "{:#x}", rest.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_values() {
        let values = [
            (PayloadFlags::SOM, 1),
            (PayloadFlags::EOM, 2),
            (PayloadFlags::POLL, 4),
            (PayloadFlags::RELATED_START, 8),
            (PayloadFlags::RELATED_END, 16),
            (PayloadFlags::RIDESHARE, 32),
            (PayloadFlags::PERF_JSON, 64),
        ];
        for (flag, bits) in values {
            assert_eq!(flag.bits(), bits);
        }
    }

    #[test]
    fn set_operations_and_debug() {
        let f = PayloadFlags::SOM | PayloadFlags::EOM;
        assert_eq!(f.bits(), 3);
        assert!(f.contains(PayloadFlags::SOM));
        assert!(!f.contains(PayloadFlags::SOM | PayloadFlags::POLL));
        assert_eq!(f & PayloadFlags::EOM, PayloadFlags::EOM);
        assert_eq!(f - PayloadFlags::SOM, PayloadFlags::EOM);
        assert_eq!(format!("{f:?}"), "SOM|EOM");
        assert_eq!(format!("{:?}", PayloadFlags::empty()), "(empty)");
        let odd = PayloadFlags::from_bits_retain(0x102);
        assert_eq!(odd.bits(), 0x102);
        assert_eq!(format!("{odd:?}"), "EOM|0x100");
        let mut g = PayloadFlags::default();
        g |= PayloadFlags::PERF_JSON;
        assert_eq!(g, PayloadFlags::PERF_JSON);
    }
}

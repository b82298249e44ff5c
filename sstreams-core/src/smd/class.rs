//! Message classes: a 32-bit bitfield

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign};

/// A set of SMD message classes (C `lws_smd_class_t`)
///
/// A message normally carries one class bit; a participant's filter may carry many. Delivery
/// happens when the two share at least one bit ([`SmdClass::intersects`]). Unknown bits are
/// kept as they are, so a value read from a peer round-trips unchanged.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SmdClass(u32);

impl SmdClass {
    /// No class: a filter that matches nothing
    pub const NONE: Self = Self(0);
    /// User interaction: buttons, touch, … (C `LWSSMDCL_INTERACTION`)
    pub const INTERACTION: Self = Self(0x0000_0001);
    /// System state changes and policy updates (C `LWSSMDCL_SYSTEM_STATE`)
    pub const SYSTEM_STATE: Self = Self(0x0000_0002);
    /// Link and route changes, captive-portal detection, external IP (C `LWSSMDCL_NETWORK`)
    pub const NETWORK: Self = Self(0x0000_0004);
    /// Metrics dumps (C `LWSSMDCL_METRICS`)
    pub const METRICS: Self = Self(0x0000_0008);
    /// Every class: a filter that matches any message
    pub const ALL: Self = Self(0xffff_ffff);

    /// Bit number of the first of the 8 private user classes (C `LWSSMDCL_USER_BASE_BITNUM`)
    pub const USER_BASE_BITNUM: u32 = 24;

    /// The class set with exactly these bits
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The user class `n` (0 ≤ n < 8), i.e. bit `24 + n`; `None` if `n` is out of range
    pub const fn user(n: u32) -> Option<Self> {
        if n < 32 - Self::USER_BASE_BITNUM {
            Some(Self(1 << (Self::USER_BASE_BITNUM + n)))
        } else {
            None
        }
    }

    /// The raw bitfield
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether no bit is set
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether the two sets share at least one class (the delivery rule)
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether every class in `other` is also in `self`
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for SmdClass {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for SmdClass {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for SmdClass {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl fmt::Debug for SmdClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMED: [(SmdClass, &str); 4] = [
            (SmdClass::INTERACTION, "INTERACTION"),
            (SmdClass::SYSTEM_STATE, "SYSTEM_STATE"),
            (SmdClass::NETWORK, "NETWORK"),
            (SmdClass::METRICS, "METRICS"),
        ];
        if self.0 == 0 {
            return f.write_str("SmdClass(NONE)");
        }
        f.write_str("SmdClass(")?;
        let mut rest = self.0;
        let mut first = true;
        for (class, name) in NAMED {
            if self.contains(class) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                rest &= !class.0;
                first = false;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#010x}")?;
        }
        f.write_str(")")
    }
}

impl fmt::Display for SmdClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_values() {
        assert_eq!(SmdClass::INTERACTION.bits(), 1 << 0);
        assert_eq!(SmdClass::SYSTEM_STATE.bits(), 1 << 1);
        assert_eq!(SmdClass::NETWORK.bits(), 1 << 2);
        assert_eq!(SmdClass::METRICS.bits(), 1 << 3);
        assert_eq!(SmdClass::user(0).map(SmdClass::bits), Some(0x0100_0000));
        assert_eq!(SmdClass::user(7).map(SmdClass::bits), Some(0x8000_0000));
        assert_eq!(SmdClass::user(8), None);
    }

    #[test]
    fn delivery_rule() {
        let filter = SmdClass::SYSTEM_STATE | SmdClass::METRICS | SmdClass::NETWORK;
        assert_eq!(filter.bits(), 0xe);
        assert!(filter.intersects(SmdClass::NETWORK));
        assert!(!filter.intersects(SmdClass::INTERACTION));
        assert!(!SmdClass::NONE.intersects(SmdClass::ALL));
        assert!(SmdClass::ALL.contains(filter));
    }

    #[test]
    fn debug_names_known_and_unknown_bits() {
        let c = SmdClass::NETWORK | SmdClass::INTERACTION | SmdClass::from_bits(0x100);
        assert_eq!(
            format!("{c:?}"),
            "SmdClass(INTERACTION | NETWORK | 0x00000100)"
        );
        assert_eq!(format!("{}", SmdClass::NETWORK), "0x4");
    }
}

//! Frame type codes and the direction each travels in

use std::fmt;

/// Which way a frame travels on the link
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the proxied client to the proxy (C `LWSSS_SER_TXPRE_*`, codes from 0xAA)
    ClientToProxy,
    /// From the proxy to the proxied client (C `LWSSS_SER_RXPRE_*`, codes from 0x55)
    ProxyToClient,
}

/// The first byte of a frame (C `LWSSS_SER_*`, `lws-secure-streams-serialization.h`)
///
/// A newtype over the wire value: unknown codes are representable, so an error can say which
/// byte it saw. Compare with the associated constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameType(u8);

impl FrameType {
    /// Payload received by the onward stream (P→C, 0x55)
    pub const RX_PAYLOAD: Self = Self(0x55);
    /// Outcome of STREAMTYPE (P→C, 0x56)
    pub const CREATE_RESULT: Self = Self(0x56);
    /// The onward stream's state changed (P→C, 0x57)
    pub const CONNSTATE: Self = Self(0x57);
    /// The remote peer granted the client tx credit (P→C, 0x58)
    pub const RX_TXCR_UPDATE: Self = Self(0x58);
    /// Metadata received by the onward stream (P→C, 0x59)
    pub const RX_METADATA: Self = Self(0x59);
    /// Reserved, never sent; C clients hang up on it (P→C, 0x5A)
    pub const TLSNEG_ENCLAVE_SIGN: Self = Self(0x5a);
    /// Connection-performance JSON (P→C, 0x5B)
    pub const PERF: Self = Self(0x5b);
    /// Create the stream: version, pid, credit or SMD mask, name (C→P, 0xAA)
    pub const STREAMTYPE: Self = Self(0xaa);
    /// Start the onward connection (C→P, 0xAB)
    pub const ONWARD_CONNECT: Self = Self(0xab);
    /// Destroy the stream; the C proxy hangs up, the C client never sends it (C→P, 0xAC)
    pub const DESTROYING: Self = Self(0xac);
    /// Payload for the onward stream (C→P, 0xAD)
    pub const TX_PAYLOAD: Self = Self(0xad);
    /// Set metadata on the onward stream (C→P, 0xAE)
    pub const TX_METADATA: Self = Self(0xae);
    /// The client grants the remote peer rx credit (C→P, 0xAF)
    pub const TX_TXCR_UPDATE: Self = Self(0xaf);
    /// Start, reset or cancel the onward stream's timeout (C→P, 0xB0)
    pub const TIMEOUT_UPDATE: Self = Self(0xb0);
    /// Length of the payload about to be sent (C→P, 0xB1)
    pub const PAYLOAD_LENGTH_HINT: Self = Self(0xb1);
    /// Reserved, never sent; C proxies hang up on it (C→P, 0xB2)
    pub const TLSNEG_ENCLAVE_SIGNED: Self = Self(0xb2);
    /// Reserved, never sent; C proxies hang up on it (C→P, 0xB3)
    pub const LINK_VALIDITY_PROBE: Self = Self(0xb3);

    /// The type with wire value `code`, known or not
    pub const fn from_u8(code: u8) -> Self {
        Self(code)
    }

    /// The wire value
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// The direction of a code this library can decode; `None` for unknown and reserved codes
    pub const fn direction(self) -> Option<Direction> {
        match self.0 {
            0x55..=0x59 | 0x5b => Some(Direction::ProxyToClient),
            0xaa..=0xb1 => Some(Direction::ClientToProxy),
            _ => None,
        }
    }

    /// Whether this is one of the codes C reserves but never implemented (0x5A, 0xB2, 0xB3)
    pub const fn is_reserved(self) -> bool {
        matches!(self.0, 0x5a | 0xb2 | 0xb3)
    }

    /// The C name without the `LWSSS_SER_` prefix, for the codes C defines
    pub const fn short_name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x55 => "RXPRE_RX_PAYLOAD",
            0x56 => "RXPRE_CREATE_RESULT",
            0x57 => "RXPRE_CONNSTATE",
            0x58 => "RXPRE_TXCR_UPDATE",
            0x59 => "RXPRE_METADATA",
            0x5a => "RXPRE_TLSNEG_ENCLAVE_SIGN",
            0x5b => "RXPRE_PERF",
            0xaa => "TXPRE_STREAMTYPE",
            0xab => "TXPRE_ONWARD_CONNECT",
            0xac => "TXPRE_DESTROYING",
            0xad => "TXPRE_TX_PAYLOAD",
            0xae => "TXPRE_METADATA",
            0xaf => "TXPRE_TXCR_UPDATE",
            0xb0 => "TXPRE_TIMEOUT_UPDATE",
            0xb1 => "TXPRE_PAYLOAD_LENGTH_HINT",
            0xb2 => "TXPRE_TLSNEG_ENCLAVE_SIGNED",
            0xb3 => "TXPRE_LINK_VALIDITY_PROBE",
            _ => return None,
        })
    }
}

/// `RXPRE_CONNSTATE(0x57)`, or `0xf0` for codes C does not define
impl fmt::Debug for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short_name() {
            Some(name) => write!(f, "{name}({:#04x})", self.0),
            None => write!(f, "{:#04x}", self.0),
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

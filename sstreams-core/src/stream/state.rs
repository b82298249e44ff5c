//! Stream connection states and the table of legal transitions between them
//!
//! The values are those of the C `lws_ss_constate_t` (`include/libwebsockets/lws-secure-streams.h`),
//! which travel as a 32-bit number on the proxy link. The transition table is the C
//! `ss_state_txn_validity[]` (`lib/secure-streams/secure-streams.c`), as compiled for a full
//! (non-`LWS_ONLY_SSPC`) build with MQTT support, which is what a C proxy uses; see
//! `spec/smd-and-states.md` §2.3.
//!
//! # Why a newtype and not an enum
//!
//! A state number crosses the proxy link, and user states (`USER_BASE` = 1000 and up, the
//! targets of `http_resp_map`) are an open range. [`State`] is therefore a newtype over the wire
//! value with associated constants (like rustls' wire enums): decoding never fails on an
//! unknown value, `match` works on the constants, and a user state is simply a value
//! `>= 1000`. Zero means "no state yet" in C and is never a state of its own: it is `None` in
//! an `Option<State>` (which is as small as a `State`).

use std::fmt;
use std::num::NonZeroU32;

/// A stream connection state (C `lws_ss_constate_t`)
///
/// Compare with the associated constants. Values the library does not know (21 to 999) are
/// kept as they are; [`is_legal`] rejects them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State(NonZeroU32);

impl State {
    /// The stream object exists; always the first state (1)
    pub const CREATING: Self = Self::known(1);
    /// A connection that had reached `CONNECTED` closed (2)
    pub const DISCONNECTED: Self = Self::known(2);
    /// A connection attempt failed (3); `ack` is 1 when the DNS server was unreachable
    pub const UNREACHABLE: Self = Self::known(3);
    /// Authentication failed (4); defined, not emitted by the C bindings
    pub const AUTH_FAILED: Self = Self::known(4);
    /// The connection is up, the transaction can proceed (5)
    pub const CONNECTED: Self = Self::known(5);
    /// A connection attempt started (6)
    pub const CONNECTING: Self = Self::known(6);
    /// Last state: the stream is about to be freed (7)
    pub const DESTROYING: Self = Self::known(7);
    /// The stream was idle and a (re)connection is attempted now (8)
    pub const POLL: Self = Self::known(8);
    /// The retry budget is exhausted; idle until tx or a connect is requested (9)
    pub const ALL_RETRIES_FAILED: Self = Self::known(9);
    /// The remote acknowledged the transaction (10)
    pub const QOS_ACK_REMOTE: Self = Self::known(10);
    /// The remote refused the transaction (11)
    pub const QOS_NACK_REMOTE: Self = Self::known(11);
    /// The local proxy accepted our tx (12); reserved, never emitted
    pub const QOS_ACK_LOCAL: Self = Self::known(12);
    /// The local proxy refused our tx (13); reserved, never emitted
    pub const QOS_NACK_LOCAL: Self = Self::known(13);
    /// The stream's own timer expired (14)
    pub const TIMEOUT: Self = Self::known(14);
    /// Server streams: a new transaction arrived (15)
    pub const SERVER_TXN: Self = Self::known(15);
    /// Server streams: the protocol was upgraded (16)
    pub const SERVER_UPGRADE: Self = Self::known(16);
    /// The event loop wait was cancelled (17); transient, never on the proxy wire
    pub const EVENT_WAIT_CANCELLED: Self = Self::known(17);
    /// Proxied clients: the link to the proxy is not up yet (18); `ack` is the ms spent trying
    pub const UPSTREAM_LINK_RETRY: Self = Self::known(18);
    /// Local sinks: a source joined (19); never on the proxy wire
    pub const SINK_JOIN: Self = Self::known(19);
    /// Local sinks: a source left (20); defined, not emitted by C
    pub const SINK_PART: Self = Self::known(20);
    /// The first user-defined state (1000)
    pub const USER_BASE: Self = Self::known(1000);

    const fn known(v: u32) -> Self {
        match NonZeroU32::new(v) {
            Some(v) => Self(v),
            None => panic!("state 0 is \"no state\""),
        }
    }

    /// The state with wire value `v`; `None` for 0, which means "no state yet"
    pub const fn from_u32(v: u32) -> Option<Self> {
        match NonZeroU32::new(v) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }

    /// The wire value
    pub const fn as_u32(self) -> u32 {
        self.0.get()
    }

    /// User state `USER_BASE + n`; `None` if that overflows a `u32`
    pub const fn user(n: u32) -> Option<Self> {
        match 1000u32.checked_add(n) {
            Some(v) => Self::from_u32(v),
            None => None,
        }
    }

    /// Whether this is a user state (`>= USER_BASE`)
    pub const fn is_user(self) -> bool {
        self.as_u32() >= Self::USER_BASE.as_u32()
    }

    /// Whether the transition check waves this state through without judging it
    ///
    /// True for user states, `EVENT_WAIT_CANCELLED` and `UPSTREAM_LINK_RETRY`. Such states are
    /// never recorded as the stream's previous state either: the next state is judged against
    /// the state before them.
    pub const fn is_transient(self) -> bool {
        self.is_user()
            || self.as_u32() == Self::EVENT_WAIT_CANCELLED.as_u32()
            || self.as_u32() == Self::UPSTREAM_LINK_RETRY.as_u32()
    }

    /// The C name without the `LWSSSCS_` prefix, for the states C defines (1 to 20)
    pub const fn short_name(self) -> Option<&'static str> {
        let i = self.as_u32() as usize;
        if i < NAMES.len() {
            Some(NAMES[i])
        } else {
            None
        }
    }
}

/// C names without the `LWSSSCS_` prefix, by value (index 0 is unused)
const NAMES: [&str; 21] = [
    "",
    "CREATING",
    "DISCONNECTED",
    "UNREACHABLE",
    "AUTH_FAILED",
    "CONNECTED",
    "CONNECTING",
    "DESTROYING",
    "POLL",
    "ALL_RETRIES_FAILED",
    "QOS_ACK_REMOTE",
    "QOS_NACK_REMOTE",
    "QOS_ACK_LOCAL",
    "QOS_NACK_LOCAL",
    "TIMEOUT",
    "SERVER_TXN",
    "SERVER_UPGRADE",
    "EVENT_WAIT_CANCELLED",
    "UPSTREAM_LINK_RETRY",
    "SINK_JOIN",
    "SINK_PART",
];

/// The C name: `LWSSSCS_CREATING`, …; user states print as `LWSSSCS_USER_BASE+n` (C prints
/// "user state") and values C does not define as `unknown state n`
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short_name() {
            Some(name) => write!(f, "LWSSSCS_{name}"),
            None if self.is_user() => {
                write!(
                    f,
                    "LWSSSCS_USER_BASE+{}",
                    self.as_u32() - Self::USER_BASE.as_u32()
                )
            }
            None => write!(f, "unknown state {}", self.as_u32()),
        }
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.short_name() {
            Some(name) => f.write_str(name),
            None if self.is_user() => {
                write!(f, "USER_BASE+{}", self.as_u32() - Self::USER_BASE.as_u32())
            }
            None => write!(f, "State({})", self.as_u32()),
        }
    }
}

/// Highest state the table covers (`SERVER_UPGRADE`)
const TABLE_LAST: u32 = 16;

const fn bit(s: State) -> u32 {
    1 << s.as_u32()
}

/// For each previous state (index = wire value, 0 = none yet), the set of legal next states
/// as a bit mask (bit n = state n). Built from the C `ss_state_txn_validity[]`, MQTT cells
/// included.
const TRANSITIONS: [u32; TABLE_LAST as usize + 1] = {
    use State as S;
    [
        // 0: no state yet
        bit(S::CREATING) | bit(S::DESTROYING),
        // CREATING
        bit(S::CONNECTING)
            | bit(S::TIMEOUT)
            | bit(S::POLL)
            | bit(S::SERVER_UPGRADE)
            | bit(S::DESTROYING),
        // DISCONNECTED
        bit(S::CONNECTING)
            | bit(S::CONNECTED)
            | bit(S::TIMEOUT)
            | bit(S::POLL)
            | bit(S::DESTROYING)
            | bit(S::UNREACHABLE),
        // UNREACHABLE
        bit(S::ALL_RETRIES_FAILED)
            | bit(S::TIMEOUT)
            | bit(S::POLL)
            | bit(S::UNREACHABLE)
            | bit(S::CONNECTING)
            | bit(S::CONNECTED)
            | bit(S::DESTROYING),
        // AUTH_FAILED
        bit(S::ALL_RETRIES_FAILED) | bit(S::TIMEOUT) | bit(S::CONNECTING) | bit(S::DESTROYING),
        // CONNECTED
        bit(S::SERVER_UPGRADE)
            | bit(S::SERVER_TXN)
            | bit(S::AUTH_FAILED)
            | bit(S::QOS_ACK_REMOTE)
            | bit(S::QOS_NACK_REMOTE)
            | bit(S::QOS_ACK_LOCAL)
            | bit(S::QOS_NACK_LOCAL)
            | bit(S::DISCONNECTED)
            | bit(S::TIMEOUT)
            | bit(S::CONNECTING)
            | bit(S::POLL)
            | bit(S::DESTROYING),
        // CONNECTING
        bit(S::UNREACHABLE)
            | bit(S::AUTH_FAILED)
            | bit(S::CONNECTING)
            | bit(S::CONNECTED)
            | bit(S::QOS_ACK_REMOTE)
            | bit(S::QOS_NACK_REMOTE)
            | bit(S::TIMEOUT)
            | bit(S::POLL)
            | bit(S::ALL_RETRIES_FAILED)
            | bit(S::DISCONNECTED)
            | bit(S::DESTROYING),
        // DESTROYING: nothing may follow
        0,
        // POLL
        bit(S::CONNECTING) | bit(S::TIMEOUT) | bit(S::ALL_RETRIES_FAILED) | bit(S::DESTROYING),
        // ALL_RETRIES_FAILED
        bit(S::CONNECTING)
            | bit(S::POLL)
            | bit(S::TIMEOUT)
            | bit(S::UNREACHABLE)
            | bit(S::DESTROYING),
        // QOS_ACK_REMOTE (the two QOS_* targets only in MQTT builds)
        bit(S::DISCONNECTED)
            | bit(S::TIMEOUT)
            | bit(S::CONNECTING)
            | bit(S::QOS_ACK_REMOTE)
            | bit(S::QOS_NACK_REMOTE)
            | bit(S::DESTROYING),
        // QOS_NACK_REMOTE (the two QOS_* targets only in MQTT builds)
        bit(S::DISCONNECTED)
            | bit(S::TIMEOUT)
            | bit(S::QOS_ACK_REMOTE)
            | bit(S::QOS_NACK_REMOTE)
            | bit(S::DESTROYING),
        // QOS_ACK_LOCAL
        bit(S::DISCONNECTED) | bit(S::TIMEOUT) | bit(S::DESTROYING),
        // QOS_NACK_LOCAL
        bit(S::DESTROYING) | bit(S::TIMEOUT),
        // TIMEOUT
        bit(S::CONNECTING)
            | bit(S::CONNECTED)
            | bit(S::QOS_ACK_REMOTE)
            | bit(S::QOS_NACK_REMOTE)
            | bit(S::POLL)
            | bit(S::TIMEOUT)
            | bit(S::DISCONNECTED)
            | bit(S::UNREACHABLE)
            | bit(S::DESTROYING),
        // SERVER_TXN
        bit(S::DISCONNECTED) | bit(S::TIMEOUT) | bit(S::SERVER_TXN) | bit(S::DESTROYING),
        // SERVER_UPGRADE
        bit(S::SERVER_UPGRADE)
            | bit(S::SERVER_TXN)
            | bit(S::TIMEOUT)
            | bit(S::DISCONNECTED)
            | bit(S::DESTROYING),
    ]
};

/// Whether a stream whose last recorded state is `from` (`None`: no state yet) may go to `to`
///
/// The rules of the C checker `lws_ss_check_next_state_ss()`:
///
/// * transient states ([`State::is_transient`]: user states, `EVENT_WAIT_CANCELLED`,
///   `UPSTREAM_LINK_RETRY`) are always let through, from any state;
/// * otherwise `to` must be in the table (1 to 16: `SINK_JOIN`, `SINK_PART` and unknown
///   values are rejected) and so must `from` (a transient `from` cannot occur, since
///   transient states are not recorded, and is rejected);
/// * then the table decides. Nothing follows `DESTROYING` and `CREATING` cannot come back.
pub fn is_legal(from: Option<State>, to: State) -> bool {
    if to.is_transient() {
        return true;
    }
    let from = from.map_or(0, State::as_u32);
    let to = to.as_u32();
    if from > TABLE_LAST || to > TABLE_LAST {
        return false;
    }
    TRANSITIONS[from as usize] & (1 << to) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The legal transitions, written out from `spec/smd-and-states.md` §2.3 (cells F, m and
    /// mF counted as legal), independently of `TRANSITIONS`. Row: from-state 0..=16; column
    /// n (0-based): to-state n + 1. `x` legal, `.` illegal.
    const EXPECTED: [&str; 17] = [
        //1234567890123456   to-state
        "x.....x.........", // 0 unset
        ".....xxx.....x.x", // 1 CREATING
        "..x.xxxx.....x..", // 2 DISCONNECTED
        "..x.xxxxx....x..", // 3 UNREACHABLE
        ".....xx.x....x..", // 4 AUTH_FAILED
        ".x.x.xxx.xxxxxxx", // 5 CONNECTED
        ".xxxxxxxxxx..x..", // 6 CONNECTING
        "................", // 7 DESTROYING
        ".....xx.x....x..", // 8 POLL
        "..x..xxx.....x..", // 9 ALL_RETRIES_FAILED
        ".x...xx..xx..x..", // 10 QOS_ACK_REMOTE
        ".x....x..xx..x..", // 11 QOS_NACK_REMOTE
        ".x....x......x..", // 12 QOS_ACK_LOCAL
        "......x......x..", // 13 QOS_NACK_LOCAL
        ".xx.xxxx.xx..x..", // 14 TIMEOUT
        ".x....x......xx.", // 15 SERVER_TXN
        ".x....x......xxx", // 16 SERVER_UPGRADE
    ];

    fn s(v: u32) -> State {
        State::from_u32(v).unwrap()
    }

    #[test]
    fn table_pair_by_pair() {
        let mut checked = 0;
        for (from, row) in EXPECTED.iter().enumerate() {
            let from = State::from_u32(from as u32);
            assert_eq!(row.len(), 16);
            for (col, cell) in row.bytes().enumerate() {
                let to = s(col as u32 + 1);
                let want = match cell {
                    b'x' => true,
                    b'.' => false,
                    _ => panic!("bad cell"),
                };
                assert_eq!(is_legal(from, to), want, "{from:?} -> {to:?}");
                checked += 1;
            }
        }
        assert_eq!(checked, 17 * 16);
    }

    #[test]
    fn states_outside_the_table() {
        let table_froms = (0..=16).map(State::from_u32);
        for from in table_froms.clone() {
            // transient targets pass from anywhere, DESTROYING included
            for to in [17, 18, 1000, 1001, 5000, u32::MAX] {
                assert!(is_legal(from, s(to)), "{from:?} -> {to}");
            }
            // SINK_*, unknown values and the gap below USER_BASE are never legal targets
            for to in [19, 20, 21, 500, 999] {
                assert!(!is_legal(from, s(to)), "{from:?} -> {to}");
            }
        }
        // a from-state outside the table admits only transient targets
        for from in [17, 18, 19, 20, 21, 999, 1000, 1234] {
            for to in 1..=16 {
                assert!(!is_legal(Some(s(from)), s(to)), "{from} -> {to}");
            }
            assert!(is_legal(Some(s(from)), State::USER_BASE));
        }
    }

    #[test]
    fn values_and_names() {
        assert_eq!(State::from_u32(0), None);
        assert_eq!(size_of::<Option<State>>(), 4);
        let all = [
            (State::CREATING, 1, "LWSSSCS_CREATING"),
            (State::DISCONNECTED, 2, "LWSSSCS_DISCONNECTED"),
            (State::UNREACHABLE, 3, "LWSSSCS_UNREACHABLE"),
            (State::AUTH_FAILED, 4, "LWSSSCS_AUTH_FAILED"),
            (State::CONNECTED, 5, "LWSSSCS_CONNECTED"),
            (State::CONNECTING, 6, "LWSSSCS_CONNECTING"),
            (State::DESTROYING, 7, "LWSSSCS_DESTROYING"),
            (State::POLL, 8, "LWSSSCS_POLL"),
            (State::ALL_RETRIES_FAILED, 9, "LWSSSCS_ALL_RETRIES_FAILED"),
            (State::QOS_ACK_REMOTE, 10, "LWSSSCS_QOS_ACK_REMOTE"),
            (State::QOS_NACK_REMOTE, 11, "LWSSSCS_QOS_NACK_REMOTE"),
            (State::QOS_ACK_LOCAL, 12, "LWSSSCS_QOS_ACK_LOCAL"),
            (State::QOS_NACK_LOCAL, 13, "LWSSSCS_QOS_NACK_LOCAL"),
            (State::TIMEOUT, 14, "LWSSSCS_TIMEOUT"),
            (State::SERVER_TXN, 15, "LWSSSCS_SERVER_TXN"),
            (State::SERVER_UPGRADE, 16, "LWSSSCS_SERVER_UPGRADE"),
            (
                State::EVENT_WAIT_CANCELLED,
                17,
                "LWSSSCS_EVENT_WAIT_CANCELLED",
            ),
            (
                State::UPSTREAM_LINK_RETRY,
                18,
                "LWSSSCS_UPSTREAM_LINK_RETRY",
            ),
            (State::SINK_JOIN, 19, "LWSSSCS_SINK_JOIN"),
            (State::SINK_PART, 20, "LWSSSCS_SINK_PART"),
            (State::USER_BASE, 1000, "LWSSSCS_USER_BASE+0"),
        ];
        for (state, value, name) in all {
            assert_eq!(state.as_u32(), value);
            assert_eq!(State::from_u32(value), Some(state));
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(State::user(7).unwrap().as_u32(), 1007);
        assert_eq!(State::user(7).unwrap().to_string(), "LWSSSCS_USER_BASE+7");
        assert_eq!(State::user(u32::MAX), None);
        assert_eq!(s(42).to_string(), "unknown state 42");
        assert_eq!(format!("{:?}", s(42)), "State(42)");
        assert_eq!(format!("{:?}", State::POLL), "POLL");
        assert!(State::user(0).unwrap().is_transient());
        assert!(State::EVENT_WAIT_CANCELLED.is_transient());
        assert!(State::UPSTREAM_LINK_RETRY.is_transient());
        assert!(!State::SERVER_TXN.is_transient());
        assert!(!State::SINK_JOIN.is_transient());
    }
}

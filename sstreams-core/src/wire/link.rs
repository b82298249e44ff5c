//! The proxy side of a link as a state machine: which client frame is acceptable when
//!
//! Spec `wire-protocol.md` §4.3 (what the C proxy accepts in each link state) and §4.4. The
//! runtime feeds every decoded client frame to [`ProxyLink::handle_frame`] and acts on the
//! [`ProxyAction`] it returns; a [`LinkViolation`] means: close this link (and only it).
//!
//! ```text
//!  ExpectStreamType ──STREAMTYPE──► ExpectCreateResult ──handle_created(true)──► Operational
//!          │                               │ handle_created(false)                   │
//!          └──────── violation ────────────┴──────────────► Closed ◄──── violation ──┘
//! ```

use std::time::Duration;

use bytes::Bytes;

use super::{Frame, FrameType, Metadata, Payload};

/// Where a proxy-side link is
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyLinkState {
    /// Waiting for the client's STREAMTYPE
    ExpectStreamType,
    /// STREAMTYPE seen; the proxy has not written CREATE_RESULT yet
    ExpectCreateResult,
    /// CREATE_RESULT (success) written: the stream is in use
    Operational,
    /// The link must be closed (a violation, a failed create, or DESTROYING)
    Closed,
}

/// What the proxy should do for a client frame
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyAction {
    /// Create the onward stream, then write CREATE_RESULT and call
    /// [`ProxyLink::handle_created`]
    Create {
        /// Streamtype name (UTF-8, as the policy names are)
        name: String,
        /// The client's process id, for logs
        pid: u32,
        /// The client's initial credit; for `_lws_smd`, the SMD class mask
        tx_credit: u32,
    },
    /// Set metadata on the onward stream
    Metadata(Metadata),
    /// Send payload on the onward stream
    Payload(Payload),
    /// The client announces this many bytes of payload (and asks to send, which connects)
    LengthHint(u32),
    /// Start the onward connection
    Connect,
    /// Start the stream timeout; `None` uses the policy's `timeout_ms`
    StartTimeout(Option<Duration>),
    /// Cancel the stream timeout
    CancelTimeout,
    /// The client grants the onward peer this much more credit (bytes, signed)
    Credit(i32),
}

/// A client frame that the link state does not allow: the link must be closed
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkViolation {
    /// A frame that needs a stream, before STREAMTYPE
    #[error("{0:?} before STREAMTYPE")]
    BeforeStreamType(FrameType),
    /// ONWARD_CONNECT or TX_PAYLOAD before CREATE_RESULT was written
    #[error("{0:?} before CREATE_RESULT")]
    BeforeCreateResult(FrameType),
    /// A second STREAMTYPE
    #[error("a second STREAMTYPE")]
    SecondStreamType,
    /// A streamtype name that is not UTF-8
    #[error("the streamtype name is not UTF-8")]
    BadName,
    /// The client sent DESTROYING (the C proxy hangs up on it)
    #[error("the client sent DESTROYING")]
    Destroying,
    /// A frame of the proxy's direction
    #[error("{0:?} is a proxy-to-client frame")]
    WrongDirection(FrameType),
    /// Anything after the link was closed
    #[error("the link is closed")]
    Closed,
}

/// The proxy side of one link
#[derive(Debug, Clone)]
pub struct ProxyLink {
    state: ProxyLinkState,
}

impl Default for ProxyLink {
    fn default() -> Self {
        Self::new()
    }
}

impl ProxyLink {
    /// A link that has just been accepted
    pub fn new() -> Self {
        Self {
            state: ProxyLinkState::ExpectStreamType,
        }
    }

    /// Where the link is
    pub fn state(&self) -> ProxyLinkState {
        self.state
    }

    /// A frame from the client; `Ok(None)` when it is accepted and has no effect
    pub fn handle_frame(&mut self, frame: Frame) -> Result<Option<ProxyAction>, LinkViolation> {
        let result = self.accept(frame);
        if result.is_err() {
            self.state = ProxyLinkState::Closed;
        }
        result
    }

    /// The proxy wrote CREATE_RESULT: success makes the link operational, failure closes it
    pub fn handle_created(&mut self, ok: bool) {
        if self.state == ProxyLinkState::ExpectCreateResult {
            self.state = if ok {
                ProxyLinkState::Operational
            } else {
                ProxyLinkState::Closed
            };
        }
    }

    fn accept(&mut self, frame: Frame) -> Result<Option<ProxyAction>, LinkViolation> {
        use ProxyLinkState as S;
        let ty = frame.frame_type();
        match (self.state, frame) {
            (S::Closed, _) => Err(LinkViolation::Closed),
            // Skipped in every state, as the C proxy does.
            (_, Frame::Perf(_)) => Ok(None),
            (_, f) if f.direction() == super::Direction::ProxyToClient => {
                Err(LinkViolation::WrongDirection(ty))
            }
            (_, Frame::Destroying) => Err(LinkViolation::Destroying),
            (S::ExpectStreamType, Frame::StreamType(st)) => {
                let name =
                    String::from_utf8(st.name.to_vec()).map_err(|_| LinkViolation::BadName)?;
                self.state = S::ExpectCreateResult;
                Ok(Some(ProxyAction::Create {
                    name,
                    pid: st.pid,
                    tx_credit: st.tx_credit,
                }))
            }
            (_, Frame::StreamType(_)) => Err(LinkViolation::SecondStreamType),
            // Ignored without a stream, as in C.
            (
                S::ExpectStreamType,
                Frame::TimeoutUpdate(_) | Frame::TxCreditUpdate(_) | Frame::PayloadLengthHint(_),
            ) => Ok(None),
            (S::ExpectStreamType, _) => Err(LinkViolation::BeforeStreamType(ty)),
            (S::ExpectCreateResult, Frame::OnwardConnect | Frame::TxPayload(_)) => {
                Err(LinkViolation::BeforeCreateResult(ty))
            }
            (_, Frame::TxMetadata(m)) => Ok(Some(ProxyAction::Metadata(m))),
            (_, Frame::TxCreditUpdate(c)) => Ok(Some(ProxyAction::Credit(c))),
            (_, Frame::TimeoutUpdate(0)) => Ok(Some(ProxyAction::StartTimeout(None))),
            (_, Frame::TimeoutUpdate(u32::MAX)) => Ok(Some(ProxyAction::CancelTimeout)),
            (_, Frame::TimeoutUpdate(ms)) => Ok(Some(ProxyAction::StartTimeout(Some(
                Duration::from_millis(u64::from(ms)),
            )))),
            (_, Frame::PayloadLengthHint(n)) => Ok(Some(ProxyAction::LengthHint(n))),
            (S::Operational, Frame::OnwardConnect) => Ok(Some(ProxyAction::Connect)),
            (S::Operational, Frame::TxPayload(p)) => Ok(Some(ProxyAction::Payload(p))),
            // Every client frame is covered above; a new frame type lands here.
            (_, _) => Err(LinkViolation::WrongDirection(ty)),
        }
    }
}

/// The CREATE_RESULT rideshare list the C proxy writes for `name` (and its rideshare chain)
pub fn rideshare_list<'a>(name: &str, chain: impl IntoIterator<Item = &'a str>) -> Bytes {
    if name == crate::smd::STREAMTYPE_NAME {
        // glibc prints the absent policy name of `_lws_smd` as "(null)".
        return Bytes::from_static(b",(null)");
    }
    let mut s = format!(",{name}");
    for r in chain {
        s.push(',');
        s.push_str(r);
    }
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::PayloadFlags;
    use crate::wire::{CreateResult, StreamType};

    fn st(name: &str) -> Frame {
        Frame::StreamType(StreamType {
            pid: 7,
            tx_credit: 9,
            name: Bytes::copy_from_slice(name.as_bytes()),
        })
    }

    #[test]
    fn normal_sequence() {
        let mut l = ProxyLink::new();
        assert_eq!(
            l.handle_frame(Frame::TimeoutUpdate(5)),
            Ok(None),
            "ignored before STREAMTYPE"
        );
        assert_eq!(
            l.handle_frame(st("mintest")),
            Ok(Some(ProxyAction::Create {
                name: "mintest".into(),
                pid: 7,
                tx_credit: 9
            }))
        );
        assert_eq!(l.state(), ProxyLinkState::ExpectCreateResult);
        let md = Metadata {
            name: Bytes::from_static(b"m"),
            value: Bytes::from_static(b"v"),
        };
        assert_eq!(
            l.handle_frame(Frame::TxMetadata(md.clone())),
            Ok(Some(ProxyAction::Metadata(md)))
        );
        l.handle_created(true);
        assert_eq!(l.state(), ProxyLinkState::Operational);
        assert_eq!(
            l.handle_frame(Frame::OnwardConnect),
            Ok(Some(ProxyAction::Connect))
        );
        assert_eq!(
            l.handle_frame(Frame::TimeoutUpdate(0)),
            Ok(Some(ProxyAction::StartTimeout(None)))
        );
        assert_eq!(
            l.handle_frame(Frame::TimeoutUpdate(u32::MAX)),
            Ok(Some(ProxyAction::CancelTimeout))
        );
        assert_eq!(
            l.handle_frame(Frame::TimeoutUpdate(250)),
            Ok(Some(ProxyAction::StartTimeout(Some(
                Duration::from_millis(250)
            ))))
        );
        assert_eq!(
            l.handle_frame(Frame::PayloadLengthHint(12)),
            Ok(Some(ProxyAction::LengthHint(12)))
        );
        assert_eq!(
            l.handle_frame(Frame::TxCreditUpdate(-3)),
            Ok(Some(ProxyAction::Credit(-3)))
        );
        let p = Payload::new(PayloadFlags::SOM, Bytes::from_static(b"x"));
        assert_eq!(
            l.handle_frame(Frame::TxPayload(p.clone())),
            Ok(Some(ProxyAction::Payload(p)))
        );
    }

    #[test]
    fn perf_from_a_client_is_skipped_in_every_state() {
        let perf = || Frame::Perf(Bytes::from_static(b"{}"));
        let mut l = ProxyLink::new();
        assert_eq!(l.handle_frame(perf()), Ok(None));
        l.handle_frame(st("a")).unwrap();
        assert_eq!(l.handle_frame(perf()), Ok(None));
        l.handle_created(true);
        assert_eq!(l.handle_frame(perf()), Ok(None));
        assert_eq!(l.state(), ProxyLinkState::Operational);
    }

    #[test]
    fn violations_close_the_link_for_good() {
        let mut l = ProxyLink::new();
        assert_eq!(
            l.handle_frame(Frame::OnwardConnect),
            Err(LinkViolation::BeforeStreamType(FrameType::ONWARD_CONNECT))
        );
        assert_eq!(l.state(), ProxyLinkState::Closed);
        assert_eq!(l.handle_frame(st("a")), Err(LinkViolation::Closed));

        let mut l = ProxyLink::new();
        l.handle_frame(st("a")).unwrap();
        assert_eq!(
            l.handle_frame(Frame::OnwardConnect),
            Err(LinkViolation::BeforeCreateResult(FrameType::ONWARD_CONNECT)),
            "C hangs up on ONWARD_CONNECT before CREATE_RESULT is written"
        );

        let mut l = ProxyLink::new();
        l.handle_frame(st("a")).unwrap();
        l.handle_created(true);
        assert_eq!(
            l.handle_frame(st("b")),
            Err(LinkViolation::SecondStreamType)
        );

        let mut l = ProxyLink::new();
        l.handle_frame(st("a")).unwrap();
        l.handle_created(true);
        assert_eq!(
            l.handle_frame(Frame::Destroying),
            Err(LinkViolation::Destroying)
        );

        let mut l = ProxyLink::new();
        let wrong = Frame::CreateResult(CreateResult::failed());
        assert_eq!(
            l.handle_frame(wrong),
            Err(LinkViolation::WrongDirection(FrameType::CREATE_RESULT))
        );

        let mut l = ProxyLink::new();
        let bad = Frame::StreamType(StreamType {
            pid: 0,
            tx_credit: 0,
            name: Bytes::from_static(b"\xff"),
        });
        assert_eq!(l.handle_frame(bad), Err(LinkViolation::BadName));

        let mut l = ProxyLink::new();
        l.handle_frame(st("a")).unwrap();
        l.handle_created(false);
        assert_eq!(l.state(), ProxyLinkState::Closed);
    }

    #[test]
    fn rideshare_lists() {
        assert_eq!(
            rideshare_list("mintest", []),
            Bytes::from_static(b",mintest")
        );
        assert_eq!(rideshare_list("a", ["b"]), Bytes::from_static(b",a,b"));
        assert_eq!(
            rideshare_list("_lws_smd", ["x"]),
            Bytes::from_static(b",(null)")
        );
    }
}

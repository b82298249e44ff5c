//! The client link in virtual time: the captured sequences of spec §8 and §9 byte for byte,
//! the write priority of §7.1, every hang-up condition of §10, retries (§2.4), and
//! arbitrary inputs

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::stream::PayloadFlags;
use crate::wire::{ConnState, Decoder, Payload};

/// Bytes from a string of hex pairs separated by spaces, `;` or newlines
fn hex(s: &str) -> Vec<u8> {
    s.split([' ', ';', '\n'])
        .filter(|t| !t.is_empty())
        .map(|t| u8::from_str_radix(t, 16).expect("hex pair"))
        .collect()
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn state(s: State) -> ClientEvent {
    ClientEvent::State { state: s, ack: 0 }
}

fn conn_state(s: u32) -> Frame {
    Frame::ConnState(ConnState {
        state: State::from_u32(s).unwrap(),
        ack: 0,
    })
}

fn create_ok(rideshares: &[u8]) -> Frame {
    Frame::CreateResult(CreateResult {
        result: 0,
        client_buflen: 0,
        rideshares: b(rideshares),
    })
}

/// A link and a virtual clock
struct Harness {
    link: ClientLink,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new(name: &str, pid: u32, tx_credit: u32) -> Self {
        let t0 = Instant::now();
        let config = ClientLinkConfig {
            streamtype: b(name.as_bytes()),
            pid,
            tx_credit,
        };
        Self {
            link: ClientLink::new(config, t0),
            t0,
            now: t0,
        }
    }

    fn mintest() -> Self {
        Self::new("mintest", 7, crate::wire::DEFAULT_TX_CREDIT)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.link.poll_timeout().is_some_and(|t| t <= self.now) {
            self.link.handle_timeout(self.now);
        }
    }

    fn connected(&mut self) {
        assert_eq!(self.link.state(), ClientLinkState::Connecting);
        self.link.handle_connected(self.now);
    }

    /// Everything due, encoded; `tx` answers [`Transmit::Tx`]
    fn transmit_with(&mut self, mut tx: impl FnMut() -> Option<Payload>) -> Vec<u8> {
        let mut out = BytesMut::new();
        while let Some(t) = self.link.poll_transmit() {
            match t {
                Transmit::Frame(f) => f.encode(&mut out).expect("encodable"),
                Transmit::Tx => self.link.handle_tx(tx(), false),
            }
        }
        out.to_vec()
    }

    /// Everything due, the app declining to send
    fn transmit(&mut self) -> Vec<u8> {
        self.transmit_with(|| None)
    }

    /// Frames due, the app declining to send
    fn frames(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(t) = self.link.poll_transmit() {
            match t {
                Transmit::Frame(f) => frames.push(f),
                Transmit::Tx => self.link.handle_tx(None, false),
            }
        }
        frames
    }

    /// Decodes `bytes` and feeds every frame; panics on a refusal
    fn feed(&mut self, bytes: &[u8]) {
        let mut d = Decoder::client_side();
        d.handle_bytes(bytes);
        while let Some(f) = d.poll_frame().expect("well-formed") {
            self.link.handle_frame(self.now, f).expect("accepted");
        }
    }

    fn events(&mut self) -> Vec<ClientEvent> {
        std::iter::from_fn(|| self.link.poll_event()).collect()
    }

    /// Connected and created, events drained
    fn created() -> Self {
        let mut h = Self::mintest();
        h.connected();
        h.transmit();
        h.feed(&hex("56 00 0d 00 00 00 00 00 2c 6d 69 6e 74 65 73 74"));
        h.events();
        h
    }

    fn ms_since_start(&self) -> u32 {
        (self.now - self.t0).as_millis() as u32
    }
}

// Captured sequences --------------------------------------------------------------------

#[test]
fn real_c_client_sequence_byte_for_byte() {
    // §9: the real C client against a scripted proxy.
    let mut h = Harness::new("mintest", 32305, crate::wire::DEFAULT_TX_CREDIT);
    h.link.start_timeout(Some(Duration::from_millis(4000)));
    h.link.set_metadata(b(b"mymd"), b(b"hello")).expect("valid");
    h.link.add_peer_tx_credit(2000);
    h.link.request_tx(Some(11));
    h.link.connect();
    h.connected();
    // STREAMTYPE, then the pending timeout; nothing else before CREATE_RESULT.
    assert_eq!(
        h.transmit(),
        hex("aa 00 10 01 00 00 7e 31 1d cd 65 00 6d 69 6e 74 65 73 74; b0 00 04 00 00 0f a0")
    );
    h.feed(&hex(
        "56 00 0d 00 00 00 08 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00",
    ));
    // Newest first (credit queued after metadata goes first), hint, connect.
    assert_eq!(
        h.transmit(),
        hex(
            "af 00 04 00 00 07 d0 ; ae 00 0a 04 6d 79 6d 64 68 65 6c 6c 6f ;
             b1 00 04 00 00 00 0b ; ab 00 00"
        )
    );
    h.feed(&hex(
        "57 00 05 06 00 00 00 00 ; 59 00 0b 05 73 72 76 6d 64 77 6f 72 6c 64 ;
         57 00 05 05 00 00 00 00 ; 58 00 04 00 00 03 09 ;
         55 00 1e 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 7b
         73 65 72 76 65 72 2d 73 61 79 73 2d 68 69",
    ));
    h.link.request_tx(None);
    let tx = h.transmit_with(|| {
        let mut p = Payload::new(PayloadFlags::SOM | PayloadFlags::EOM, b(b"app-payload"));
        p.latency_us = 0x73a;
        p.timestamp_us = 0x2715_9125;
        Some(p)
    });
    assert_eq!(
        tx,
        hex("ad 00 1b 00 00 00 03 00 00 07 3a 00 00 00 00 27 15 91 25
             61 70 70 2d 70 61 79 6c 6f 61 64")
    );
    h.feed(&hex("57 00 05 0a 00 00 00 01 ; 57 00 05 02 00 00 00 00"));
    assert_eq!(
        h.events(),
        [
            ClientEvent::Created {
                client_buflen: 2048,
                rideshares: vec![b(b"mintest")]
            },
            state(State::CREATING),
            state(State::CONNECTING),
            ClientEvent::Metadata(Metadata {
                name: b(b"srvmd"),
                value: b(b"world")
            }),
            state(State::CONNECTED),
            ClientEvent::TxCredit(777),
            ClientEvent::Rx(Payload {
                flags: PayloadFlags::SOM | PayloadFlags::EOM,
                latency_us: 0,
                timestamp_us: 0x7b,
                rideshare: None,
                data: b(b"server-says-hi"),
            }),
            ClientEvent::State {
                state: State::QOS_ACK_REMOTE,
                ack: 1
            },
            state(State::DISCONNECTED),
        ]
    );
    assert_eq!(h.link.state(), ClientLinkState::LocalConnected);
    assert_eq!(h.transmit(), b"", "nothing more to send");
}

#[test]
fn smd_sequence_byte_for_byte() {
    // §8.1: `_lws_smd` with class mask 0x0E, pid 31683; no ONWARD_CONNECT is needed.
    let mut h = Harness::new("_lws_smd", 31683, 0x0e);
    h.connected();
    assert_eq!(
        h.transmit(),
        hex("aa 00 11 01 00 00 7b c3 00 00 00 0e 5f 6c 77 73 5f 73 6d 64")
    );
    h.feed(&hex(
        "56 00 0c 00 00 00 00 00 2c 28 6e 75 6c 6c 29;
         57 00 05 01 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00",
    ));
    assert_eq!(h.transmit(), b"");
    assert_eq!(
        h.events(),
        [
            ClientEvent::Created {
                client_buflen: 0,
                rideshares: vec![b(b"(null)")]
            },
            state(State::CREATING),
            state(State::CONNECTING),
            state(State::CONNECTED),
        ]
    );
    assert_eq!(h.link.state(), ClientLinkState::Operational);
}

#[test]
fn ordinary_stream_states_and_proxy_side_reconnect() {
    // §9, worked example D: the real C proxy's frames, then its own reconnect.
    let mut h = Harness::mintest();
    h.connected();
    h.transmit();
    h.feed(&hex(
        "56 00 0d 00 00 00 00 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00;
         57 00 05 08 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00;
         55 00 21 00 00 00 00 00 00 00 00 00 00 00 00 23 70 8e 25
         68 65 6c 6c 6f 2d 66 72 6f 6d 2d 73 65 72 76 65 72;
         57 00 05 02 00 00 00 00;
         57 00 05 08 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00",
    ));
    let states: Vec<State> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::State { state, .. } => Some(state),
            _ => None,
        })
        .collect();
    use State as S;
    assert_eq!(
        states,
        [
            S::CREATING,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED,
            S::DISCONNECTED,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED
        ]
    );
}

// Write priority (§7.1) -----------------------------------------------------------------

#[test]
fn write_priority() {
    let mut h = Harness::mintest();
    h.link.set_metadata(b(b"a"), b(b"1")).unwrap();
    h.link.add_peer_tx_credit(5);
    h.link.set_metadata(b(b"b"), b(b"2")).unwrap();
    h.link.set_metadata(b(b"a"), b(b"3")).unwrap();
    h.link.request_tx(Some(9));
    h.link.connect();
    h.connected();
    assert!(matches!(
        h.link.poll_transmit(),
        Some(Transmit::Frame(Frame::StreamType(_)))
    ));
    h.link.start_timeout(None);
    assert_eq!(
        h.frames(),
        [Frame::TimeoutUpdate(0)],
        "only the timeout before CREATE_RESULT"
    );
    h.feed(&hex("56 00 05 00 00 00 00 00"));
    h.link.cancel_timeout();
    let md = |n: &[u8], v: &[u8]| {
        Frame::TxMetadata(Metadata {
            name: b(n),
            value: b(v),
        })
    };
    let mut asked = 0;
    let mut frames = Vec::new();
    while let Some(t) = h.link.poll_transmit() {
        match t {
            Transmit::Frame(f) => frames.push(f),
            Transmit::Tx => {
                asked += 1;
                let p = Payload::new(PayloadFlags::SOM, b(b"x"));
                h.link.handle_tx(Some(p), asked < 2);
            }
        }
    }
    assert_eq!(
        frames,
        [
            Frame::TimeoutUpdate(u32::MAX),
            md(b"a", b"3"),
            md(b"b", b"2"),
            Frame::TxCreditUpdate(5),
            Frame::PayloadLengthHint(9),
            Frame::OnwardConnect,
            Frame::TxPayload(Payload::new(PayloadFlags::SOM, b(b"x"))),
            Frame::TxPayload(Payload::new(PayloadFlags::SOM, b(b"x"))),
        ],
        "timeout, metadata/credit newest first (one value per name), hint, connect, payload"
    );
    assert_eq!(asked, 2);
}

#[test]
fn tx_asked_for_but_not_produced_connects_instead() {
    let mut h = Harness::created();
    h.link.request_tx(None);
    assert_eq!(h.frames(), [Frame::OnwardConnect]);
    // Payload itself asks the proxy to send: no ONWARD_CONNECT then.
    h.link.request_tx(None);
    let tx = h.transmit_with(|| Some(Payload::new(PayloadFlags::EOM, b(b"y"))));
    assert_eq!(
        tx,
        hex("ad 00 11 00 00 00 02 00 00 00 00 00 00 00 00 00 00 00 00 79")
    );
    // Connected: a connect request is dropped (C ignores it there).
    h.feed(&hex("57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00"));
    h.link.connect();
    assert_eq!(h.frames(), []);
}

#[test]
fn no_connect_or_tx_before_create_result() {
    let mut h = Harness::mintest();
    h.link.request_tx(None);
    h.link.connect();
    h.link.set_metadata(b(b"m"), b(b"v")).unwrap();
    assert_eq!(h.frames(), [], "no link yet");
    h.connected();
    let frames = h.frames();
    assert!(matches!(frames[..], [Frame::StreamType(_)]), "{frames:?}");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.frames(), []);
    h.feed(&hex("56 00 05 00 00 00 00 00"));
    assert_eq!(
        h.frames(),
        [
            Frame::TxMetadata(Metadata {
                name: b(b"m"),
                value: b(b"v")
            }),
            Frame::OnwardConnect
        ]
    );
}

#[test]
fn bad_metadata_is_refused_when_set() {
    let mut h = Harness::mintest();
    assert_eq!(
        h.link.set_metadata(b(b""), b(b"v")),
        Err(EncodeError::MetadataName { len: 0 })
    );
    assert_eq!(
        h.link.set_metadata(b(&[b'n'; 31]), b(b"v")),
        Err(EncodeError::MetadataName { len: 31 })
    );
    assert_eq!(
        h.link.set_metadata(b(b"n"), Bytes::new()),
        Err(EncodeError::EmptyMetadataValue)
    );
}

#[test]
fn timeouts_are_clamped_and_the_latest_wins() {
    let mut h = Harness::created();
    h.link.start_timeout(Some(Duration::from_micros(10)));
    assert_eq!(h.frames(), [Frame::TimeoutUpdate(1)]);
    h.link.start_timeout(Some(Duration::from_secs(1 << 40)));
    assert_eq!(h.frames(), [Frame::TimeoutUpdate(u32::MAX - 1)]);
    h.link.start_timeout(Some(Duration::from_secs(1)));
    h.link.cancel_timeout();
    assert_eq!(h.frames(), [Frame::TimeoutUpdate(u32::MAX)]);
}

// Hang-up conditions (§10) --------------------------------------------------------------

/// Feeds `frame` to a link in the given stage; returns the error and the link
fn refused(stage: &str, frame: Frame) -> (ClientLinkError, Harness) {
    let mut h = match stage {
        "waiting" => {
            let mut h = Harness::mintest();
            h.connected();
            h.transmit();
            h
        }
        "created" => Harness::created(),
        _ => unreachable!(),
    };
    let e = h.link.handle_frame(h.now, frame).unwrap_err();
    (e, h)
}

#[test]
fn violations_close_the_link_and_retry() {
    let cases = [
        ("created", create_ok(b",mintest")),
        ("waiting", Frame::CreateResult(CreateResult::failed())),
        ("waiting", create_ok(&[b'x'; 128])),
        ("waiting", create_ok(b",a,b,c,d")),
        ("waiting", conn_state(6)),
        (
            "waiting",
            Frame::RxPayload(Payload::new(PayloadFlags::SOM, b(b"x"))),
        ),
        ("waiting", Frame::TxCreditUpdate(1)),
        ("created", Frame::TxCreditUpdate(1)),
        ("created", Frame::OnwardConnect),
        ("created", Frame::Destroying),
        ("created", Frame::TimeoutUpdate(1)),
        ("created", Frame::PayloadLengthHint(1)),
        (
            "created",
            Frame::TxMetadata(Metadata {
                name: b(b"m"),
                value: b(b"v"),
            }),
        ),
        (
            "created",
            Frame::TxPayload(Payload::new(PayloadFlags::SOM, b(b"x"))),
        ),
    ];
    for (stage, frame) in cases {
        let what = format!("{stage}: {frame:?}");
        let (e, mut h) = refused(stage, frame);
        assert!(!e.destroys_stream(), "{what}: {e}");
        assert_eq!(h.link.state(), ClientLinkState::Waiting, "{what}");
        assert_eq!(
            h.events(),
            [ClientEvent::State {
                state: State::UPSTREAM_LINK_RETRY,
                ack: 0
            }],
            "{what}"
        );
        assert_eq!(h.link.poll_timeout(), Some(h.now + LINK_RETRY), "{what}");
    }
    // Accepted limits: 127 bytes, 3 commas, and frames C takes before CREATE_RESULT.
    let mut list = b",a,b,".to_vec();
    list.resize(127, b'c');
    for f in [
        create_ok(&list),
        Frame::RxMetadata(Metadata {
            name: b(b"m"),
            value: b(b"v"),
        }),
        Frame::RxCreditUpdate(3),
        Frame::Perf(b(b"{}")),
    ] {
        let mut h = Harness::mintest();
        h.connected();
        h.transmit();
        h.link.handle_frame(h.now, f).expect("accepted");
    }
}

#[test]
fn malformed_frames_close_the_link() {
    // The decoder refuses what the link never sees (§10): bad lengths, reserved and
    // client-to-proxy codes (0xAF included: this client does not mirror C's leniency).
    for bytes in [
        "57 00 09 00 00 00 01 00 00 00 00 00",
        "57 00 04 01 00 00 00",
        "59 00 02 01 61",
        "58 00 05 00 00 00 00 01",
        "5b 00 00",
        "5a 00 00",
        "af 00 04 00 00 00 01",
        "ab 00 00",
        "56 00 04 00 00 00 00",
    ] {
        let mut h = Harness::created();
        let mut d = Decoder::client_side();
        d.handle_bytes(&hex(bytes));
        assert!(d.poll_frame().is_err(), "{bytes}");
        h.link.handle_link_closed(h.now);
        assert_eq!(h.link.state(), ClientLinkState::Waiting);
    }
}

#[test]
fn bad_states_destroy_the_stream() {
    for (s, want) in [
        (
            18,
            ClientLinkError::UnknownState(State::UPSTREAM_LINK_RETRY),
        ),
        (
            999,
            ClientLinkError::UnknownState(State::from_u32(999).unwrap()),
        ),
        (
            13,
            ClientLinkError::IllegalTransition {
                from: Some(State::CREATING),
                to: State::QOS_NACK_LOCAL,
            },
        ),
        (
            1,
            ClientLinkError::IllegalTransition {
                from: Some(State::CREATING),
                to: State::CREATING,
            },
        ),
    ] {
        let mut h = Harness::created();
        // The proxied CREATING that follows CREATE_RESULT is swallowed; a later one is not.
        h.feed(&hex("57 00 05 01 00 00 00 00"));
        let frame = if s < 256 {
            conn_state(s)
        } else {
            Frame::ConnState(ConnState {
                state: State::from_u32(s).unwrap(),
                ack: 0,
            })
        };
        let e = h.link.handle_frame(h.now, frame).unwrap_err();
        assert_eq!(e, want);
        assert!(e.destroys_stream());
        assert_eq!(h.link.state(), ClientLinkState::Destroyed);
        assert_eq!(h.events(), [state(State::DESTROYING)]);
        assert_eq!(h.link.poll_transmit(), None);
        assert_eq!(h.link.poll_timeout(), None);
    }
    // Transient states pass: EVENT_WAIT_CANCELLED (17) and user states.
    let mut h = Harness::created();
    h.link.handle_frame(h.now, conn_state(17)).unwrap();
    h.link.handle_frame(h.now, conn_state(1000)).unwrap();
    h.link.handle_frame(h.now, conn_state(6)).unwrap();
}

#[test]
fn a_proxied_destroying_ends_the_stream() {
    // Found by fuzzing: a link lost after a proxied DESTROYING reported UPSTREAM_LINK_RETRY.
    let mut h = Harness::created();
    h.feed(&hex("57 00 05 07 00 00 00 00"));
    assert_eq!(h.events(), [state(State::DESTROYING)]);
    assert_eq!(h.link.state(), ClientLinkState::Destroyed);
    h.link.handle_link_closed(h.now);
    h.link.destroy();
    assert_eq!(h.events(), []);
    assert_eq!(h.link.poll_timeout(), None);
}

#[test]
fn a_second_connected_is_swallowed() {
    let mut h = Harness::created();
    h.feed(&hex(
        "57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00; 57 00 05 05 00 00 00 00",
    ));
    assert_eq!(
        h.events(),
        [state(State::CONNECTING), state(State::CONNECTED)]
    );
}

#[test]
fn destroying_a_connected_stream() {
    let mut h = Harness::created();
    h.feed(&hex("57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00"));
    h.link.destroy();
    assert_eq!(
        h.events(),
        [state(State::DISCONNECTED), state(State::DESTROYING)],
        "events not yet polled are dropped"
    );
    h.link.destroy();
    assert_eq!(h.events(), [], "once");
    assert_eq!(h.link.state(), ClientLinkState::Destroyed);
}

// Timers and retries (§2.4) -------------------------------------------------------------

#[test]
fn link_retries_every_second_with_ms_spent() {
    let mut h = Harness::mintest();
    let mut acks = Vec::new();
    for _ in 0..3 {
        assert_eq!(h.link.state(), ClientLinkState::Connecting);
        h.link.handle_connect_failed(h.now);
        for e in h.events() {
            let ClientEvent::State {
                state: State::UPSTREAM_LINK_RETRY,
                ack,
            } = e
            else {
                panic!("{e:?}")
            };
            acks.push(ack);
        }
        assert_eq!(h.link.state(), ClientLinkState::Waiting);
        h.advance(Duration::from_millis(999));
        assert_eq!(h.link.state(), ClientLinkState::Waiting);
        h.advance(Duration::from_millis(1));
    }
    assert_eq!(acks, [0, 1000, 2000]);
}

#[test]
fn create_result_must_come_within_3_s() {
    let mut h = Harness::mintest();
    h.connected();
    h.transmit();
    assert_eq!(h.link.poll_timeout(), Some(h.now + CREATE_RESULT_TIMEOUT));
    h.advance(Duration::from_millis(2999));
    assert_eq!(h.link.state(), ClientLinkState::WaitingCreateResult);
    h.advance(Duration::from_millis(1));
    assert_eq!(h.link.state(), ClientLinkState::Waiting);
    assert_eq!(
        h.events(),
        [ClientEvent::State {
            state: State::UPSTREAM_LINK_RETRY,
            ack: 3000
        }]
    );
    h.advance(LINK_RETRY);
    assert_eq!(h.link.state(), ClientLinkState::Connecting);
    // In time: the deadline is gone.
    h.connected();
    h.transmit();
    h.feed(&hex("56 00 05 00 00 00 00 00"));
    assert_eq!(h.link.poll_timeout(), None);
}

#[test]
fn ack_saturates() {
    let mut h = Harness::mintest();
    h.now += Duration::from_millis(u64::from(u32::MAX) + 5);
    h.link.handle_connect_failed(h.now);
    assert_eq!(
        h.events(),
        [ClientEvent::State {
            state: State::UPSTREAM_LINK_RETRY,
            ack: u32::MAX
        }]
    );
}

#[test]
fn a_new_link_keeps_the_queue_and_connects_again() {
    let mut h = Harness::created();
    h.link.request_tx(None);
    let tx = h.transmit_with(|| Some(Payload::new(PayloadFlags::SOM, b(b"1"))));
    assert_eq!(tx[0], 0xad);
    h.feed(&hex(
        "57 00 05 08 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00",
    ));
    h.events();
    h.now += Duration::from_millis(1500);
    h.link.handle_link_closed(h.now);
    // Queued while the link is down.
    h.link.set_metadata(b(b"m"), b(b"v")).unwrap();
    h.link.add_peer_tx_credit(2000);
    let ms = h.ms_since_start();
    assert_eq!(
        h.events(),
        [
            state(State::DISCONNECTED),
            ClientEvent::State {
                state: State::UPSTREAM_LINK_RETRY,
                ack: ms
            }
        ]
    );
    assert_eq!(h.frames(), [], "no link");
    h.advance(LINK_RETRY);
    h.connected();
    assert!(matches!(h.frames()[..], [Frame::StreamType(_)]));
    h.feed(&hex(
        "56 00 0d 00 00 00 00 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00",
    ));
    assert_eq!(
        h.events(),
        [ClientEvent::Created {
            client_buflen: 0,
            rideshares: vec![b(b"mintest")]
        }],
        "CREATING only once, the proxied one swallowed"
    );
    assert_eq!(
        h.frames(),
        [
            Frame::TxCreditUpdate(2000),
            Frame::TxMetadata(Metadata {
                name: b(b"m"),
                value: b(b"v")
            }),
            Frame::OnwardConnect,
        ],
        "what was queued, then connected again as before"
    );
    // POLL after the local DISCONNECTED is a legal transition.
    h.feed(&hex("57 00 05 08 00 00 00 00"));
}

#[test]
fn a_link_lost_before_connected_gives_no_disconnected() {
    let mut h = Harness::created();
    h.feed(&hex("57 00 05 06 00 00 00 00"));
    h.events();
    h.link.handle_link_closed(h.now);
    assert_eq!(
        h.events(),
        [ClientEvent::State {
            state: State::UPSTREAM_LINK_RETRY,
            ack: 0
        }]
    );
    // Inputs of the wrong moment change nothing.
    h.link.handle_connected(h.now);
    h.link.handle_link_closed(h.now);
    assert_eq!(h.link.state(), ClientLinkState::Waiting);
    assert_eq!(
        h.link.handle_frame(h.now, conn_state(5)),
        Err(ClientLinkError::NoLink(FrameType::CONNSTATE))
    );
    assert_eq!(h.events(), []);
}

#[test]
fn perf_and_credit_events() {
    let mut h = Harness::created();
    h.feed(&hex("5b 00 05 7b 22 70 65 65; 58 00 04 ff ff ff fe"));
    assert_eq!(
        h.events(),
        [ClientEvent::Perf(b(b"{\"pee")), ClientEvent::TxCredit(-2)]
    );
    assert_eq!(PERF_RX_FLAGS.bits(), 0x43);
}

// Arbitrary input -----------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Input {
    Bytes(Vec<u8>),
    Connected,
    ConnectFailed,
    Closed,
    Advance(u16),
    RequestTx(Option<u32>),
    Connect,
    Metadata(Vec<u8>, Vec<u8>),
    Credit(i32),
    Timeout(Option<u32>),
    Destroy,
}

fn arb_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Input::Bytes),
        // Frames a proxy would plausibly send, to get past CREATE_RESULT often.
        4 => prop_oneof![
            Just(hex("56 00 05 00 00 00 00 00")),
            (1u8..=20).prop_map(|s| vec![0x57, 0, 5, s, 0, 0, 0, 0]),
            Just(hex("55 00 10 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 00")),
            Just(hex("58 00 04 00 00 00 01")),
        ]
        .prop_map(Input::Bytes),
        2 => Just(Input::Connected),
        1 => Just(Input::ConnectFailed),
        1 => Just(Input::Closed),
        2 => any::<u16>().prop_map(Input::Advance),
        1 => proptest::option::of(any::<u32>()).prop_map(Input::RequestTx),
        1 => Just(Input::Connect),
        1 => (proptest::collection::vec(any::<u8>(), 0..32), proptest::collection::vec(any::<u8>(), 0..4))
            .prop_map(|(n, v)| Input::Metadata(n, v)),
        1 => any::<i32>().prop_map(Input::Credit),
        1 => proptest::option::of(any::<u32>()).prop_map(Input::Timeout),
        1 => Just(Input::Destroy),
    ]
}

proptest! {
    #[test]
    fn arbitrary_inputs_never_panic(inputs in proptest::collection::vec(arb_input(), 0..60)) {
        let mut h = Harness::mintest();
        let mut decoder = Decoder::client_side();
        let mut created_on_link = false;
        let mut destroyed = false;
        for input in inputs {
            match input {
                Input::Bytes(bytes) => {
                    decoder.handle_bytes(&bytes);
                    loop {
                        match decoder.poll_frame() {
                            Ok(Some(f)) => {
                                let up = h.link.state().is_link_up();
                                match h.link.handle_frame(h.now, f) {
                                    Ok(()) => prop_assert!(up),
                                    Err(e) if e.destroys_stream() => {
                                        prop_assert_eq!(h.link.state(), ClientLinkState::Destroyed);
                                    }
                                    Err(ClientLinkError::NoLink(_)) => prop_assert!(!up),
                                    Err(_) => prop_assert_eq!(h.link.state(), ClientLinkState::Waiting),
                                }
                            }
                            Ok(None) => break,
                            Err(_) => {
                                h.link.handle_link_closed(h.now);
                                decoder = Decoder::client_side();
                                break;
                            }
                        }
                    }
                }
                Input::Connected => {
                    h.link.handle_connected(h.now);
                    decoder = Decoder::client_side();
                }
                Input::ConnectFailed => h.link.handle_connect_failed(h.now),
                Input::Closed => h.link.handle_link_closed(h.now),
                Input::Advance(ms) => h.advance(Duration::from_millis(u64::from(ms))),
                Input::RequestTx(len) => h.link.request_tx(len),
                Input::Connect => h.link.connect(),
                Input::Metadata(n, v) => { let _ = h.link.set_metadata(Bytes::from(n), Bytes::from(v)); }
                Input::Credit(c) => h.link.add_peer_tx_credit(c),
                Input::Timeout(None) => h.link.cancel_timeout(),
                Input::Timeout(Some(ms)) => h.link.start_timeout(Some(Duration::from_millis(u64::from(ms)))),
                Input::Destroy => h.link.destroy(),
            }
            if !h.link.state().is_link_up() {
                created_on_link = false;
            }
            let mut produce = true;
            while let Some(t) = h.link.poll_transmit() {
                match t {
                    Transmit::Frame(f) => {
                        prop_assert!(f.validate().is_ok(), "{:?}", f);
                        if matches!(f, Frame::OnwardConnect | Frame::TxPayload(_)) {
                            prop_assert!(matches!(h.link.state(),
                                ClientLinkState::LocalConnected | ClientLinkState::Operational));
                        }
                        if matches!(f, Frame::StreamType(_)) {
                            prop_assert!(!created_on_link);
                        }
                    }
                    Transmit::Tx => {
                        let p = produce.then(|| Payload::new(PayloadFlags::SOM, Bytes::from_static(b"p")));
                        h.link.handle_tx(p, produce);
                        produce = false;
                    }
                }
            }
            if matches!(h.link.state(), ClientLinkState::LocalConnected | ClientLinkState::Operational) {
                created_on_link = true;
            }
            while let Some(e) = h.link.poll_event() {
                if destroyed {
                    prop_assert!(false, "an event after DESTROYING: {:?}", e);
                }
                if e == (ClientEvent::State { state: State::DESTROYING, ack: 0 }) {
                    destroyed = true;
                }
            }
            if destroyed {
                prop_assert_eq!(h.link.state(), ClientLinkState::Destroyed);
            }
        }
    }
}

#[test]
fn a_recreated_stream_gets_its_metadata_again() {
    let mut h = Harness::created();
    h.link.set_metadata(b(b"auth"), b(b"old")).unwrap();
    h.link.set_metadata(b(b"auth"), b(b"token")).unwrap();
    h.link.set_metadata(b(b"ctype"), b(b"json")).unwrap();
    assert_eq!(h.frames().len(), 2, "one frame per name");
    h.link.handle_link_closed(h.now);
    h.events();
    // Set again while the link is down: this value is the one that counts.
    h.link.set_metadata(b(b"ctype"), b(b"text")).unwrap();
    h.advance(LINK_RETRY);
    h.connected();
    assert!(matches!(h.frames()[..], [Frame::StreamType(_)]));
    h.feed(&hex("56 00 0d 00 00 00 00 00 2c 6d 69 6e 74 65 73 74"));
    let md = |n: &'static [u8], v: &'static [u8]| {
        Frame::TxMetadata(Metadata {
            name: b(n),
            value: b(v),
        })
    };
    assert_eq!(
        h.frames(),
        [md(b"ctype", b"text"), md(b"auth", b"token")],
        "every name once, with its latest value"
    );
}

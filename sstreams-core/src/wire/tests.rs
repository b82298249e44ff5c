//! Byte-vector tests from the captures of `spec/wire-protocol.md` §4–§9, stream parsing (§3.3)
//! and property tests

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::stream::{PayloadFlags, State};

/// Bytes from a string of hex pairs separated by spaces or `;`
fn hex(s: &str) -> Vec<u8> {
    s.split([' ', ';', '\n'])
        .filter(|t| !t.is_empty())
        .map(|t| u8::from_str_radix(t, 16).expect("hex pair"))
        .collect()
}

/// All frames of `bytes` fed in one call; asserts nothing is left over
fn decode_all(direction: Direction, bytes: &[u8]) -> Vec<Frame> {
    let mut d = Decoder::new(direction);
    d.handle_bytes(bytes);
    let mut frames = Vec::new();
    while let Some(f) = d.poll_frame().expect("well-formed") {
        frames.push(f);
    }
    assert_eq!(d.buffered_len(), 0);
    frames
}

/// All frames of `bytes` fed in chunks of `chunk` bytes, polling after each
fn decode_chunked(direction: Direction, bytes: &[u8], chunk: usize) -> Vec<Frame> {
    let mut d = Decoder::new(direction);
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk) {
        d.handle_bytes(piece);
        while let Some(f) = d.poll_frame().expect("well-formed") {
            frames.push(f);
        }
    }
    assert_eq!(d.buffered_len(), 0);
    frames
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        f.encode(&mut out).expect("encodable");
    }
    out.to_vec()
}

/// Decode a captured byte stream every way (whole, one byte at a time, odd chunks), check the
/// frames agree with `expected` and re-encode to the same bytes
fn check_capture(direction: Direction, bytes: &[u8], expected: &[Frame]) {
    let whole = decode_all(direction, bytes);
    assert_eq!(whole, expected);
    for chunk in [1, 2, 3, 5, 7, 16] {
        assert_eq!(
            decode_chunked(direction, bytes, chunk),
            expected,
            "chunk {chunk}"
        );
    }
    assert_eq!(encode_all(expected), bytes);
    // Every proper prefix of the first frame is incomplete, never an error.
    let first_len = expected[0].encoded_len();
    for cut in 0..first_len {
        assert_eq!(
            Frame::decode(direction, &bytes[..cut]),
            Err(WireError::Incomplete),
            "prefix {cut}"
        );
    }
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn conn_state(state: u32, ack: u32) -> Frame {
    Frame::ConnState(ConnState {
        state: State::from_u32(state).unwrap(),
        ack,
    })
}

fn create_ok(client_buflen: u32, rideshares: &[u8]) -> Frame {
    Frame::CreateResult(CreateResult {
        result: 0,
        client_buflen,
        rideshares: b(rideshares),
    })
}

fn payload(flags: u32, latency_us: u32, timestamp_us: u64, data: &[u8]) -> Payload {
    Payload {
        flags: PayloadFlags::from_bits_retain(flags),
        latency_us,
        timestamp_us,
        rideshare: None,
        data: b(data),
    }
}

const C2P: Direction = Direction::ClientToProxy;
const P2C: Direction = Direction::ProxyToClient;

// §5.1, §8.1 ------------------------------------------------------------------------------

#[test]
fn streamtype_smd_with_class_mask() {
    #[rustfmt::skip]
    let bytes = [
        0xaa,                   // STREAMTYPE
        0x00, 0x11,             // L = 17 = 1 + 4 + 4 + 8
        0x01,                   // SSSv1
        0x00, 0x00, 0x7b, 0xc3, // pid 31683
        0x00, 0x00, 0x00, 0x0e, // rx class mask SYSTEM_STATE|NETWORK|METRICS
        b'_', b'l', b'w', b's', b'_', b's', b'm', b'd', // "_lws_smd", no NUL
    ];
    let frame = Frame::StreamType(StreamType {
        pid: 31683,
        tx_credit: 0x0e,
        name: b(b"_lws_smd"),
    });
    check_capture(C2P, &bytes, &[frame]);
}

#[test]
fn streamtype_default_credit() {
    #[rustfmt::skip]
    let bytes = [
        0xaa, 0x00, 0x10,       // STREAMTYPE, L = 16
        0x01,                   // SSSv1
        0x00, 0x00, 0x7e, 0x31, // pid 32305
        0x1d, 0xcd, 0x65, 0x00, // credit 500000000, the C default
        b'm', b'i', b'n', b't', b'e', b's', b't', // "mintest"
    ];
    let frame = Frame::StreamType(StreamType {
        pid: 32305,
        tx_credit: DEFAULT_TX_CREDIT,
        name: b(b"mintest"),
    });
    check_capture(C2P, &bytes, &[frame]);
}

// §4.2, §5.2 ------------------------------------------------------------------------------

#[test]
fn create_result_failure() {
    #[rustfmt::skip]
    let bytes = [
        0x56, 0x00, 0x05,       // CREATE_RESULT, L = 5
        0x01,                   // result 1: failed
        0x00, 0x00, 0x00, 0x00, // client_buflen 0; no rideshare list
    ];
    let frame = Frame::CreateResult(CreateResult::failed());
    check_capture(P2C, &bytes, std::slice::from_ref(&frame));
    let Frame::CreateResult(c) = frame else {
        unreachable!()
    };
    assert!(!c.is_ok());
    assert_eq!(c.rideshare_names().count(), 0);
}

#[test]
fn create_result_smd_null_rideshare() {
    #[rustfmt::skip]
    let bytes = [
        0x56, 0x00, 0x0c,       // CREATE_RESULT, L = 12
        0x00,                   // result 0: created
        0x00, 0x00, 0x00, 0x00, // client_buflen 0 (unset)
        b',', b'(', b'n', b'u', b'l', b'l', b')', // ",(null)": glibc printf of NULL
    ];
    check_capture(P2C, &bytes, &[create_ok(0, b",(null)")]);
}

#[test]
fn create_result_leading_comma_and_buflen() {
    #[rustfmt::skip]
    let bytes = [
        0x56, 0x00, 0x0e,       // CREATE_RESULT, L = 14
        0x00,                   // created
        0x00, 0x00, 0x10, 0x00, // client_buflen 4096
        b',', b'n', b'a', b'i', b'l', b't', b'e', b's', b't', // ",nailtest"
    ];
    let frame = create_ok(4096, b",nailtest");
    check_capture(P2C, &bytes, std::slice::from_ref(&frame));
    let Frame::CreateResult(c) = frame else {
        unreachable!()
    };
    assert!(c.is_ok());
    assert_eq!(c.rideshare_names().collect::<Vec<_>>(), [&b"nailtest"[..]]);
    let two = CreateResult {
        rideshares: b(b",ridetest,mintest"),
        ..c
    };
    assert_eq!(
        two.rideshare_names().collect::<Vec<_>>(),
        [&b"ridetest"[..], b"mintest"]
    );
}

// §5.3 ------------------------------------------------------------------------------------

#[test]
fn connstate_one_byte_states() {
    for (state, name) in [
        (0x01, "CREATING"),
        (0x06, "CONNECTING"),
        (0x05, "CONNECTED"),
        (0x0e, "TIMEOUT"),
    ] {
        #[rustfmt::skip]
        let bytes = [
            0x57, 0x00, 0x05,       // CONNSTATE, L = 5
            state,                  // state, 1 byte because < 256
            0x00, 0x00, 0x00, 0x00, // ack 0
        ];
        let frame = conn_state(u32::from(state), 0);
        check_capture(P2C, &bytes, std::slice::from_ref(&frame));
        let Frame::ConnState(c) = frame else {
            unreachable!()
        };
        assert_eq!(c.state.short_name(), Some(name));
    }
}

#[test]
fn connstate_user_state_four_bytes() {
    #[rustfmt::skip]
    let bytes = [
        0x57, 0x00, 0x08,       // CONNSTATE, L = 8
        0x00, 0x00, 0x03, 0xe9, // state 1001 (USER_BASE + 1), u32 BE because ≥ 256
        0x00, 0x00, 0x55, 0xaa, // ack 0x55aa
    ];
    check_capture(P2C, &bytes, &[conn_state(1001, 0x55aa)]);
}

#[test]
fn connstate_two_and_three_state_bytes_are_accepted() {
    // The C client reads L − 4 state bytes; we accept the same (re-encoding is canonical).
    let two = hex("57 00 06 00 05 00 00 00 07");
    assert_eq!(decode_all(P2C, &two), [conn_state(5, 7)]);
    let three = hex("57 00 07 00 03 e9 00 00 00 00");
    assert_eq!(decode_all(P2C, &three), [conn_state(1001, 0)]);
    assert_eq!(
        conn_state(5, 7).to_bytes().unwrap()[..],
        hex("57 00 05 05 00 00 00 07")
    );
}

// §5.6, §5.8, §5.9, §5.10, §5.13 ----------------------------------------------------------

#[test]
fn tx_metadata() {
    #[rustfmt::skip]
    let bytes = [
        0xae, 0x00, 0x0a,       // METADATA (C→P), L = 10 = 1 + 4 + 5
        0x04,                   // name length 4
        b'm', b'y', b'm', b'd', // name "mymd"
        b'h', b'e', b'l', b'l', b'o', // value "hello" (rest of the body)
    ];
    let frame = Frame::TxMetadata(Metadata {
        name: b(b"mymd"),
        value: b(b"hello"),
    });
    check_capture(C2P, &bytes, &[frame]);
}

#[test]
fn rx_metadata() {
    #[rustfmt::skip]
    let bytes = [
        0x59, 0x00, 0x0b,       // METADATA (P→C), L = 11 = 1 + 5 + 5
        0x05,                   // name length 5
        b's', b'r', b'v', b'm', b'd', // name "srvmd"
        b'w', b'o', b'r', b'l', b'd', // value "world"
    ];
    let frame = Frame::RxMetadata(Metadata {
        name: b(b"srvmd"),
        value: b(b"world"),
    });
    check_capture(P2C, &bytes, &[frame]);
}

#[test]
fn four_byte_frames() {
    // TXCR_UPDATE +2000, L = 4, i32 BE
    check_capture(
        C2P,
        &hex("af 00 04 00 00 07 d0"),
        &[Frame::TxCreditUpdate(2000)],
    );
    // TIMEOUT_UPDATE 4000 ms, u32 BE
    check_capture(
        C2P,
        &hex("b0 00 04 00 00 0f a0"),
        &[Frame::TimeoutUpdate(4000)],
    );
    // PAYLOAD_LENGTH_HINT 11 bytes, u32 BE
    check_capture(
        C2P,
        &hex("b1 00 04 00 00 00 0b"),
        &[Frame::PayloadLengthHint(11)],
    );
    // TXCR_UPDATE from the proxy +777
    check_capture(
        P2C,
        &hex("58 00 04 00 00 03 09"),
        &[Frame::RxCreditUpdate(777)],
    );
    // Credit deltas are signed
    check_capture(
        C2P,
        &hex("af 00 04 ff ff ff fe"),
        &[Frame::TxCreditUpdate(-2)],
    );
    // Cancel the timeout
    check_capture(
        C2P,
        &hex("b0 00 04 ff ff ff ff"),
        &[Frame::TimeoutUpdate(u32::MAX)],
    );
}

#[test]
fn empty_frames() {
    check_capture(C2P, &hex("ab 00 00"), &[Frame::OnwardConnect]);
    check_capture(C2P, &hex("ac 00 00"), &[Frame::Destroying]);
}

#[test]
fn perf_truncated_by_the_c_proxy() {
    #[rustfmt::skip]
    let bytes = [
        0x5b, 0x00, 0x05,             // PERF, L = 5 (the C proxy's sizeof(pointer) bug)
        b'{', b'"', b'p', b'e', b'e', // `{"pee`
    ];
    check_capture(P2C, &bytes, &[Frame::Perf(b(b"{\"pee"))]);
}

// §8.1–§8.3 -------------------------------------------------------------------------------

#[test]
fn smd_create_reply_sequence() {
    let bytes = hex("56 00 0c 00 00 00 00 00 2c 28 6e 75 6c 6c 29;
         57 00 05 01 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00");
    let expected = [
        create_ok(0, b",(null)"),
        conn_state(1, 0), // CREATING
        conn_state(6, 0), // CONNECTING
        conn_state(5, 0), // CONNECTED
    ];
    check_capture(P2C, &bytes, &expected);
}

#[test]
fn smd_message_to_client() {
    #[rustfmt::skip]
    let bytes = [
        0x55,                                           // RX_PAYLOAD
        0x00, 0x2b,                                     // L = 43 = 16 + 16 + 11
        0x00, 0x00, 0x00, 0x03,                         // flags SOM|EOM
        0x00, 0x00, 0x00, 0x00,                         // latency field 0
        0x00, 0x00, 0x00, 0x00, 0x1c, 0xb7, 0xf0, 0xf1, // proxy monotonic µs 481816817
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, // SMD class 0x01000000
        0x00, 0x00, 0x00, 0x00, 0x1c, 0xb7, 0xf0, 0xe4, // SMD timestamp 481816804 µs
        b'{', b'"', b'h', b'e', b'l', b'l', b'o', b'"', b':', b'1', b'}', // {"hello":1}
    ];
    let expected = Frame::RxPayload(payload(3, 0, 481_816_817, &bytes[19..]));
    check_capture(P2C, &bytes, std::slice::from_ref(&expected));
    let Frame::RxPayload(p) = expected else {
        unreachable!()
    };
    let (head, body) = crate::smd::SsHeader::decode(&p.data).unwrap();
    assert_eq!(head.class.bits(), 0x0100_0000);
    assert_eq!(head.timestamp_us, 481_816_804);
    assert_eq!(body, b"{\"hello\":1}");
}

#[test]
fn smd_message_injected_into_c_client() {
    let bytes = hex("55 00 37 00 00 00 03 00 00 00 00 00 00 00 00 de ad be ef
         00 00 00 00 00 00 00 02 00 00 00 01 23 45 67 89");
    let mut all = bytes.clone();
    all.extend_from_slice(b"{\"state\":\"OPERATIONAL\"}");
    let expected = Frame::RxPayload(payload(3, 0, 0xdead_beef, &all[19..]));
    check_capture(P2C, &all, std::slice::from_ref(&expected));
    let Frame::RxPayload(p) = expected else {
        unreachable!()
    };
    let (head, _) = crate::smd::SsHeader::decode(&p.data).unwrap();
    assert_eq!(head.class.bits(), 2);
    assert_eq!(head.timestamp_us, 0x1_2345_6789);
}

#[test]
fn smd_message_from_client() {
    #[rustfmt::skip]
    let mut bytes = vec![
        0xad,                                           // TX_PAYLOAD
        0x00, 0x39,                                     // L = 57 = 16 + 16 + 25
        0x00, 0x00, 0x00, 0x03,                         // flags SOM|EOM
        0x00, 0x00, 0x00, 0x1c,                         // 28 µs between request and write
        0x00, 0x00, 0x00, 0x00, 0x25, 0xc3, 0x72, 0xda, // client monotonic µs
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, // SMD class NETWORK
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // SMD timestamp 0 (ignored)
    ];
    bytes.extend_from_slice(b"{\"class\":\"NETWORK\",\"x\":0}");
    let expected = Frame::TxPayload(payload(3, 28, 0x25c3_72da, &bytes[19..]));
    check_capture(C2P, &bytes, &[expected]);
}

// §9 --------------------------------------------------------------------------------------

#[test]
fn ordinary_stream_client_to_proxy() {
    // The scripted client's frames against the real C proxy, coalesced into one stream.
    let bytes = hex("aa 00 10 01 00 00 00 51 1d cd 65 00 6d 69 6e 74 65 73 74;
         b0 00 04 00 00 13 88; b1 00 04 00 00 00 0c; af 00 04 00 00 03 e8; ab 00 00;
         ad 00 1b 00 00 00 03 00 00 00 05 01 02 03 04 05 06 07 08
         63 6c 69 65 6e 74 2d 64 61 74 61");
    let expected = [
        Frame::StreamType(StreamType {
            pid: 0x51,
            tx_credit: DEFAULT_TX_CREDIT,
            name: b(b"mintest"),
        }),
        Frame::TimeoutUpdate(5000),
        Frame::PayloadLengthHint(12),
        Frame::TxCreditUpdate(1000),
        Frame::OnwardConnect,
        Frame::TxPayload(payload(3, 5, 0x0102_0304_0506_0708, b"client-data")),
    ];
    check_capture(C2P, &bytes, &expected);
}

#[test]
fn ordinary_stream_proxy_to_client() {
    // The real C proxy's frames (the echo frame, elided in the spec, is left out).
    let bytes = hex(
        "56 00 0d 00 00 00 00 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00;
         57 00 05 08 00 00 00 00; 57 00 05 06 00 00 00 00; 57 00 05 05 00 00 00 00;
         55 00 21 00 00 00 00 00 00 00 00 00 00 00 00 23 70 8e 25
         68 65 6c 6c 6f 2d 66 72 6f 6d 2d 73 65 72 76 65 72;
         57 00 05 02 00 00 00 00",
    );
    let expected = [
        create_ok(0, b",mintest"),
        conn_state(1, 0), // CREATING
        conn_state(8, 0), // POLL
        conn_state(6, 0), // CONNECTING
        conn_state(5, 0), // CONNECTED
        Frame::RxPayload(payload(0, 0, 0x2370_8e25, b"hello-from-server")),
        conn_state(2, 0), // DISCONNECTED
    ];
    check_capture(P2C, &bytes, &expected);
}

#[test]
fn real_c_client_against_scripted_proxy() {
    let c2p = hex("aa 00 10 01 00 00 7e 31 1d cd 65 00 6d 69 6e 74 65 73 74;
         b0 00 04 00 00 0f a0; af 00 04 00 00 07 d0; ae 00 0a 04 6d 79 6d 64 68 65 6c 6c 6f;
         b1 00 04 00 00 00 0b; ab 00 00;
         ad 00 1b 00 00 00 03 00 00 07 3a 00 00 00 00 27 15 91 25
         61 70 70 2d 70 61 79 6c 6f 61 64");
    let c2p_frames = [
        Frame::StreamType(StreamType {
            pid: 32305,
            tx_credit: DEFAULT_TX_CREDIT,
            name: b(b"mintest"),
        }),
        Frame::TimeoutUpdate(4000),
        Frame::TxCreditUpdate(2000),
        Frame::TxMetadata(Metadata {
            name: b(b"mymd"),
            value: b(b"hello"),
        }),
        Frame::PayloadLengthHint(11),
        Frame::OnwardConnect,
        Frame::TxPayload(payload(3, 0x73a, 0x2715_9125, b"app-payload")),
    ];
    check_capture(C2P, &c2p, &c2p_frames);
    // The C client wrote the five frames after STREAMTYPE as one 37-byte write.
    assert_eq!(encode_all(&c2p_frames[1..6]), &c2p[19..19 + 37]);

    let p2c = hex(
        "56 00 0d 00 00 00 08 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00;
         57 00 05 06 00 00 00 00; 59 00 0b 05 73 72 76 6d 64 77 6f 72 6c 64;
         57 00 05 05 00 00 00 00; 58 00 04 00 00 03 09;
         55 00 1e 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 7b
         73 65 72 76 65 72 2d 73 61 79 73 2d 68 69;
         57 00 05 0a 00 00 00 01; 57 00 05 02 00 00 00 00",
    );
    let p2c_frames = [
        create_ok(2048, b",mintest"),
        conn_state(1, 0), // CREATING
        conn_state(6, 0), // CONNECTING
        Frame::RxMetadata(Metadata {
            name: b(b"srvmd"),
            value: b(b"world"),
        }),
        conn_state(5, 0), // CONNECTED
        Frame::RxCreditUpdate(777),
        Frame::RxPayload(payload(3, 0, 0x7b, b"server-says-hi")),
        conn_state(10, 1), // QOS_ACK_REMOTE, ack 1
        conn_state(2, 0),  // DISCONNECTED
    ];
    check_capture(P2C, &p2c, &p2c_frames);
}

#[test]
fn unreachable_endpoint_states() {
    // §9: CONNECTING, UNREACHABLE; then POLL, CONNECTING, UNREACHABLE, ALL_RETRIES_FAILED;
    // §5.3: UNREACHABLE because the DNS server was unreachable carries ack 1.
    let bytes = hex(
        "57 00 05 06 00 00 00 00; 57 00 05 03 00 00 00 00; 57 00 05 08 00 00 00 00;
         57 00 05 06 00 00 00 00; 57 00 05 03 00 00 00 00; 57 00 05 09 00 00 00 00;
         57 00 05 03 00 00 00 01",
    );
    let expected = [6, 3, 8, 6, 3, 9].map(|s| conn_state(s, 0));
    let mut expected = expected.to_vec();
    expected.push(conn_state(3, 1));
    check_capture(P2C, &bytes, &expected);
}

#[test]
fn reading_straight_into_the_buffer() {
    let mut d = Decoder::client_side();
    d.buffer_mut()
        .extend_from_slice(&hex("57 00 05 05 00 00 00 00 58 00"));
    assert_eq!(d.poll_frame(), Ok(Some(conn_state(5, 0))));
    assert_eq!(d.poll_frame(), Ok(None));
    d.buffer_mut().extend_from_slice(&hex("04 00 00 00 01"));
    assert_eq!(d.poll_frame(), Ok(Some(Frame::RxCreditUpdate(1))));
}

// Payload details (§5.4) ------------------------------------------------------------------

#[test]
fn rx_payload_with_rideshare() {
    #[rustfmt::skip]
    let bytes = [
        0x55, 0x00, 0x17,       // RX_PAYLOAD, L = 23 = 16 + 1 + 4 + 2
        0x00, 0x00, 0x00, 0x21, // flags SOM|RIDESHARE
        0x00, 0x00, 0x00, 0x00, // latency 0
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // timestamp 9 µs
        0x04,                   // rideshare name length 4
        b'r', b'i', b'd', b'e', // rideshare "ride"
        b'h', b'i',             // payload "hi"
    ];
    let frame = Frame::RxPayload(Payload {
        flags: PayloadFlags::SOM | PayloadFlags::RIDESHARE,
        latency_us: 0,
        timestamp_us: 9,
        rideshare: Some(b(b"ride")),
        data: b(b"hi"),
    });
    check_capture(P2C, &bytes, &[frame]);
}

#[test]
fn zero_length_payloads_are_legal() {
    // RELATED_START marker, no data; then a rideshare with nothing after the name
    let bytes = hex("ad 00 10 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00;
         55 00 13 00 00 00 20 00 00 00 00 00 00 00 00 00 00 00 00 02 61 62");
    let frames = decode_all(C2P, &bytes[..19]);
    assert_eq!(frames, [Frame::TxPayload(payload(8, 0, 0, b""))]);
    let frames = decode_all(P2C, &bytes[19..]);
    let Frame::RxPayload(p) = &frames[0] else {
        panic!()
    };
    assert_eq!(p.rideshare.as_deref(), Some(&b"ab"[..]));
    assert!(p.data.is_empty());
    assert_eq!(encode_all(&frames), &bytes[19..]);
}

// Stream parsing (§3.3) -------------------------------------------------------------------

#[test]
fn split_at_every_point_gives_the_same_frames() {
    let bytes = hex(
        "56 00 0d 00 00 00 08 00 2c 6d 69 6e 74 65 73 74; 57 00 05 01 00 00 00 00;
         59 00 0b 05 73 72 76 6d 64 77 6f 72 6c 64; 58 00 04 00 00 03 09",
    );
    let expected = decode_all(P2C, &bytes);
    assert_eq!(expected.len(), 4);
    for cut in 0..=bytes.len() {
        let mut d = Decoder::client_side();
        let mut frames = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            d.handle_bytes(part);
            while let Some(f) = d.poll_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, expected, "cut {cut}");
    }
}

#[test]
fn truncated_input_is_incomplete_not_an_error() {
    let bytes = hex(
        "ad 00 1b 00 00 00 03 00 00 00 05 01 02 03 04 05 06 07 08 63 6c 69 65 6e 74 2d 64 61 74 61",
    );
    for cut in 0..bytes.len() {
        assert_eq!(
            Frame::decode(C2P, &bytes[..cut]),
            Err(WireError::Incomplete)
        );
        let mut d = Decoder::proxy_side();
        d.handle_bytes(&bytes[..cut]);
        assert_eq!(d.poll_frame(), Ok(None));
        assert!(!d.is_failed());
        assert_eq!(d.buffered_len(), cut);
    }
    let (frame, used) = Frame::decode(C2P, &bytes).unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(frame.encoded_len(), bytes.len());
}

#[test]
fn decode_reports_the_length_of_the_first_frame_only() {
    let bytes = hex("ab 00 00 ac 00 00");
    assert_eq!(Frame::decode(C2P, &bytes), Ok((Frame::OnwardConnect, 3)));
}

// Malformed input (§10) -------------------------------------------------------------------

fn malformed(direction: Direction, bytes: &[u8]) -> MalformedFrame {
    match Frame::decode(direction, bytes) {
        Err(WireError::Malformed(e)) => {
            let mut d = Decoder::new(direction);
            d.handle_bytes(bytes);
            assert_eq!(d.poll_frame(), Err(e.clone()));
            e
        }
        other => panic!("{bytes:02x?} decoded as {other:?}"),
    }
}

#[test]
fn unknown_reserved_and_wrong_direction_types() {
    for code in [0x00, 0x54, 0x5c, 0xa9, 0xb4, 0xf0, 0xff] {
        assert_eq!(
            malformed(C2P, &[code]),
            MalformedFrame::UnknownType(FrameType::from_u8(code))
        );
        assert_eq!(
            malformed(P2C, &[code]),
            MalformedFrame::UnknownType(FrameType::from_u8(code))
        );
    }
    for code in [0x5a, 0xb2, 0xb3] {
        let ty = FrameType::from_u8(code);
        assert_eq!(
            malformed(C2P, &[code, 0, 0]),
            MalformedFrame::ReservedType(ty)
        );
        assert_eq!(malformed(P2C, &[code]), MalformedFrame::ReservedType(ty));
    }
    // Judged on the type byte alone: no need to wait for the rest.
    for code in 0x55..=0x59 {
        let frame_type = FrameType::from_u8(code);
        assert_eq!(
            malformed(C2P, &[code]),
            MalformedFrame::WrongDirection {
                frame_type,
                expected: C2P
            }
        );
    }
    for code in 0xaa..=0xb1 {
        let frame_type = FrameType::from_u8(code);
        assert_eq!(
            malformed(P2C, &[code]),
            MalformedFrame::WrongDirection {
                frame_type,
                expected: P2C
            }
        );
    }
}

#[test]
fn a_client_may_send_perf_as_the_c_proxy_skips_it() {
    let (frame, used) = Frame::decode(C2P, &hex("5b 00 02 7b 7d")).unwrap();
    assert_eq!((frame, used), (Frame::Perf(b(b"{}")), 5));
}

#[test]
fn bad_lengths_are_judged_on_the_header() {
    let cases: &[(Direction, &str, usize)] = &[
        (C2P, "aa 00 09", 9),  // STREAMTYPE without a name
        (C2P, "aa 00 29", 41), // STREAMTYPE name of 32 bytes
        (C2P, "ab 00 01", 1),  // ONWARD_CONNECT with a body
        (C2P, "ac 00 02", 2),  // DESTROYING with a body
        (C2P, "ad 00 0f", 15), // TX_PAYLOAD shorter than its 16-byte header
        (C2P, "ae 00 02", 2),  // METADATA shorter than 3
        (C2P, "af 00 03", 3),  // TXCR_UPDATE not 4
        (C2P, "b0 00 05", 5),  // TIMEOUT_UPDATE not 4
        (C2P, "b1 00 00", 0),  // PAYLOAD_LENGTH_HINT not 4
        (P2C, "55 00 00", 0),  // RX_PAYLOAD empty
        (P2C, "56 00 04", 4),  // CREATE_RESULT without a full buffer size
        (P2C, "57 00 04", 4),  // CONNSTATE without a state byte
        (P2C, "57 00 09", 9),  // CONNSTATE with 5 state bytes
        (P2C, "58 00 08", 8),  // TXCR_UPDATE not 4
        (P2C, "59 00 00", 0),  // METADATA empty
        (P2C, "5b 00 00", 0),  // PERF empty
    ];
    for &(direction, header, len) in cases {
        let bytes = hex(header);
        let frame_type = FrameType::from_u8(bytes[0]);
        assert_eq!(
            malformed(direction, &bytes),
            MalformedFrame::BadLength { frame_type, len },
            "{header}"
        );
    }
}

#[test]
fn bad_bodies() {
    // STREAMTYPE version 2
    assert_eq!(
        malformed(C2P, &hex("aa 00 0a 02 00 00 00 01 00 00 00 00 61")),
        MalformedFrame::UnsupportedVersion(2)
    );
    // METADATA name length 0, 31, and one leaving no value byte
    for (k, body_len, bytes) in [
        (0, 3, "ae 00 03 00 61 62"),
        (31, 3, "59 00 03 1f 61 62"),
        (2, 3, "ae 00 03 02 61 62"),
    ] {
        let dir = if bytes.starts_with("ae") { C2P } else { P2C };
        assert_eq!(
            malformed(dir, &hex(bytes)),
            MalformedFrame::MetadataNameLength { len: k, body_len }
        );
    }
    // RIDESHARE flag with no length byte, length 0, 32, longer than the body
    let head = "00 00 00 20 00 00 00 00 00 00 00 00 00 00 00 00";
    assert_eq!(
        malformed(P2C, &hex(&format!("55 00 10 {head}"))),
        MalformedFrame::BadLength {
            frame_type: FrameType::RX_PAYLOAD,
            len: 16
        }
    );
    for (r, tail) in [(0u8, "00 61"), (32, "20 61"), (3, "03 61 62")] {
        let bytes = hex(&format!("ad 00 {:02x} {head} {tail}", 16 + hex(tail).len()));
        assert_eq!(
            malformed(C2P, &bytes),
            MalformedFrame::RideshareLength {
                len: r,
                body_len: 16 + hex(tail).len()
            }
        );
    }
    // CONNSTATE with state 0
    assert_eq!(
        malformed(P2C, &hex("57 00 05 00 00 00 00 00")),
        MalformedFrame::ZeroState
    );
}

#[test]
fn a_failed_decoder_stays_failed() {
    let mut d = Decoder::proxy_side();
    d.handle_bytes(&hex("ab 00 00 57 00 05"));
    assert_eq!(d.poll_frame(), Ok(Some(Frame::OnwardConnect)));
    let err = d.poll_frame().unwrap_err();
    assert!(matches!(err, MalformedFrame::WrongDirection { .. }));
    assert!(d.is_failed());
    d.handle_bytes(&hex("ab 00 00"));
    assert_eq!(d.buffered_len(), 0);
    assert_eq!(d.poll_frame(), Err(err));
}

#[test]
fn max_body_len_bounds_buffering() {
    let mut d = Decoder::client_side();
    d.max_body_len(1024);
    // A header announcing 1025 bytes is refused before any body byte arrives.
    d.handle_bytes(&hex("55 04 01"));
    assert_eq!(
        d.poll_frame(),
        Err(MalformedFrame::TooLong {
            len: 1025,
            max: 1024
        })
    );
    let mut d = Decoder::client_side();
    d.max_body_len(1024);
    let frame = Frame::RxPayload(payload(0, 0, 0, &[7; 1024 - 16]));
    d.handle_bytes(&frame.to_bytes().unwrap());
    assert_eq!(d.poll_frame(), Ok(Some(frame)));
}

// Encoding limits -------------------------------------------------------------------------

#[test]
fn unencodable_frames_write_nothing() {
    let long = Bytes::from(vec![b'x'; 32]);
    let cases = [
        (
            Frame::StreamType(StreamType {
                pid: 0,
                tx_credit: 0,
                name: Bytes::new(),
            }),
            EncodeError::StreamTypeName { len: 0 },
        ),
        (
            Frame::StreamType(StreamType {
                pid: 0,
                tx_credit: 0,
                name: long.clone(),
            }),
            EncodeError::StreamTypeName { len: 32 },
        ),
        (
            Frame::TxMetadata(Metadata {
                name: long.slice(..31),
                value: b(b"v"),
            }),
            EncodeError::MetadataName { len: 31 },
        ),
        (
            Frame::RxMetadata(Metadata {
                name: b(b"n"),
                value: Bytes::new(),
            }),
            EncodeError::EmptyMetadataValue,
        ),
        (
            Frame::RxPayload(payload(0x20, 0, 0, b"")),
            EncodeError::RideshareMismatch,
        ),
        (
            Frame::TxPayload(Payload {
                rideshare: Some(b(b"r")),
                ..payload(0, 0, 0, b"")
            }),
            EncodeError::RideshareMismatch,
        ),
        (
            Frame::TxPayload(Payload {
                rideshare: Some(long.clone()),
                ..payload(0x20, 0, 0, b"")
            }),
            EncodeError::RideshareName { len: 32 },
        ),
        (
            Frame::TxPayload(payload(0, 0, 0, &vec![0; MAX_BODY_LEN - 15])),
            EncodeError::BodyTooLong {
                len: MAX_BODY_LEN + 1,
            },
        ),
        (Frame::Perf(Bytes::new()), EncodeError::EmptyPerf),
    ];
    for (frame, err) in cases {
        let mut out = BytesMut::new();
        assert_eq!(frame.encode(&mut out), Err(err));
        assert!(out.is_empty());
    }
    // The largest payload frame fits.
    let max = Frame::TxPayload(payload(0, 0, 0, &vec![0; MAX_BODY_LEN - 16]));
    let bytes = max.to_bytes().unwrap();
    assert_eq!(bytes[1..3], [0xff, 0xff]);
    assert_eq!(decode_all(C2P, &bytes), [max]);
}

#[test]
fn frame_type_names_and_directions() {
    assert_eq!(
        format!("{:?}", FrameType::CONNSTATE),
        "RXPRE_CONNSTATE(0x57)"
    );
    assert_eq!(format!("{}", FrameType::from_u8(0xf0)), "0xf0");
    assert_eq!(FrameType::PERF.direction(), Some(P2C));
    assert_eq!(FrameType::PAYLOAD_LENGTH_HINT.direction(), Some(C2P));
    assert_eq!(FrameType::LINK_VALIDITY_PROBE.direction(), None);
    assert!(FrameType::TLSNEG_ENCLAVE_SIGN.is_reserved());
    for f in sample_frames() {
        assert_eq!(f.frame_type().direction(), Some(f.direction()));
    }
}

// Round trips and properties --------------------------------------------------------------

/// One frame of every type
fn sample_frames() -> Vec<Frame> {
    vec![
        Frame::StreamType(StreamType {
            pid: 1,
            tx_credit: 2,
            name: b(b"a"),
        }),
        Frame::OnwardConnect,
        Frame::Destroying,
        Frame::TxPayload(payload(0x43, 1, 2, b"tx")),
        Frame::TxMetadata(Metadata {
            name: b(b"n"),
            value: b(b"v"),
        }),
        Frame::TxCreditUpdate(i32::MIN),
        Frame::TimeoutUpdate(0),
        Frame::PayloadLengthHint(u32::MAX),
        Frame::RxPayload(Payload {
            rideshare: Some(b(b"r")),
            ..payload(0x20, 3, 4, b"rx")
        }),
        Frame::CreateResult(CreateResult::failed()),
        Frame::ConnState(ConnState {
            state: State::from_u32(u32::MAX).unwrap(),
            ack: 9,
        }),
        Frame::RxCreditUpdate(i32::MAX),
        Frame::RxMetadata(Metadata {
            name: b(&[b'm'; 30]),
            value: b(&[0]),
        }),
        Frame::Perf(b(b"{}")),
    ]
}

#[test]
fn every_frame_type_round_trips() {
    for frame in sample_frames() {
        let bytes = frame.to_bytes().unwrap();
        assert_eq!(bytes.len(), frame.encoded_len());
        assert_eq!(
            Frame::decode(frame.direction(), &bytes),
            Ok((frame.clone(), bytes.len()))
        );
    }
}

fn arb_bytes(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), range).prop_map(Bytes::from)
}

fn arb_payload() -> impl Strategy<Value = Payload> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        proptest::option::of(arb_bytes(1..=31)),
        arb_bytes(0..=64),
    )
        .prop_map(|(flags, latency_us, timestamp_us, rideshare, data)| {
            let flags = PayloadFlags::from_bits_retain(flags) - PayloadFlags::RIDESHARE;
            let flags = match rideshare {
                Some(_) => flags | PayloadFlags::RIDESHARE,
                None => flags,
            };
            Payload {
                flags,
                latency_us,
                timestamp_us,
                rideshare,
                data,
            }
        })
}

fn arb_metadata() -> impl Strategy<Value = Metadata> {
    (arb_bytes(1..=30), arb_bytes(1..=40)).prop_map(|(name, value)| Metadata { name, value })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), arb_bytes(1..=31)).prop_map(|(pid, tx_credit, name)| {
            Frame::StreamType(StreamType {
                pid,
                tx_credit,
                name,
            })
        }),
        Just(Frame::OnwardConnect),
        Just(Frame::Destroying),
        arb_payload().prop_map(Frame::TxPayload),
        arb_metadata().prop_map(Frame::TxMetadata),
        any::<i32>().prop_map(Frame::TxCreditUpdate),
        any::<u32>().prop_map(Frame::TimeoutUpdate),
        any::<u32>().prop_map(Frame::PayloadLengthHint),
        arb_payload().prop_map(Frame::RxPayload),
        (any::<u8>(), any::<u32>(), arb_bytes(0..=40)).prop_map(
            |(result, client_buflen, rideshares)| {
                Frame::CreateResult(CreateResult {
                    result,
                    client_buflen,
                    rideshares,
                })
            }
        ),
        (1..=u32::MAX, any::<u32>()).prop_map(|(s, ack)| {
            Frame::ConnState(ConnState {
                state: State::from_u32(s).unwrap(),
                ack,
            })
        }),
        any::<i32>().prop_map(Frame::RxCreditUpdate),
        arb_metadata().prop_map(Frame::RxMetadata),
        arb_bytes(1..=40).prop_map(Frame::Perf),
    ]
}

proptest! {
    #[test]
    fn arbitrary_frames_round_trip(frames in proptest::collection::vec(arb_frame(), 1..8), chunk in 1usize..40) {
        for direction in [C2P, P2C] {
            let ours: Vec<Frame> = frames.iter().filter(|f| f.direction() == direction).cloned().collect();
            if ours.is_empty() {
                continue;
            }
            let bytes = encode_all(&ours);
            prop_assert_eq!(decode_all(direction, &bytes), ours.clone());
            prop_assert_eq!(decode_chunked(direction, &bytes, chunk), ours);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), chunk in 1usize..50) {
        for direction in [C2P, P2C] {
            let mut d = Decoder::new(direction);
            for piece in bytes.chunks(chunk) {
                d.handle_bytes(piece);
                while let Ok(Some(frame)) = d.poll_frame() {
                    // What decodes re-encodes to a frame that decodes to itself.
                    let again = frame.to_bytes().unwrap();
                    prop_assert_eq!(Frame::decode(direction, &again).unwrap().0, frame);
                }
            }
            let _ = Frame::decode(direction, &bytes);
        }
    }

    #[test]
    fn complete_frames_decode_or_are_malformed_never_incomplete(
        code in prop_oneof![0x55u8..=0x5b, 0xaau8..=0xb3],
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        // A valid header followed by random body bytes: decoded, malformed, never a panic,
        // and never incomplete (all the announced bytes are there).
        let mut bytes = vec![code, 0, body.len() as u8];
        bytes.extend_from_slice(&body);
        for direction in [C2P, P2C] {
            match Frame::decode(direction, &bytes) {
                Ok((frame, used)) => {
                    prop_assert_eq!(used, bytes.len());
                    let canonical = !matches!(frame, Frame::ConnState(_)) || body.len() == frame.body_len();
                    if canonical {
                        prop_assert_eq!(&frame.to_bytes().unwrap()[..], &bytes[..]);
                    }
                }
                Err(e) => prop_assert!(!e.is_incomplete()),
            }
        }
    }
}

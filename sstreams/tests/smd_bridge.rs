//! The `_lws_smd` payload bridge

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sstreams::smd::{
    SS_HEADER_LEN, SmdBus, SmdClass, SmdError, SmdFormatError, SmdMessage, SsBridge, SsHeader,
};

/// The C example's stream filter: SYSTEM_STATE | METRICS | NETWORK
const FILTER: SmdClass = SmdClass::from_bits(
    SmdClass::SYSTEM_STATE.bits() | SmdClass::METRICS.bits() | SmdClass::NETWORK.bits(),
);

fn tx_payload(class: SmdClass, body: &[u8]) -> Vec<u8> {
    let mut p = SsHeader {
        class,
        timestamp_us: 0,
    }
    .encode()
    .to_vec();
    p.extend_from_slice(body);
    p
}

#[test]
fn rx_payloads_carry_header_and_only_matching_classes() {
    let bus = SmdBus::default();
    let mut bridge = SsBridge::from_tx_credit(&bus, 0xe);
    assert_eq!(bridge.filter(), FILTER);
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let s = stamps.clone();
    let _direct = bus.register(SmdClass::ALL, move |m| {
        s.lock().unwrap().push(m.timestamp_us())
    });

    bus.post(SmdClass::INTERACTION, b"{\"class\":\"INTERACTION\"}")
        .unwrap();
    bus.post(SmdClass::NETWORK, b"{\"class\":\"NETWORK\"}")
        .unwrap();
    bus.dispatch_pending();

    let mut out = Vec::new();
    assert!(bridge.try_recv_payload(&mut out));
    let (h, body) = SsHeader::decode(&out).unwrap();
    assert_eq!(&out[..8], &[0, 0, 0, 0, 0, 0, 0, 4]); // class NETWORK, BE u64
    assert_eq!(h.class, SmdClass::NETWORK);
    assert_eq!(h.timestamp_us, stamps.lock().unwrap()[1]);
    assert_eq!(body, b"{\"class\":\"NETWORK\"}");
    assert!(
        !bridge.try_recv_payload(&mut out),
        "INTERACTION must not reach the stream"
    );
    assert!(out.is_empty());
}

#[test]
fn tx_payload_is_posted_with_header_class_and_fresh_timestamp() {
    let bus = SmdBus::default();
    let mut bridge = SsBridge::new(&bus, FILTER);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _direct = bus.register(SmdClass::ALL, move |m: &SmdMessage| {
        s.lock()
            .unwrap()
            .push((m.class(), m.timestamp_us(), m.payload().to_vec()));
    });

    assert_eq!(
        bridge
            .send_payload(&tx_payload(SmdClass::NETWORK, b"n"))
            .unwrap(),
        2
    );
    assert_eq!(
        bridge
            .send_payload(&tx_payload(SmdClass::INTERACTION, b"i"))
            .unwrap(),
        1
    );
    bus.dispatch_pending();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].0, seen[0].2.as_slice()),
        (SmdClass::NETWORK, &b"n"[..])
    );
    assert!(seen[0].1 > 0, "stamped now, header timestamp 0 ignored");
    assert_eq!(seen[1].0, SmdClass::INTERACTION);

    // The sender hears its own NETWORK message (its filter matches), not the INTERACTION one.
    let mut out = Vec::new();
    assert!(bridge.try_recv_payload(&mut out));
    assert_eq!(&out[SS_HEADER_LEN..], b"n");
    assert!(!bridge.try_recv_payload(&mut out));
}

#[test]
fn malformed_tx_payloads_are_errors() {
    let bus = SmdBus::default();
    let bridge = SsBridge::new(&bus, FILTER);
    assert_eq!(
        bridge.send_payload(&[0; 15]),
        Err(SmdError::Format(SmdFormatError::ShortHeader { len: 15 }))
    );
    assert_eq!(
        bridge.send_payload(&tx_payload(SmdClass::NETWORK, &[0; 385])),
        Err(SmdError::Format(SmdFormatError::PayloadTooLarge {
            len: 385
        }))
    );
    // Nobody listens to METRICS except the bridge itself... which does: 1 recipient.
    assert_eq!(
        bridge
            .send_payload(&tx_payload(SmdClass::METRICS, b"m"))
            .unwrap(),
        1
    );
    assert_eq!(
        bridge
            .send_payload(&tx_payload(SmdClass::user(3).unwrap(), b"u"))
            .unwrap(),
        0
    );
}

#[test]
fn forward_rx_keeps_timestamp_and_skips_the_bridge() {
    let bus = SmdBus::default();
    let mut bridge = SsBridge::new(&bus, FILTER);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let _local = bus.register(SmdClass::NETWORK, move |m: &SmdMessage| {
        s.lock().unwrap().push(m.timestamp_us());
    });
    // A payload as a proxy would deliver it, stamped a moment ago by another process.
    let ts = {
        let probe = bus.subscribe(SmdClass::METRICS);
        bus.post(SmdClass::METRICS, b"").unwrap();
        let mut probe = probe;
        probe.try_recv().unwrap().timestamp_us()
    };
    let mut payload = SsHeader {
        class: SmdClass::NETWORK,
        timestamp_us: ts,
    }
    .encode()
    .to_vec();
    payload.extend_from_slice(b"{\"from\":\"proxy\"}");
    assert_eq!(bridge.forward_rx(&payload).unwrap(), 1);
    bus.dispatch_pending();
    assert_eq!(*seen.lock().unwrap(), [ts]);
    let mut out = Vec::new();
    // The bridge saw the METRICS probe, but not its own forwarded message.
    assert!(bridge.try_recv_payload(&mut out));
    assert_eq!(SsHeader::decode(&out).unwrap().0.class, SmdClass::METRICS);
    assert!(!bridge.try_recv_payload(&mut out));
    assert!(bridge.forward_rx(&[1, 2, 3]).is_err());
}

#[tokio::test]
async fn recv_payload_waits_and_ends_on_close() {
    let bus = SmdBus::default();
    let mut bridge = SsBridge::new(&bus, FILTER);
    let poster = {
        let bus = bus.clone();
        std::thread::spawn(move || bus.post(SmdClass::SYSTEM_STATE, b"{\"state\":\"X\"}"))
    };
    let mut out = Vec::new();
    let wait = Duration::from_secs(20);
    assert!(
        tokio::time::timeout(wait, bridge.recv_payload(&mut out))
            .await
            .unwrap()
    );
    assert_eq!(out.len(), 16 + 13);
    poster.join().unwrap().unwrap();
    bus.close();
    assert!(
        !tokio::time::timeout(wait, bridge.recv_payload(&mut out))
            .await
            .unwrap()
    );
}

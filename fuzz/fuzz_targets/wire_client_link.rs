//! Arbitrary bytes from a proxy, interleaved with link events, app requests and time, against
//! the client side of a link: nothing may panic; frames written are encodable and never
//! ONWARD_CONNECT or TX_PAYLOAD before CREATE_RESULT; nothing follows DESTROYING.
#![no_main]

use std::time::{Duration, Instant};

use sstreams_core::stream::{PayloadFlags, State};
use sstreams_core::wire::{
    ClientEvent, ClientLink, ClientLinkConfig, ClientLinkState, Decoder, Frame, Payload, Transmit,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let config = ClientLinkConfig {
        streamtype: bytes::Bytes::from_static(b"mintest"),
        pid: 1,
        tx_credit: 0,
    };
    let mut link = ClientLink::new(config, now);
    let mut decoder = Decoder::client_side();
    let mut destroyed = false;
    let mut rest = data;
    // Each step: one control byte, then for a "bytes" step a length byte and that many bytes.
    while let Some((&control, tail)) = rest.split_first() {
        rest = tail;
        match control % 12 {
            0..=3 => {
                let n = usize::from(rest.first().copied().unwrap_or(0))
                    .min(rest.len().saturating_sub(1));
                let bytes = rest.get(1..1 + n).unwrap_or_default();
                rest = rest.get(1 + n..).unwrap_or_default();
                decoder.handle_bytes(bytes);
                loop {
                    match decoder.poll_frame() {
                        Ok(Some(f)) => {
                            let up = link.state().is_link_up();
                            match link.handle_frame(now, f) {
                                Ok(()) => assert!(up),
                                Err(e) if e.destroys_stream() => {
                                    assert_eq!(link.state(), ClientLinkState::Destroyed)
                                }
                                Err(_) if !up => {}
                                Err(_) => assert_eq!(link.state(), ClientLinkState::Waiting),
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            link.handle_link_closed(now);
                            decoder = Decoder::client_side();
                            break;
                        }
                    }
                }
            }
            4 => {
                link.handle_connected(now);
                decoder = Decoder::client_side();
            }
            5 => link.handle_connect_failed(now),
            6 => link.handle_link_closed(now),
            7 => {
                now += Duration::from_millis(u64::from(control) * 20);
                if link.poll_timeout().is_some_and(|t| t <= now) {
                    link.handle_timeout(now);
                }
            }
            8 => link.request_tx((control & 0x10 != 0).then_some(u32::from(control))),
            9 => link.connect(),
            10 => {
                let _ = link.set_metadata(
                    bytes::Bytes::from(vec![b'm'; usize::from(control >> 4)]),
                    bytes::Bytes::from_static(b"v"),
                );
                link.add_peer_tx_credit(i32::from(control));
                link.start_timeout(Some(Duration::from_millis(u64::from(control))));
            }
            _ => link.destroy(),
        }
        let mut produce = control & 0x20 != 0;
        while let Some(t) = link.poll_transmit() {
            match t {
                Transmit::Frame(f) => {
                    assert!(f.validate().is_ok(), "{f:?}");
                    if matches!(f, Frame::OnwardConnect | Frame::TxPayload(_)) {
                        assert!(matches!(
                            link.state(),
                            ClientLinkState::LocalConnected | ClientLinkState::Operational
                        ));
                    }
                }
                Transmit::Tx => {
                    let p = produce
                        .then(|| Payload::new(PayloadFlags::SOM, bytes::Bytes::from_static(b"p")));
                    link.handle_tx(p, produce);
                    produce = false;
                }
                _ => unreachable!("a new Transmit variant"),
            }
        }
        while let Some(e) = link.poll_event() {
            assert!(!destroyed, "an event after DESTROYING: {e:?}");
            if let ClientEvent::State {
                state: State::DESTROYING,
                ..
            } = e
            {
                destroyed = true;
            }
        }
    }
});

//! Arbitrary bytes from a client against the proxy side of a link: decoded frames drive
//! `ProxyLink`; nothing may panic, and once closed the link stays closed.
#![no_main]

use sstreams_core::wire::{Decoder, ProxyAction, ProxyLink, ProxyLinkState};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let create_ok = control & 1 == 0;
    let chunk = usize::from(control >> 1).max(1);
    let mut decoder = Decoder::proxy_side();
    let mut link = ProxyLink::new();
    for piece in bytes.chunks(chunk) {
        decoder.handle_bytes(piece);
        loop {
            let frame = match decoder.poll_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                // A malformed frame closes the link in the runtime.
                Err(_) => return,
            };
            let was_closed = link.state() == ProxyLinkState::Closed;
            match link.handle_frame(frame) {
                Ok(action) => {
                    assert!(!was_closed, "a closed link accepted a frame");
                    if let Some(ProxyAction::Create { .. }) = action {
                        assert_eq!(link.state(), ProxyLinkState::ExpectCreateResult);
                        link.handle_created(create_ok);
                    }
                }
                Err(_) => assert_eq!(link.state(), ProxyLinkState::Closed),
            }
        }
    }
});

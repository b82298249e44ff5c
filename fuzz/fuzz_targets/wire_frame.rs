//! The proxy wire decoder on arbitrary bytes, in either direction, fed in chunks
//!
//! Nothing may panic; every frame that decodes re-encodes to the bytes it came from (except a
//! CONNSTATE sent with a non-canonical 2- or 3-byte state, which re-encodes canonically to the
//! same frame); the incremental decoder agrees with the one-shot decoder on the frames and on
//! the final error.
#![no_main]

use sstreams_core::wire::{Decoder, Direction, Frame, WireError};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let direction = if control & 1 == 0 {
        Direction::ClientToProxy
    } else {
        Direction::ProxyToClient
    };
    let chunk = usize::from(control >> 1) + 1;

    // One-shot decoding, frame after frame.
    let mut rest = bytes;
    let mut frames = Vec::new();
    let end = loop {
        match Frame::decode(direction, rest) {
            Ok((frame, used)) => {
                assert!(used >= 3 && used <= rest.len());
                let again = frame.to_bytes().expect("a decoded frame is encodable");
                if again[..] != rest[..used] {
                    assert!(matches!(frame, Frame::ConnState(_)), "{frame:?}");
                    assert_eq!(
                        Frame::decode(direction, &again),
                        Ok((frame.clone(), again.len()))
                    );
                }
                frames.push(frame);
                rest = &rest[used..];
            }
            Err(e) => break e,
        }
    };

    // Incremental decoding in chunks: same frames, same outcome.
    let mut decoder = Decoder::new(direction);
    let mut incremental = Vec::new();
    let mut failure = None;
    'feed: for piece in bytes.chunks(chunk) {
        decoder.handle_bytes(piece);
        loop {
            match decoder.poll_frame() {
                Ok(Some(frame)) => incremental.push(frame),
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(incremental, frames);
    match end {
        WireError::Incomplete => {
            assert_eq!(failure, None);
            assert_eq!(decoder.buffered_len(), rest.len());
        }
        WireError::Malformed(e) => assert_eq!(failure, Some(e)),
        _ => unreachable!("WireError has two kinds"),
    }
});

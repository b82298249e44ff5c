//! Fuzz the `_lws_smd` payload decoder: never panics, and re-encoding what it accepts gives
//! the input back (with the ignored upper class half zeroed)
#![no_main]

use sstreams_core::smd::{SS_HEADER_LEN, SmdMessage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = SmdMessage::from_ss_payload(data) {
        let mut out = Vec::new();
        msg.write_ss_payload(&mut out);
        assert_eq!(out.len(), data.len());
        assert_eq!(out[..4], [0, 0, 0, 0]);
        assert_eq!(out[4..], data[4..]);
        assert!(data.len() >= SS_HEADER_LEN);
    }
});

//! What the proxy has to write to one client: frames in the C write order, bounded by the policy
//!
//! Spec `wire-protocol.md` §6 (buffering, rx flow control) and §7.2 (write priority). The
//! runtime hands everything the onward stream produces to an [`Outbox`] (`handle_*`), takes
//! frames out in the order they must be written ([`Outbox::poll_transmit`]), reports the bytes
//! the socket took ([`Outbox::handle_written`]) and pulls the onward stream's next event only
//! while [`Outbox::wants_rx`] says so. Not pulling is what back-pressures the onward
//! connection: its events wait in its own bounded queue, and then its socket is not read.
//!
//! ```text
//!  onward stream ──handle_rx/state/metadata──► Outbox ──poll_transmit──► socket
//!        ▲                                       │    ◄──handle_written──
//!        └──────── pulled while wants_rx() ──────┘
//! ```
//!
//! # Write order (§7.2)
//!
//! 1. CREATE_RESULT;
//! 2. rx METADATA (it overtakes payload and states already queued, as in C);
//! 3. PERF;
//! 4. everything else (RX_PAYLOAD, CONNSTATE, TXCR_UPDATE) first in, first out.
//!
//! # Memory (§6)
//!
//! The bytes counted are those of every frame handed in and not yet written, including frames
//! already taken by `poll_transmit` whose write is under way. With `rxflow_on_above` set, the
//! runtime stops pulling above it and resumes below `rxflow_off_below` (hysteresis); without
//! it, it stops at `buflen`. The count may pass the limit by at most one onward event (one rx
//! is accepted whole, e.g. one raw read of up to 256 KiB).
//!
//! Unlike C, nothing is ever dropped: the C proxy discards everything queued for the client
//! and reports the onward stream disconnected when its buffer overflows; here the onward
//! stream is made to wait instead.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{ConnState, CreateResult, EncodeError, Frame, MAX_BODY_LEN, Metadata, Payload};
use crate::policy::spec::BufferSpec;
use crate::stream::PayloadFlags;

/// Most payload bytes in one RX_PAYLOAD frame (65519): the 16-bit body length less the
/// payload header
pub const MAX_RX_CHUNK: usize = MAX_BODY_LEN - super::PAYLOAD_HEADER_LEN;

/// How many bytes one link may queue toward its client, and when to stop pulling onward rx
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    /// Policy `proxy_buflen`: stop pulling at this many bytes queued (when `rxflow_on_above`
    /// is 0). Default 32768.
    pub buflen: usize,
    /// Policy `proxy_buflen_rxflow_on_above`: stop pulling above this many bytes; 0 is off
    pub rxflow_on_above: usize,
    /// Policy `proxy_buflen_rxflow_off_below`: resume pulling below this many bytes
    pub rxflow_off_below: usize,
}

impl OutboxLimits {
    /// The limits a streamtype's policy sets
    pub fn from_policy(b: &BufferSpec) -> Self {
        Self {
            buflen: b.proxy_buflen as usize,
            rxflow_on_above: b.proxy_buflen_rxflow_on_above as usize,
            rxflow_off_below: b.proxy_buflen_rxflow_off_below as usize,
        }
    }
}

impl Default for OutboxLimits {
    fn default() -> Self {
        Self::from_policy(&BufferSpec::default())
    }
}

/// Frames waiting to be written to one client, in the C proxy's write order
#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    create_result: Option<CreateResult>,
    metadata: VecDeque<Metadata>,
    perf: VecDeque<Bytes>,
    fifo: VecDeque<Frame>,
    /// Most payload bytes per RX_PAYLOAD frame
    rx_chunk: usize,
    /// Encoded bytes handed in and not yet reported written
    pending: usize,
    /// Rx flow control has stopped pulling the onward stream
    paused: bool,
}

impl Outbox {
    /// An empty outbox with these limits
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            limits,
            create_result: None,
            metadata: VecDeque::new(),
            perf: VecDeque::new(),
            fifo: VecDeque::new(),
            rx_chunk: MAX_RX_CHUNK,
            pending: 0,
            paused: false,
        }
    }

    /// Most payload bytes per RX_PAYLOAD frame, 1 to [`MAX_RX_CHUNK`]; default is
    /// [`MAX_RX_CHUNK`]
    pub fn rx_chunk(&mut self, max: usize) -> &mut Self {
        self.rx_chunk = max.clamp(1, MAX_RX_CHUNK);
        self
    }

    /// The outcome of STREAMTYPE; written before anything else
    pub fn handle_create_result(&mut self, c: CreateResult) {
        self.add(Frame::CreateResult(c.clone()).encoded_len());
        self.create_result = Some(c);
    }

    /// The onward stream changed state
    pub fn handle_state(&mut self, c: ConnState) {
        self.push(Frame::ConnState(c));
    }

    /// The onward stream captured a metadata value; refused (and not queued) when a C client
    /// could not take it: a name of 0 or more than 30 bytes, or an empty value
    pub fn handle_metadata(&mut self, m: Metadata) -> Result<(), EncodeError> {
        let f = Frame::RxMetadata(m);
        f.validate()?;
        self.add(f.encoded_len());
        let Frame::RxMetadata(m) = f else {
            unreachable!("built above")
        };
        self.metadata.push_back(m);
        Ok(())
    }

    /// The onward stream received payload, stamped `timestamp_us` (the proxy's monotonic
    /// clock, informational)
    ///
    /// Payload flagged [`PayloadFlags::PERF_JSON`] is connection-performance JSON: it becomes
    /// one PERF frame with all of the JSON (the C proxy truncates it to 5 bytes), or nothing
    /// when empty or longer than a frame can carry. Other payload becomes RX_PAYLOAD frames of
    /// at most [`rx_chunk`](Self::rx_chunk) bytes, SOM only on the first piece and EOM only on
    /// the last.
    pub fn handle_rx(&mut self, data: Bytes, flags: PayloadFlags, timestamp_us: u64) {
        if flags.contains(PayloadFlags::PERF_JSON) {
            if !data.is_empty() && data.len() <= MAX_BODY_LEN {
                self.add(Frame::Perf(data.clone()).encoded_len());
                self.perf.push_back(data);
            }
            return;
        }
        let chunk = self.rx_chunk;
        let pieces = data.len().div_ceil(chunk).max(1);
        for i in 0..pieces {
            let piece = data.slice(i * chunk..((i + 1) * chunk).min(data.len()));
            let mut f = flags;
            if i > 0 {
                f = f - PayloadFlags::SOM;
            }
            if i + 1 < pieces {
                f = f - PayloadFlags::EOM;
            }
            let mut p = Payload::new(f, piece);
            p.timestamp_us = timestamp_us;
            self.push(Frame::RxPayload(p));
        }
    }

    /// The remote peer lets the client send `delta` more bytes (TXCR_UPDATE, proxy to client)
    ///
    /// Only h2 onward streams produce this in C; nothing calls it until there is an h2
    /// binding.
    pub fn handle_credit(&mut self, delta: i32) {
        self.push(Frame::RxCreditUpdate(delta));
    }

    /// The socket took `n` bytes of the frames [`poll_transmit`](Self::poll_transmit) gave
    pub fn handle_written(&mut self, n: usize) {
        self.pending = self.pending.saturating_sub(n);
        self.update_flow();
    }

    /// The next frame to write, in the order of §7.2; it stays counted in
    /// [`pending_len`](Self::pending_len) until reported with
    /// [`handle_written`](Self::handle_written)
    #[must_use = "the frame must be written"]
    pub fn poll_transmit(&mut self) -> Option<Frame> {
        if let Some(c) = self.create_result.take() {
            return Some(Frame::CreateResult(c));
        }
        if let Some(m) = self.metadata.pop_front() {
            return Some(Frame::RxMetadata(m));
        }
        if let Some(p) = self.perf.pop_front() {
            return Some(Frame::Perf(p));
        }
        self.fifo.pop_front()
    }

    /// Whether the runtime should take the onward stream's next event now
    pub fn wants_rx(&self) -> bool {
        !self.paused
    }

    /// Whether no frame waits for [`poll_transmit`](Self::poll_transmit)
    pub fn is_empty(&self) -> bool {
        self.create_result.is_none()
            && self.metadata.is_empty()
            && self.perf.is_empty()
            && self.fifo.is_empty()
    }

    /// Encoded bytes handed in and not yet reported written
    pub fn pending_len(&self) -> usize {
        self.pending
    }

    fn push(&mut self, f: Frame) {
        self.add(f.encoded_len());
        self.fifo.push_back(f);
    }

    fn add(&mut self, n: usize) {
        self.pending += n;
        self.update_flow();
    }

    fn update_flow(&mut self) {
        let OutboxLimits {
            buflen,
            rxflow_on_above: on,
            rxflow_off_below: off,
        } = self.limits;
        let buflen = buflen.max(1);
        self.paused = if on == 0 {
            self.pending >= buflen
        } else if self.pending > on || self.pending >= buflen {
            true
        } else if self.pending < off || self.pending == 0 {
            false
        } else {
            self.paused
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::State;
    use crate::wire::{FrameType, HEADER_LEN, PAYLOAD_HEADER_LEN};

    fn limits(buflen: usize, on: usize, off: usize) -> OutboxLimits {
        OutboxLimits {
            buflen,
            rxflow_on_above: on,
            rxflow_off_below: off,
        }
    }

    fn drain(o: &mut Outbox) -> Vec<Frame> {
        std::iter::from_fn(|| o.poll_transmit()).collect()
    }

    fn state(s: State) -> ConnState {
        ConnState { state: s, ack: 0 }
    }

    #[test]
    fn writes_in_the_c_proxy_order() {
        let mut o = Outbox::new(OutboxLimits::default());
        o.handle_state(state(State::CONNECTED));
        o.handle_rx(Bytes::from_static(b"body"), PayloadFlags::SOM, 7);
        o.handle_credit(100);
        o.handle_rx(
            Bytes::from_static(b"{\"peer\":\"127.0.0.1\"}"),
            PayloadFlags::SOM | PayloadFlags::EOM | PayloadFlags::PERF_JSON,
            8,
        );
        o.handle_metadata(Metadata {
            name: Bytes::from_static(b"srvmd"),
            value: Bytes::from_static(b"world"),
        })
        .unwrap();
        o.handle_create_result(CreateResult {
            result: 0,
            client_buflen: 0,
            rideshares: Bytes::from_static(b",a"),
        });
        o.handle_state(state(State::DISCONNECTED));
        let types: Vec<FrameType> = drain(&mut o).iter().map(Frame::frame_type).collect();
        assert_eq!(
            types,
            [
                FrameType::CREATE_RESULT,
                FrameType::RX_METADATA,
                FrameType::PERF,
                FrameType::CONNSTATE,
                FrameType::RX_PAYLOAD,
                FrameType::RX_TXCR_UPDATE,
                FrameType::CONNSTATE,
            ]
        );
        assert!(o.is_empty());
    }

    #[test]
    fn perf_json_goes_whole_in_a_perf_frame() {
        let json = Bytes::from(format!("{{\"peer\":\"{}\"}}", "x".repeat(1000)));
        let mut o = Outbox::new(OutboxLimits::default());
        o.handle_rx(
            json.clone(),
            PayloadFlags::SOM | PayloadFlags::EOM | PayloadFlags::PERF_JSON,
            0,
        );
        o.handle_rx(Bytes::new(), PayloadFlags::PERF_JSON, 0);
        assert_eq!(
            drain(&mut o),
            [Frame::Perf(json.clone())],
            "empty JSON is dropped"
        );
        assert_eq!(o.pending_len(), HEADER_LEN + json.len());
    }

    #[test]
    fn large_rx_is_split_with_som_on_the_first_and_eom_on_the_last() {
        let mut o = Outbox::new(OutboxLimits::default());
        let data = Bytes::from(vec![1u8; 2 * MAX_RX_CHUNK + 10]);
        o.handle_rx(data, PayloadFlags::SOM | PayloadFlags::EOM, 42);
        let frames = drain(&mut o);
        let got: Vec<(PayloadFlags, usize, u64)> = frames
            .iter()
            .map(|f| match f {
                Frame::RxPayload(p) => (p.flags, p.data.len(), p.timestamp_us),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (PayloadFlags::SOM, MAX_RX_CHUNK, 42),
                (PayloadFlags::empty(), MAX_RX_CHUNK, 42),
                (PayloadFlags::EOM, 10, 42),
            ]
        );
        let mut o = Outbox::new(OutboxLimits::default());
        o.handle_rx(Bytes::new(), PayloadFlags::EOM, 0);
        assert_eq!(drain(&mut o).len(), 1, "an empty rx is one empty frame");
        let mut o = Outbox::new(OutboxLimits::default());
        o.rx_chunk(16_384);
        o.handle_rx(Bytes::from(vec![1u8; 40_000]), PayloadFlags::EOM, 0);
        let lens: Vec<usize> = drain(&mut o)
            .iter()
            .map(|f| match f {
                Frame::RxPayload(p) => p.data.len(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lens, [16_384, 16_384, 7232], "pieces of the chunk size set");
    }

    #[test]
    fn metadata_a_c_client_cannot_take_is_refused() {
        let mut o = Outbox::new(OutboxLimits::default());
        let empty = Metadata {
            name: Bytes::from_static(b"m"),
            value: Bytes::new(),
        };
        assert_eq!(
            o.handle_metadata(empty),
            Err(EncodeError::EmptyMetadataValue)
        );
        assert!(o.is_empty());
        assert_eq!(o.pending_len(), 0);
    }

    #[test]
    fn stops_at_buflen_without_rxflow_and_counts_until_written() {
        let mut o = Outbox::new(limits(100, 0, 0));
        let per_frame = HEADER_LEN + PAYLOAD_HEADER_LEN + 40;
        o.handle_rx(Bytes::from(vec![0u8; 40]), PayloadFlags::empty(), 0);
        assert!(o.wants_rx());
        o.handle_rx(Bytes::from(vec![0u8; 40]), PayloadFlags::empty(), 0);
        assert_eq!(o.pending_len(), 2 * per_frame);
        assert!(!o.wants_rx(), "{} ≥ 100", 2 * per_frame);
        let _ = drain(&mut o);
        assert!(!o.wants_rx(), "taken but not written yet");
        o.handle_written(per_frame);
        assert!(o.wants_rx());
        o.handle_written(per_frame);
        assert_eq!(o.pending_len(), 0);
    }

    #[test]
    fn rxflow_has_hysteresis() {
        let mut o = Outbox::new(limits(1000, 300, 100));
        let frame = HEADER_LEN + PAYLOAD_HEADER_LEN + 81; // 100 bytes
        for _ in 0..3 {
            o.handle_rx(Bytes::from(vec![0u8; 81]), PayloadFlags::empty(), 0);
            assert!(o.wants_rx(), "not above 300 yet");
        }
        o.handle_rx(Bytes::from(vec![0u8; 81]), PayloadFlags::empty(), 0);
        assert!(!o.wants_rx(), "400 > 300");
        o.handle_written(2 * frame);
        assert!(!o.wants_rx(), "200 is not below 100");
        o.handle_written(frame);
        assert!(!o.wants_rx(), "100 is not below 100");
        o.handle_written(1);
        assert!(o.wants_rx(), "99 < 100");
        o.handle_rx(Bytes::from(vec![0u8; 81]), PayloadFlags::empty(), 0);
        assert!(o.wants_rx(), "back under the high mark");
    }

    #[test]
    fn rxflow_still_stops_at_buflen() {
        let mut o = Outbox::new(limits(150, 300, 100));
        o.handle_rx(Bytes::from(vec![0u8; 181]), PayloadFlags::empty(), 0);
        assert!(!o.wants_rx(), "200 ≥ buflen 150");
        o.handle_written(200);
        assert!(o.wants_rx());
    }

    #[test]
    fn head_and_tail_are_the_encoded_frame() {
        let mut p = Payload::new(PayloadFlags::SOM, Bytes::from_static(b"payload"));
        p.rideshare = None;
        p.timestamp_us = 0x0102_0304_0506_0708;
        for f in [
            Frame::RxPayload(p),
            Frame::Perf(Bytes::from_static(b"{}")),
            Frame::ConnState(state(State::CONNECTED)),
        ] {
            let mut whole = bytes::BytesMut::new();
            f.encode(&mut whole).unwrap();
            let mut head = bytes::BytesMut::new();
            let tail = f.encode_head(&mut head).unwrap();
            head.extend_from_slice(&tail);
            assert_eq!(head, whole, "{f:?}");
        }
    }

    #[test]
    fn limits_come_from_the_policy() {
        let mut b = BufferSpec::default();
        assert_eq!(
            OutboxLimits::from_policy(&b),
            limits(32_768, 0, 0),
            "C's defaults"
        );
        b.proxy_buflen = 4096;
        b.proxy_buflen_rxflow_on_above = 3000;
        b.proxy_buflen_rxflow_off_below = 1000;
        assert_eq!(OutboxLimits::from_policy(&b), limits(4096, 3000, 1000));
    }
}

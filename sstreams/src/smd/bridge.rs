//! The SS side of `_lws_smd`: SMD messages as secure-stream payloads

use sstreams_core::smd::{SmdClass, SmdMessage, SsHeader};

use super::{ParticipantId, SmdBus, SmdError, Subscription};

/// Bridge between the bus and the payloads of one `_lws_smd` secure stream
///
/// This is the engine a `_lws_smd` stream wraps: it is one bus participant with the stream's
/// class filter (what C carries in the stream info's `manual_initial_tx_credit`).
///
/// * rx: every bus message matching the filter becomes one payload, 16-byte header (class,
///   timestamp, big-endian u64 each) then body, to be handed to the stream's rx with
///   SOM|EOM ([`recv_payload`](Self::recv_payload)).
/// * tx: a payload the stream's tx produced, in the same format, is posted on the bus with
///   the class from its header and stamped now; the header's timestamp is ignored, as in C.
///   The stream itself receives it back if its filter matches ([`send_payload`](Self::send_payload)).
#[derive(Debug)]
pub struct SsBridge {
    bus: SmdBus,
    sub: Subscription,
    filter: SmdClass,
}

impl SsBridge {
    /// A bridge receiving the classes in `filter`
    pub fn new(bus: &SmdBus, filter: SmdClass) -> Self {
        Self {
            bus: bus.clone(),
            sub: bus.subscribe(filter),
            filter,
        }
    }

    /// A bridge whose filter comes from a stream's initial tx credit (C
    /// `manual_initial_tx_credit`, a signed 32-bit field reused as the class mask)
    pub fn from_tx_credit(bus: &SmdBus, credit: i32) -> Self {
        // Reinterpreting the bits is the point: the field is a mask, not a count.
        Self::new(bus, SmdClass::from_bits(credit as u32))
    }

    /// The class filter
    pub fn filter(&self) -> SmdClass {
        self.filter
    }

    /// The bus participant behind this bridge
    pub fn id(&self) -> ParticipantId {
        self.sub.id()
    }

    /// Wait for the next matching message and write it to `out` (cleared first) as a stream
    /// payload; `false` once the bus is closed
    pub async fn recv_payload(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        match self.sub.recv().await {
            Some(msg) => {
                msg.write_ss_payload(out);
                true
            }
            None => false,
        }
    }

    /// Like [`recv_payload`](Self::recv_payload) without waiting: `false` if nothing is queued
    pub fn try_recv_payload(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        match self.sub.try_recv() {
            Some(msg) => {
                msg.write_ss_payload(out);
                true
            }
            None => false,
        }
    }

    /// Post a stream tx payload (16-byte header then body) on the bus
    ///
    /// Returns the number of recipients (0: nobody listens to that class, nothing queued).
    /// Fails with [`SmdError::Format`] for a payload shorter than 16 bytes or a body over
    /// 384 bytes, and with [`SmdError::QueueFull`] when the bus is full.
    pub fn send_payload(&self, payload: &[u8]) -> Result<usize, SmdError> {
        let (header, body) = SsHeader::decode(payload)?;
        self.bus.post(header.class, body)
    }

    /// Re-inject a payload received from elsewhere (e.g. a proxy) into this process's bus,
    /// keeping its class and original timestamp and not echoing it back to this bridge
    /// (C `lws_smd_ss_rx_forward`)
    pub fn forward_rx(&self, payload: &[u8]) -> Result<usize, SmdError> {
        let msg = SmdMessage::from_ss_payload(payload)?;
        self.bus.forward(
            msg.class(),
            msg.timestamp_us(),
            msg.payload(),
            Some(self.id()),
        )
    }
}

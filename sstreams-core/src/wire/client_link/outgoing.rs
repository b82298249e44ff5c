//! What a proxied client has queued for the proxy, kept across links (spec §7.1)

use std::time::Duration;

use bytes::Bytes;

use crate::wire::{EncodeError, Frame, MAX_METADATA_NAME_LEN, Metadata, Payload};

/// One METADATA or TXCR_UPDATE item, in the order the app queued them
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Metadata(Metadata),
    Credit(i32),
}

/// The client's outgoing queue
///
/// * Timeout, length hint: only the latest value is kept.
/// * Metadata and credit: one queue, sent **newest first** as C does (it takes items from the
///   tail). Setting a metadata name again replaces its queued value (and moves it to the
///   tail), so the queue never holds two values of one name and the newest-first order can
///   never make a stale value arrive last.
/// * Requests: connect, and "the app wants to send".
#[derive(Debug, Clone, Default)]
pub(super) struct Outgoing {
    pub(super) timeout: Option<u32>,
    items: Vec<Item>,
    /// The latest value of every metadata name ever set: a stream recreated on a new link
    /// gets them all again (the proxy's new onward stream starts without metadata)
    metadata: Vec<Metadata>,
    pub(super) length_hint: Option<u32>,
    /// The app asked to connect (ONWARD_CONNECT in LOCAL_CONNECTED)
    pub(super) connect: bool,
    /// The app asked to send: the first TX_PAYLOAD or PAYLOAD_LENGTH_HINT asks the proxy to
    /// send (which connects); if the app then produces nothing, ONWARD_CONNECT instead
    pub(super) tx_connect: bool,
    /// The app asked for the onward connection at some time: a stream recreated on a new
    /// link is connected again
    pub(super) onward: bool,
    /// The app wants its tx callback
    pub(super) tx_wanted: bool,
    /// Payload the app produced, to be sent next
    pub(super) tx_ready: Option<Payload>,
}

impl Outgoing {
    pub(super) fn start_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = Some(match timeout {
            // 0 = the policy's timeout_ms; u32::MAX = cancel: a real duration is neither.
            None => 0,
            Some(d) => u32::try_from(d.as_millis())
                .unwrap_or(u32::MAX - 1)
                .clamp(1, u32::MAX - 1),
        });
    }

    pub(super) fn cancel_timeout(&mut self) {
        self.timeout = Some(u32::MAX);
    }

    pub(super) fn set_metadata(&mut self, name: Bytes, value: Bytes) -> Result<(), EncodeError> {
        if !(1..=MAX_METADATA_NAME_LEN).contains(&name.len()) {
            return Err(EncodeError::MetadataName { len: name.len() });
        }
        if value.is_empty() {
            return Err(EncodeError::EmptyMetadataValue);
        }
        self.items
            .retain(|i| !matches!(i, Item::Metadata(m) if m.name == name));
        self.metadata.retain(|m| m.name != name);
        let m = Metadata { name, value };
        self.metadata.push(m.clone());
        self.items.push(Item::Metadata(m));
        Ok(())
    }

    pub(super) fn add_credit(&mut self, delta: i32) {
        self.items.push(Item::Credit(delta));
    }

    /// The newest queued METADATA or TXCR_UPDATE frame
    pub(super) fn pop_item(&mut self) -> Option<Frame> {
        self.items.pop().map(|i| match i {
            Item::Metadata(m) => Frame::TxMetadata(m),
            Item::Credit(c) => Frame::TxCreditUpdate(c),
        })
    }

    pub(super) fn request_tx(&mut self, len: Option<u32>) {
        if len.is_some() {
            self.length_hint = len;
        }
        self.tx_connect = true;
        self.onward = true;
        self.tx_wanted = true;
    }

    pub(super) fn connect(&mut self) {
        self.connect = true;
        self.onward = true;
    }

    /// A new link created the stream again at the proxy: give it every metadata value again,
    /// and connect it if it was connected before and nothing pending (tx, length hint) will
    pub(super) fn recreated(&mut self) {
        for m in &self.metadata {
            let queued = self
                .items
                .iter()
                .any(|i| matches!(i, Item::Metadata(q) if q.name == m.name));
            if !queued {
                // Under the queued items: newest first sends those last, as the latest.
                self.items.insert(0, Item::Metadata(m.clone()));
            }
        }
        if self.onward && !self.tx_connect && self.length_hint.is_none() {
            self.connect = true;
        }
    }
}

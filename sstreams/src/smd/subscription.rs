//! Async subscriptions: participants that pull their messages

use std::fmt;
use std::sync::Arc;

use sstreams_core::smd::{SmdClass, SmdMessage};
use tokio::sync::Notify;

use super::ParticipantId;
use super::bus::{PeerData, Shared};
use crate::clock::monotonic_us;

/// A participant that receives its messages with [`recv`](Self::recv)
///
/// Messages wait in the bus queue until received, so a subscription that is not read holds
/// queue space until its messages expire (TTL). Dropping it unregisters it.
pub struct Subscription {
    shared: Arc<Shared>,
    id: ParticipantId,
    notify: Arc<Notify>,
}

impl Subscription {
    pub(super) fn new(shared: Arc<Shared>, id: ParticipantId, notify: Arc<Notify>) -> Self {
        Self { shared, id, notify }
    }

    /// This participant's id
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// This participant's class filter
    pub fn filter(&self) -> SmdClass {
        let st = self.shared.lock();
        st.queue
            .index_of(self.id)
            .map_or(SmdClass::NONE, |i| st.queue.peers[i].filter)
    }

    /// The next message, waiting for one if needed; `None` once the bus is closed
    ///
    /// Cancel safety: dropping the future loses no message.
    pub async fn recv(&mut self) -> Option<SmdMessage> {
        let mut msg = SmdMessage::empty();
        loop {
            match self.poll_queue(&mut msg, true) {
                Poll::Ready => return Some(msg),
                Poll::Closed => return None,
                Poll::Empty => self.notify.notified().await,
            }
        }
    }

    /// The next message if one is queued; `None` if none is (or the bus is closed)
    pub fn try_recv(&mut self) -> Option<SmdMessage> {
        let mut msg = SmdMessage::empty();
        matches!(self.poll_queue(&mut msg, false), Poll::Ready).then_some(msg)
    }

    fn poll_queue(&self, out: &mut SmdMessage, wait: bool) -> Poll {
        let mut st = self.shared.lock();
        if st.closed {
            return Poll::Closed;
        }
        let Some(index) = st.queue.index_of(self.id) else {
            return Poll::Closed;
        };
        st.queue.expire(monotonic_us());
        if st.queue.take_one(index, out) {
            return Poll::Ready;
        }
        if wait {
            if let PeerData::Subscriber { waiting, .. } = &mut st.queue.peers[index].data {
                *waiting = true;
            }
        }
        Poll::Empty
    }
}

enum Poll {
    Ready,
    Empty,
    Closed,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.unregister(self.id);
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

//! The bus: posting, participants with handlers, and the dispatcher

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use sstreams_core::smd::{SmdClass, SmdMessage};
use tokio::sync::Notify;

use super::queue::Queue;
use super::{SmdConfig, SmdError, SmdStats, Subscription};
use crate::clock::monotonic_us;

/// Messages a handler participant is given per turn before the dispatcher moves on to the next
/// participant (C gives one; a small batch keeps the lock traffic low)
const BATCH: usize = 32;

/// Identifies one participant of one bus
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub(super) u64);

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "smd#{}", self.0)
    }
}

type Handler = Box<dyn FnMut(&SmdMessage) + Send + 'static>;

/// A handler and its delivery buffer, moved out of the bus while it runs
pub(super) struct HandlerBox {
    handler: Handler,
    batch: Vec<SmdMessage>,
    alive: Arc<AtomicBool>,
}

pub(super) enum PeerData {
    Handler {
        /// `None` while a dispatcher is running it
        slot: Option<HandlerBox>,
        alive: Arc<AtomicBool>,
    },
    Subscriber {
        notify: Arc<Notify>,
        /// The subscription found nothing and waits for a notification
        waiting: bool,
    },
}

pub(super) struct BusState {
    pub(super) queue: Queue<PeerData>,
    /// A handler participant may have been posted something since the last dispatch round
    dirty: bool,
    dispatcher_idle: bool,
    pub(super) closed: bool,
}

pub(super) struct Shared {
    state: Mutex<BusState>,
    dispatch_wake: Notify,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, BusState> {
        // No user code ever runs under this lock, so poisoning can only follow a bug in this
        // module that already panicked; the queue is still consistent at every unlock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn unregister(&self, id: ParticipantId) -> bool {
        let data = self.lock().queue.unregister(id);
        if let Some(PeerData::Handler { alive, .. }) = &data {
            alive.store(false, Ordering::Release);
        }
        // `data` (maybe a handler and whatever it captured) is dropped here, outside the lock.
        data.is_some()
    }
}

/// The SMD bus: a bounded, class-filtered, ordered publish/subscribe queue
///
/// Cloning gives another handle to the same bus. Any thread or task may post.
///
/// * [`post`](Self::post) stamps the message with the monotonic clock (microseconds) and
///   queues it for every participant whose filter intersects its class, or refuses it with
///   [`SmdError::QueueFull`] if the queue already holds `queue_depth` undelivered messages
///   (C behaviour: the new message is refused, nothing older is evicted; refusals are counted).
/// * Participants either register a handler ([`register`](Self::register)), called by the
///   dispatcher ([`run`](Self::run), [`spawn`](Self::spawn) or
///   [`dispatch_pending`](Self::dispatch_pending)), or pull messages through an async
///   [`Subscription`].
/// * Each participant sees its messages in posting order (posting order between threads is
///   the order in which they take the bus lock). Delivery is never synchronous with `post`.
/// * A participant registered after a message was posted does not receive it.
#[derive(Clone)]
pub struct SmdBus {
    pub(super) shared: Arc<Shared>,
}

impl SmdBus {
    /// A bus with these settings
    pub fn new(config: &SmdConfig) -> Self {
        let ttl_us = u64::try_from(config.ttl.as_micros()).unwrap_or(u64::MAX);
        let state = BusState {
            queue: Queue::new(config.queue_depth, ttl_us),
            dirty: false,
            dispatcher_idle: true,
            closed: false,
        };
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                dispatch_wake: Notify::new(),
            }),
        }
    }

    /// Post a message of `class` with a copy of `body` (at most 384 bytes)
    ///
    /// Returns the number of participants it will be delivered to; 0 means nobody listens to
    /// `class` and nothing was queued (counted in [`SmdStats::no_listener`]).
    pub fn post(&self, class: SmdClass, body: &[u8]) -> Result<usize, SmdError> {
        self.post_inner(class, None, body, None)
    }

    /// Post a message, keeping `timestamp_us` instead of stamping it now and skipping the
    /// participant `exclude`
    ///
    /// For re-injecting a message that arrived from elsewhere (an `_lws_smd` stream) so that
    /// its origin time is kept and it is not echoed back to where it came from. A message whose
    /// adopted timestamp is already older than the TTL is discarded at the next dispatch.
    pub fn forward(
        &self,
        class: SmdClass,
        timestamp_us: u64,
        body: &[u8],
        exclude: Option<ParticipantId>,
    ) -> Result<usize, SmdError> {
        self.post_inner(class, Some(timestamp_us), body, exclude)
    }

    fn post_inner(
        &self,
        class: SmdClass,
        timestamp_us: Option<u64>,
        body: &[u8],
        exclude: Option<ParticipantId>,
    ) -> Result<usize, SmdError> {
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        if st.closed {
            return Err(SmdError::Closed);
        }
        let ts = timestamp_us.unwrap_or_else(monotonic_us);
        let recipients = st.queue.post(class, ts, body, exclude)?;
        if recipients == 0 {
            return Ok(0);
        }
        let mut handler_hit = false;
        for peer in &mut st.queue.peers {
            if Some(peer.id) == exclude || !peer.filter.intersects(class) {
                continue;
            }
            match &mut peer.data {
                PeerData::Handler { .. } => handler_hit = true,
                PeerData::Subscriber { notify, waiting } => {
                    if *waiting {
                        *waiting = false;
                        notify.notify_one();
                    }
                }
            }
        }
        let mut wake = false;
        if handler_hit {
            st.dirty = true;
            wake = std::mem::replace(&mut st.dispatcher_idle, false);
        }
        drop(guard);
        if wake {
            self.shared.dispatch_wake.notify_one();
        }
        Ok(recipients)
    }

    /// Register a participant whose `handler` is called for every message matching `filter`
    ///
    /// The handler runs on whichever thread dispatches ([`run`](Self::run) /
    /// [`dispatch_pending`](Self::dispatch_pending)), never under a bus lock: it may post,
    /// register, or unregister any participant including itself (drop its [`Participant`]).
    /// It should not block. The message reference is only valid during the call. A handler
    /// that panics is dropped and receives nothing further.
    pub fn register<F>(&self, filter: SmdClass, handler: F) -> Participant
    where
        F: FnMut(&SmdMessage) + Send + 'static,
    {
        let alive = Arc::new(AtomicBool::new(true));
        let slot = HandlerBox {
            handler: Box::new(handler),
            batch: Vec::with_capacity(BATCH),
            alive: alive.clone(),
        };
        let data = PeerData::Handler {
            slot: Some(slot),
            alive,
        };
        let id = self.shared.lock().queue.register(filter, data);
        Participant {
            bus: Arc::downgrade(&self.shared),
            id,
        }
    }

    /// Register a participant that pulls messages matching `filter` asynchronously
    pub fn subscribe(&self, filter: SmdClass) -> Subscription {
        let notify = Arc::new(Notify::new());
        let data = PeerData::Subscriber {
            notify: notify.clone(),
            waiting: false,
        };
        let id = self.shared.lock().queue.register(filter, data);
        Subscription::new(self.shared.clone(), id, notify)
    }

    /// Remove a participant; `false` if it was not registered
    ///
    /// Messages still owed to it are released. Safe to call from inside any handler,
    /// including the participant's own: called from the participant's own handler, no further
    /// call follows; called from another thread, a call the dispatcher is already making may
    /// still be under way when this returns.
    pub fn unregister(&self, id: ParticipantId) -> bool {
        self.shared.unregister(id)
    }

    /// Deliver everything pending to handler participants, on the calling thread
    ///
    /// Discards expired messages first, then runs rounds: in each round every handler
    /// participant with pending messages gets up to 32 of them, in order; rounds repeat until
    /// nothing is pending. Returns the number of handler calls made.
    pub fn dispatch_pending(&self) -> usize {
        let mut total = 0;
        loop {
            {
                let mut st = self.shared.lock();
                if st.closed {
                    return total;
                }
                st.dirty = false;
                st.queue.expire(monotonic_us());
            }
            let round = self.dispatch_round();
            total += round;
            if round == 0 {
                return total;
            }
        }
    }

    fn dispatch_round(&self) -> usize {
        let mut delivered = 0;
        let mut index = 0;
        loop {
            let mut guard = self.shared.lock();
            let st = &mut *guard;
            let Some(peer) = st.queue.peers.get_mut(index) else {
                return delivered;
            };
            index += 1;
            let id = peer.id;
            let PeerData::Handler { slot, .. } = &mut peer.data else {
                continue;
            };
            // None: another thread is running this handler and will deliver its messages.
            let Some(mut hb) = slot.take() else {
                continue;
            };
            hb.batch.clear();
            let n = st.queue.take(index - 1, &mut hb.batch, BATCH);
            if n == 0 {
                put_back(st, index - 1, hb);
                continue;
            }
            drop(guard);
            for msg in &hb.batch {
                if !hb.alive.load(Ordering::Acquire) {
                    break;
                }
                (hb.handler)(msg);
            }
            delivered += n;
            let mut guard = self.shared.lock();
            match guard.queue.index_of(id) {
                Some(i) => put_back(&mut guard, i, hb),
                None => {
                    // Unregistered while running: drop the handler outside the lock.
                    drop(guard);
                    drop(hb);
                }
            }
        }
    }

    /// Dispatch until the bus is closed, waiting for posts in between
    ///
    /// This is the bus's event loop: spawn it once per bus (or use [`spawn`](Self::spawn)).
    /// Handler participants receive nothing unless something dispatches.
    pub async fn run(self) {
        loop {
            self.dispatch_pending();
            {
                let mut st = self.shared.lock();
                if st.closed {
                    return;
                }
                if st.dirty {
                    continue;
                }
                st.dispatcher_idle = true;
            }
            self.shared.dispatch_wake.notified().await;
        }
    }

    /// Spawn [`run`](Self::run) on the current tokio runtime
    ///
    /// Panics if called outside a tokio runtime.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().run())
    }

    /// Close the bus: queued messages are discarded (counted), participants dropped,
    /// subscriptions end and the dispatcher returns; later posts fail with
    /// [`SmdError::Closed`]
    pub fn close(&self) {
        let peers = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.queue.clear()
        };
        for peer in &peers {
            match &peer.data {
                PeerData::Handler { alive, .. } => alive.store(false, Ordering::Release),
                PeerData::Subscriber { notify, .. } => notify.notify_one(),
            }
        }
        self.shared.dispatch_wake.notify_one();
        drop(peers);
    }

    /// Whether [`close`](Self::close) was called
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// A snapshot of the counters
    pub fn stats(&self) -> SmdStats {
        self.shared.lock().queue.stats()
    }
}

fn put_back(st: &mut BusState, index: usize, hb: HandlerBox) {
    if let PeerData::Handler { slot, .. } = &mut st.queue.peers[index].data {
        *slot = Some(hb);
    }
}

impl Default for SmdBus {
    fn default() -> Self {
        Self::new(&SmdConfig::default())
    }
}

impl fmt::Debug for SmdBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmdBus")
            .field("stats", &self.stats())
            .finish()
    }
}

/// A registered handler participant; dropping it unregisters it
///
/// Dropping (or [`unregister`](Self::unregister)ing) from inside the participant's own handler
/// is allowed: the handler is not called again afterwards.
#[derive(Debug)]
pub struct Participant {
    bus: Weak<Shared>,
    id: ParticipantId,
}

impl Participant {
    /// This participant's id
    pub fn id(&self) -> ParticipantId {
        self.id
    }

    /// Unregister now (same as dropping)
    pub fn unregister(self) {}
}

impl Drop for Participant {
    fn drop(&mut self) {
        if let Some(shared) = self.bus.upgrade() {
            shared.unregister(self.id);
        }
    }
}

//! The bus's message queue and participant cursors, without locks or wakeups
//!
//! One FIFO of messages in posting order. Each message counts the deliveries still owed to it
//! (`remaining`); each participant ("peer") has a cursor: the sequence number of the next
//! message it may be owed. A message stops counting towards the queue depth once every
//! interested peer has taken it, or it expires. Delivered slots are dropped from the front;
//! holes left behind a slow peer are compacted away so the ring stays bounded.

use std::collections::VecDeque;

use sstreams_core::smd::{SmdClass, SmdMessage};

use super::{ParticipantId, SmdError, SmdStats};

/// A queued message
struct Slot {
    seq: u64,
    /// Deliveries still owed; 0 = dead (delivered or expired)
    remaining: u32,
    exclude: Option<ParticipantId>,
    msg: SmdMessage,
}

/// A participant as the queue sees it; `data` is the bus's per-participant state
pub(super) struct Peer<T> {
    pub(super) id: ParticipantId,
    pub(super) filter: SmdClass,
    /// Sequence number of the next message this peer may be owed
    cursor: u64,
    pub(super) data: T,
}

pub(super) struct Queue<T> {
    ring: VecDeque<Slot>,
    next_seq: u64,
    /// Messages still owed to someone (what the depth limit counts)
    live: usize,
    depth: usize,
    ttl_us: u64,
    pub(super) peers: Vec<Peer<T>>,
    next_id: u64,
    stats: SmdStats,
    /// Newest timestamp queued so far
    newest_ts: u64,
    /// Some queued message is older than one queued before it (an adopted timestamp), so
    /// expiry must look at the whole ring, not stop at the first young message
    unordered: bool,
}

impl<T> Queue<T> {
    pub(super) fn new(depth: usize, ttl_us: u64) -> Self {
        Self {
            // Grows on demand up to about twice the depth; start small for huge depths.
            ring: VecDeque::with_capacity(depth.min(1024)),
            next_seq: 0,
            live: 0,
            depth,
            ttl_us,
            peers: Vec::new(),
            next_id: 1,
            stats: SmdStats::default(),
            newest_ts: 0,
            unordered: false,
        }
    }

    pub(super) fn stats(&self) -> SmdStats {
        SmdStats {
            queued: self.live,
            participants: self.peers.len(),
            ..self.stats
        }
    }

    /// Add a peer; it is owed only messages posted from now on
    pub(super) fn register(&mut self, filter: SmdClass, data: T) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        self.peers.push(Peer {
            id,
            filter,
            cursor: self.next_seq,
            data,
        });
        id
    }

    /// Remove a peer, releasing every message still owed to it
    pub(super) fn unregister(&mut self, id: ParticipantId) -> Option<T> {
        let index = self.peers.iter().position(|p| p.id == id)?;
        let peer = self.peers.remove(index);
        let start = self.position(peer.cursor);
        for slot in self.ring.range_mut(start..) {
            if slot.remaining > 0 && owed(slot, peer.id, peer.filter) {
                slot.remaining -= 1;
                if slot.remaining == 0 {
                    self.live -= 1;
                }
            }
        }
        self.pop_dead();
        Some(peer.data)
    }

    /// Queue a message for every interested peer except `exclude`
    ///
    /// Returns the number of peers it is owed to; 0 means nobody listens and nothing was
    /// queued. When `depth` messages are already owed the message is refused (C behaviour:
    /// nothing older is evicted).
    pub(super) fn post(
        &mut self,
        class: SmdClass,
        timestamp_us: u64,
        body: &[u8],
        exclude: Option<ParticipantId>,
    ) -> Result<usize, SmdError> {
        let mut msg = SmdMessage::empty();
        msg.set(class, timestamp_us, body)?;
        let recipients = self
            .peers
            .iter()
            .filter(|p| Some(p.id) != exclude && p.filter.intersects(class))
            .count();
        if recipients == 0 {
            self.stats.no_listener += 1;
            return Ok(0);
        }
        if self.live >= self.depth {
            self.stats.refused += 1;
            return Err(SmdError::QueueFull { depth: self.depth });
        }
        // At most peers.len() recipients, far below u32::MAX.
        let remaining = recipients as u32;
        if timestamp_us < self.newest_ts {
            self.unordered = true;
        }
        self.newest_ts = self.newest_ts.max(timestamp_us);
        self.ring.push_back(Slot {
            seq: self.next_seq,
            remaining,
            exclude,
            msg,
        });
        self.next_seq += 1;
        self.live += 1;
        self.stats.posted += 1;
        if self.ring.len() > self.depth.saturating_mul(2).saturating_add(64) {
            self.ring.retain(|s| s.remaining > 0);
        }
        Ok(recipients)
    }

    /// Copy up to `max` messages owed to peer `index` into `out` (appended), in order
    ///
    /// Returns how many were taken; each counts as delivered.
    pub(super) fn take(&mut self, index: usize, out: &mut Vec<SmdMessage>, max: usize) -> usize {
        let Some(peer) = self.peers.get_mut(index) else {
            return 0;
        };
        let (id, filter) = (peer.id, peer.filter);
        let start = self.ring.partition_point(|s| s.seq < peer.cursor);
        let mut taken = 0;
        let mut cursor = self.next_seq;
        for slot in self.ring.range_mut(start..) {
            if slot.remaining == 0 || !owed(slot, id, filter) {
                continue;
            }
            if taken == max {
                cursor = slot.seq;
                break;
            }
            out.push(slot.msg.clone());
            slot.remaining -= 1;
            if slot.remaining == 0 {
                self.live -= 1;
            }
            taken += 1;
        }
        peer.cursor = cursor;
        self.stats.delivered += taken as u64;
        if taken > 0 {
            self.pop_dead();
        }
        taken
    }

    /// Like [`Self::take`] for one message, copied into `out`
    pub(super) fn take_one(&mut self, index: usize, out: &mut SmdMessage) -> bool {
        let Some(peer) = self.peers.get_mut(index) else {
            return false;
        };
        let (id, filter) = (peer.id, peer.filter);
        let start = self.ring.partition_point(|s| s.seq < peer.cursor);
        let found = self
            .ring
            .range_mut(start..)
            .find(|s| s.remaining > 0 && owed(s, id, filter));
        let Some(slot) = found else {
            peer.cursor = self.next_seq;
            return false;
        };
        out.clone_from(&slot.msg);
        slot.remaining -= 1;
        peer.cursor = slot.seq + 1;
        if slot.remaining == 0 {
            self.live -= 1;
            self.pop_dead();
        }
        self.stats.delivered += 1;
        true
    }

    /// Drop messages older than the TTL at `now_us`, even if undelivered
    pub(super) fn expire(&mut self, now_us: u64) {
        let mut any = false;
        for slot in self.ring.iter_mut() {
            if now_us.saturating_sub(slot.msg.timestamp_us()) <= self.ttl_us {
                if self.unordered {
                    continue;
                }
                break;
            }
            if slot.remaining > 0 {
                slot.remaining = 0;
                self.live -= 1;
                self.stats.expired += 1;
                any = true;
            }
        }
        if any {
            self.pop_dead();
        }
        if self.ring.is_empty() {
            self.unordered = false;
        }
    }

    /// Forget every message and participant (bus closed)
    pub(super) fn clear(&mut self) -> Vec<Peer<T>> {
        self.stats.discarded += self.live as u64;
        self.ring.clear();
        self.live = 0;
        std::mem::take(&mut self.peers)
    }

    pub(super) fn index_of(&self, id: ParticipantId) -> Option<usize> {
        self.peers.iter().position(|p| p.id == id)
    }

    fn position(&self, seq: u64) -> usize {
        self.ring.partition_point(|s| s.seq < seq)
    }

    fn pop_dead(&mut self) {
        while self.ring.front().is_some_and(|s| s.remaining == 0) {
            self.ring.pop_front();
        }
    }
}

fn owed(slot: &Slot, id: ParticipantId, filter: SmdClass) -> bool {
    slot.exclude != Some(id) && slot.msg.class().intersects(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: SmdClass = SmdClass::NETWORK;
    const UI: SmdClass = SmdClass::INTERACTION;

    fn bodies(q: &mut Queue<()>, index: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        q.take(index, &mut out, usize::MAX);
        out.iter().map(|m| m.payload().to_vec()).collect()
    }

    #[test]
    fn delivers_matching_in_order() {
        let mut q = Queue::new(40, 2_000_000);
        q.register(NET, ());
        q.register(NET | UI, ());
        assert_eq!(q.post(NET, 1, b"a", None).unwrap(), 2);
        assert_eq!(q.post(UI, 2, b"b", None).unwrap(), 1);
        assert_eq!(q.post(NET, 3, b"c", None).unwrap(), 2);
        assert_eq!(bodies(&mut q, 0), [b"a", b"c"]);
        assert_eq!(q.stats().queued, 3);
        assert_eq!(bodies(&mut q, 1), [b"a", b"b", b"c"]);
        assert_eq!(q.stats().queued, 0);
        assert_eq!(q.ring.len(), 0);
    }

    #[test]
    fn nobody_listening_queues_nothing() {
        let mut q = Queue::new(1, 2_000_000);
        q.register(NET, ());
        assert_eq!(q.post(UI, 1, b"x", None).unwrap(), 0);
        assert_eq!(q.stats().no_listener, 1);
        assert_eq!(q.stats().queued, 0);
    }

    #[test]
    fn full_queue_refuses_and_counts() {
        let mut q = Queue::new(2, 2_000_000);
        q.register(NET, ());
        q.post(NET, 1, b"1", None).unwrap();
        q.post(NET, 2, b"2", None).unwrap();
        assert!(matches!(
            q.post(NET, 3, b"3", None),
            Err(SmdError::QueueFull { depth: 2 })
        ));
        assert_eq!(q.stats().refused, 1);
        assert_eq!(bodies(&mut q, 0), [b"1", b"2"]); // nothing older was evicted
        q.post(NET, 4, b"4", None).unwrap();
        assert_eq!(bodies(&mut q, 0), [b"4"]);
    }

    #[test]
    fn late_peer_sees_only_new_messages() {
        let mut q = Queue::new(40, 2_000_000);
        q.register(NET, ());
        q.post(NET, 1, b"old", None).unwrap();
        q.register(NET, ());
        q.post(NET, 2, b"new", None).unwrap();
        assert_eq!(bodies(&mut q, 1), [b"new"]);
        assert_eq!(bodies(&mut q, 0), [b"old", b"new"]);
        assert_eq!(q.stats().queued, 0);
    }

    #[test]
    fn unregister_releases_owed_messages() {
        let mut q = Queue::new(40, 2_000_000);
        q.register(NET, ());
        let b = q.register(NET, ());
        q.post(NET, 1, b"x", None).unwrap();
        bodies(&mut q, 0);
        assert_eq!(q.stats().queued, 1);
        q.unregister(b).unwrap();
        assert_eq!(q.stats().queued, 0);
        assert!(q.ring.is_empty());
    }

    #[test]
    fn exclusion_skips_one_peer() {
        let mut q = Queue::new(40, 2_000_000);
        let a = q.register(NET, ());
        q.register(NET, ());
        assert_eq!(q.post(NET, 1, b"x", Some(a)).unwrap(), 1);
        assert!(bodies(&mut q, 0).is_empty());
        assert_eq!(bodies(&mut q, 1), [b"x"]);
    }

    #[test]
    fn ttl_expiry_counts_and_frees() {
        let mut q = Queue::new(40, 100);
        q.register(NET, ());
        q.post(NET, 1_000, b"a", None).unwrap();
        q.post(NET, 1_050, b"b", None).unwrap();
        q.expire(1_120);
        assert_eq!(q.stats().expired, 1);
        assert_eq!(bodies(&mut q, 0), [b"b"]);
    }

    #[test]
    fn ttl_expiry_finds_adopted_old_timestamps_behind_young_ones() {
        let mut q = Queue::new(40, 100);
        q.register(NET, ());
        q.post(NET, 1_000, b"young", None).unwrap();
        q.post(NET, 10, b"forwarded, already old", None).unwrap();
        q.expire(1_050);
        assert_eq!(q.stats().expired, 1);
        assert_eq!(bodies(&mut q, 0), [b"young"]);
    }

    #[test]
    fn huge_depth_is_usable() {
        let mut q = Queue::new(usize::MAX, 2_000_000);
        q.register(NET, ());
        q.post(NET, 1, b"x", None).unwrap();
        assert_eq!(bodies(&mut q, 0), [b"x"]);
    }

    #[test]
    fn batch_limit_resumes_where_it_stopped() {
        let mut q = Queue::new(40, 2_000_000);
        q.register(NET, ());
        for i in 0..5u8 {
            q.post(NET, 1, &[i], None).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(q.take(0, &mut out, 2), 2);
        assert_eq!(q.take(0, &mut out, 2), 2);
        assert_eq!(q.take(0, &mut out, 2), 1);
        let got: Vec<u8> = out.iter().map(|m| m.payload()[0]).collect();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn slow_peer_does_not_grow_ring_without_bound() {
        let mut q = Queue::new(4, u64::MAX);
        q.register(NET, ()); // never reads
        q.register(UI, ());
        q.post(NET, 0, b"stuck", None).unwrap();
        for _ in 0..10_000 {
            q.post(UI, 0, b"flow", None).unwrap();
            bodies(&mut q, 1);
        }
        assert!(q.ring.len() <= 2 * 4 + 65, "ring grew to {}", q.ring.len());
        assert_eq!(bodies(&mut q, 0), [b"stuck"]);
    }
}

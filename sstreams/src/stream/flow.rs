//! Flow state a stream's handle shares with its task: queued tx bytes and credit
//!
//! * **Tx queue**: payload given to [`Stream::send`](super::Stream::send) waits in the task
//!   until the connection takes it. [`Stream::write`](super::Stream::write) waits while the
//!   queue holds `tx_queue_limit` bytes or more, which is how a fast producer is slowed to the
//!   connection's pace (the SS proxy relays client payload this way).
//! * **Credit** (C `lws_ss_get_est_peer_tx_credit` / `lws_ss_add_peer_tx_credit`): bytes the
//!   remote peer lets this stream send (reported by the protocol, e.g. h2 window updates, or
//!   by the SS proxy), and bytes this stream has let the peer send. Advisory, as in C: nothing
//!   blocks on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Default most payload bytes queued before [`Stream::write`](super::Stream::write) waits
pub const DEFAULT_TX_QUEUE_LIMIT: usize = 64 * 1024;

/// Shared between a stream's handle and its task
#[derive(Debug)]
pub(crate) struct Flow {
    queued: AtomicUsize,
    limit: usize,
    room: Notify,
    ended: AtomicBool,
    tx_credit: AtomicI32,
    peer_credit: AtomicI32,
}

impl Flow {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            queued: AtomicUsize::new(0),
            limit: limit.max(1),
            room: Notify::new(),
            ended: AtomicBool::new(false),
            tx_credit: AtomicI32::new(0),
            peer_credit: AtomicI32::new(0),
        })
    }

    /// `n` more payload bytes were queued by the handle
    pub(crate) fn queued(&self, n: usize) {
        self.queued.fetch_add(n, Ordering::AcqRel);
    }

    /// The task handed `n` queued bytes to the connection (or dropped them)
    pub(crate) fn taken(&self, n: usize) {
        let before = self.queued.fetch_sub(n, Ordering::AcqRel);
        debug_assert!(before >= n, "more taken than queued");
        if before >= self.limit && before - n < self.limit {
            self.room.notify_waiters();
        }
    }

    /// Payload bytes queued and not yet taken
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits until fewer than the limit are queued, or the task has ended
    pub(crate) async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.queued_bytes() < self.limit || self.ended.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// The remote peer lets the stream send `delta` more bytes
    pub(crate) fn add_tx_credit(&self, delta: i32) {
        add_saturating(&self.tx_credit, delta);
    }

    pub(crate) fn tx_credit(&self) -> i32 {
        self.tx_credit.load(Ordering::Acquire)
    }

    /// The stream lets the remote peer send `delta` more bytes
    pub(crate) fn add_peer_credit(&self, delta: i32) {
        add_saturating(&self.peer_credit, delta);
    }

    pub(crate) fn peer_credit(&self) -> i32 {
        self.peer_credit.load(Ordering::Acquire)
    }
}

fn add_saturating(credit: &AtomicI32, delta: i32) {
    let _ = credit.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
        Some(c.saturating_add(delta))
    });
}

/// The task's hold on the flow state: when the task ends, writers stop waiting
#[derive(Debug)]
pub(crate) struct FlowTask(pub(crate) Arc<Flow>);

impl std::ops::Deref for FlowTask {
    type Target = Flow;
    fn deref(&self) -> &Flow {
        &self.0
    }
}

impl Drop for FlowTask {
    fn drop(&mut self) {
        self.0.ended.store(true, Ordering::Release);
        self.0.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_wait_for_room_and_wake_on_take() {
        let flow = Flow::new(10);
        flow.queued(10);
        let waiter = tokio::spawn({
            let flow = Arc::clone(&flow);
            async move { flow.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the queue is full");
        flow.taken(1);
        waiter.await.unwrap();
        assert_eq!(flow.queued_bytes(), 9);
    }

    #[tokio::test]
    async fn writers_stop_waiting_when_the_task_ends() {
        let flow = Flow::new(1);
        flow.queued(5);
        let task = FlowTask(Arc::clone(&flow));
        let waiter = tokio::spawn({
            let flow = Arc::clone(&flow);
            async move { flow.room().await }
        });
        drop(task);
        waiter.await.unwrap();
    }

    #[test]
    fn credit_saturates() {
        let flow = Flow::new(1);
        flow.add_tx_credit(i32::MAX);
        flow.add_tx_credit(5);
        assert_eq!(flow.tx_credit(), i32::MAX);
        flow.add_peer_credit(-3);
        assert_eq!(flow.peer_credit(), -3);
    }
}

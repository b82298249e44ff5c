//! SMD bus behaviour through the public API

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sstreams::smd::{SmdBus, SmdClass, SmdConfig, SmdError, SmdMessage};
use tokio::sync::mpsc;

const NET: SmdClass = SmdClass::NETWORK;
const UI: SmdClass = SmdClass::INTERACTION;
const WAIT: Duration = Duration::from_secs(20);

/// Bodies a recording handler has seen
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

fn recorder() -> (Seen, impl FnMut(&SmdMessage) + Send + 'static) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (seen, move |m: &SmdMessage| {
        s.lock().unwrap().push(m.payload().to_vec())
    })
}

fn bus_with_depth(depth: usize) -> SmdBus {
    SmdBus::new(SmdConfig::default().queue_depth(depth))
}

#[test]
fn handler_gets_matching_messages_in_order() {
    let bus = SmdBus::default();
    let (seen, h) = recorder();
    let _p = bus.register(NET | SmdClass::SYSTEM_STATE, h);
    assert_eq!(bus.post(NET, b"1").unwrap(), 1);
    assert_eq!(bus.post(UI, b"x").unwrap(), 0);
    assert_eq!(bus.post(SmdClass::SYSTEM_STATE, b"2").unwrap(), 1);
    assert_eq!(bus.post(NET | UI, b"3").unwrap(), 1);
    assert_eq!(bus.dispatch_pending(), 3);
    assert_eq!(*seen.lock().unwrap(), [b"1", b"2", b"3"]);
    let stats = bus.stats();
    assert_eq!(
        (stats.posted, stats.delivered, stats.no_listener),
        (3, 3, 1)
    );
    assert_eq!(stats.queued, 0);
}

#[test]
fn timestamps_are_monotonic_microseconds() {
    let bus = SmdBus::default();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let s = stamps.clone();
    let _p = bus.register(NET, move |m| s.lock().unwrap().push(m.timestamp_us()));
    let before = Instant::now();
    for _ in 0..10 {
        bus.post(NET, b"t").unwrap();
    }
    let elapsed_us = before.elapsed().as_micros() as u64;
    bus.dispatch_pending();
    let stamps = stamps.lock().unwrap();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]));
    assert!(stamps[9] - stamps[0] <= elapsed_us + 1);
}

#[test]
fn full_queue_refuses_newest_with_error_and_count() {
    let bus = bus_with_depth(3);
    let (seen, h) = recorder();
    let _p = bus.register(NET, h);
    for b in [b"a", b"b", b"c"] {
        bus.post(NET, b).unwrap();
    }
    assert_eq!(bus.post(NET, b"d"), Err(SmdError::QueueFull { depth: 3 }));
    assert_eq!(bus.post(NET, b"e"), Err(SmdError::QueueFull { depth: 3 }));
    assert_eq!(bus.stats().refused, 2);
    bus.dispatch_pending();
    assert_eq!(*seen.lock().unwrap(), [b"a", b"b", b"c"]);
    bus.post(NET, b"f").unwrap();
    bus.dispatch_pending();
    assert_eq!(seen.lock().unwrap().last().unwrap(), b"f");
    let stats = bus.stats();
    assert_eq!((stats.posted, stats.refused, stats.delivered), (4, 2, 4));
}

#[test]
fn oversized_body_is_an_error() {
    let bus = SmdBus::default();
    let _p = bus.register(NET, |_| {});
    assert!(matches!(bus.post(NET, &[0; 385]), Err(SmdError::Format(_))));
    assert_eq!(bus.post(NET, &[0; 384]).unwrap(), 1);
}

#[test]
fn participant_can_unregister_itself_from_its_handler() {
    let bus = SmdBus::default();
    let me = Arc::new(Mutex::new(None));
    let calls = Arc::new(AtomicUsize::new(0));
    let (m, c) = (me.clone(), calls.clone());
    let p = bus.register(NET, move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 1 {
            // Second message: drop our own registration from inside the handler.
            drop(m.lock().unwrap().take());
        }
    });
    *me.lock().unwrap() = Some(p);
    let (seen, h) = recorder();
    let _other = bus.register(NET, h);
    for _ in 0..5 {
        bus.post(NET, b"m").unwrap();
    }
    bus.dispatch_pending();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(seen.lock().unwrap().len(), 5);
    assert_eq!(bus.stats().participants, 1);
    assert_eq!(bus.stats().queued, 0);
}

#[test]
fn unregister_by_id_from_inside_handler() {
    let bus = SmdBus::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (b, c) = (bus.clone(), calls.clone());
    let id = Arc::new(Mutex::new(None));
    let i = id.clone();
    let p = bus.register(NET, move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        assert!(b.unregister(i.lock().unwrap().unwrap()));
    });
    *id.lock().unwrap() = Some(p.id());
    bus.post(NET, b"1").unwrap();
    bus.post(NET, b"2").unwrap();
    bus.dispatch_pending();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(bus.post(NET, b"3").unwrap(), 0);
    drop(p); // already gone: no effect
}

#[test]
fn handler_may_post_without_deadlock() {
    let bus = SmdBus::default();
    let b = bus.clone();
    let _relay = bus.register(NET, move |m| {
        b.post(UI, m.payload()).unwrap();
    });
    let (seen, h) = recorder();
    let _ui = bus.register(UI, h);
    bus.post(NET, b"ping").unwrap();
    bus.dispatch_pending();
    assert_eq!(*seen.lock().unwrap(), [b"ping"]);
}

#[test]
fn late_registration_does_not_see_older_messages() {
    let bus = SmdBus::default();
    let (_first_seen, h1) = recorder();
    let _a = bus.register(NET, h1);
    bus.post(NET, b"old").unwrap();
    let (seen, h2) = recorder();
    let _b = bus.register(NET, h2);
    bus.post(NET, b"new").unwrap();
    bus.dispatch_pending();
    assert_eq!(*seen.lock().unwrap(), [b"new"]);
}

#[test]
fn messages_older_than_ttl_expire_and_are_counted() {
    let bus = SmdBus::new(SmdConfig::default().ttl(Duration::from_millis(1)));
    let mut sub = bus.subscribe(NET);
    bus.post(NET, b"stale").unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3) {
        std::hint::spin_loop();
    }
    assert!(sub.try_recv().is_none());
    assert_eq!(bus.stats().expired, 1);
    assert_eq!(bus.stats().queued, 0);
}

#[tokio::test]
async fn subscription_receives_and_ends_on_close() {
    let bus = SmdBus::default();
    let mut sub = bus.subscribe(NET);
    assert_eq!(sub.filter(), NET);
    let poster = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            for i in 0..100u8 {
                while let Err(SmdError::QueueFull { .. }) = bus.post(NET, &[i]) {
                    std::thread::yield_now();
                }
            }
        })
    };
    for i in 0..100u8 {
        let msg = tokio::time::timeout(WAIT, sub.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.payload(), [i]);
    }
    poster.join().unwrap();
    bus.post(NET, b"left over").unwrap();
    bus.close();
    assert!(
        tokio::time::timeout(WAIT, sub.recv())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(bus.post(NET, b"late"), Err(SmdError::Closed));
    assert_eq!(bus.stats().discarded, 1);
}

#[tokio::test]
async fn spawned_dispatcher_delivers_and_stops_on_close() {
    let bus = SmdBus::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _p = bus.register(NET, move |m| tx.send(m.payload().to_vec()).unwrap());
    let task = bus.spawn();
    let poster = {
        let bus = bus.clone();
        std::thread::spawn(move || bus.post(NET, b"from a thread").unwrap())
    };
    let got = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"from a thread");
    poster.join().unwrap();
    bus.close();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// Several threads post concurrently; every participant sees each poster's messages in that
/// poster's order, and all counts match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_under_concurrent_posters() {
    const POSTERS: u8 = 4;
    const EACH: u32 = 5_000;
    const TOTAL: usize = POSTERS as usize * EACH as usize;
    let bus = bus_with_depth(64);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<usize, String>>();

    let check = |done: mpsc::UnboundedSender<Result<usize, String>>| {
        let mut next = [0u32; POSTERS as usize];
        let mut count = 0;
        move |m: &SmdMessage| {
            let p = usize::from(m.payload()[0]);
            let seq = u32::from_be_bytes(m.payload()[1..5].try_into().unwrap());
            if seq != next[p] {
                let _ = done.send(Err(format!("poster {p}: got {seq}, want {}", next[p])));
            }
            next[p] = seq + 1;
            count += 1;
            if count == TOTAL {
                let _ = done.send(Ok(count));
            }
        }
    };
    let _h1 = bus.register(NET, check(done_tx.clone()));
    let _h2 = bus.register(NET | UI, check(done_tx.clone()));
    let mut sub = bus.subscribe(SmdClass::ALL);
    let dispatcher = bus.spawn();

    let posters: Vec<_> = (0..POSTERS)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                let mut refused = 0u64;
                for seq in 0..EACH {
                    let mut body = [p, 0, 0, 0, 0];
                    body[1..].copy_from_slice(&seq.to_be_bytes());
                    loop {
                        match bus.post(NET, &body) {
                            Ok(n) => {
                                assert_eq!(n, 3);
                                break;
                            }
                            Err(SmdError::QueueFull { .. }) => {
                                refused += 1;
                                std::thread::yield_now();
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                refused
            })
        })
        .collect();

    let sub_task = tokio::spawn(async move {
        let mut check = check(done_tx);
        for _ in 0..TOTAL {
            let m = sub.recv().await.expect("bus open");
            check(&m);
        }
    });
    for _ in 0..3 {
        let r = tokio::time::timeout(WAIT, done_rx.recv())
            .await
            .expect("timed out")
            .unwrap();
        assert_eq!(r, Ok(TOTAL));
    }
    tokio::time::timeout(WAIT, sub_task).await.unwrap().unwrap();
    let refused: u64 = posters.into_iter().map(|t| t.join().unwrap()).sum();
    let stats = bus.stats();
    assert_eq!(stats.posted, TOTAL as u64);
    assert_eq!(stats.delivered, 3 * TOTAL as u64);
    assert_eq!(stats.refused, refused);
    assert_eq!(stats.queued, 0);
    bus.close();
    tokio::time::timeout(WAIT, dispatcher)
        .await
        .unwrap()
        .unwrap();
}

/// A participant dropped from another thread while the dispatcher is busy leaves nothing
/// pinned in the queue, and the others still get everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_from_another_thread_during_dispatch() {
    const N: u32 = 20_000;
    let bus = bus_with_depth(64);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (half_tx, half_rx) = std::sync::mpsc::channel();
    let mut seen = 0u32;
    let _stays = bus.register(NET, move |_| {
        seen += 1;
        if seen == N / 2 {
            let _ = half_tx.send(());
        }
        if seen == N {
            let _ = done_tx.send(());
        }
    });
    let leaves = bus.register(NET, |_| {});
    let dispatcher = bus.spawn();
    let poster = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                while let Err(SmdError::QueueFull { .. }) = bus.post(NET, &i.to_be_bytes()) {
                    std::thread::yield_now();
                }
            }
        })
    };
    let remover = std::thread::spawn(move || {
        half_rx.recv_timeout(WAIT).unwrap();
        drop(leaves);
    });
    tokio::time::timeout(WAIT, done_rx.recv())
        .await
        .unwrap()
        .unwrap();
    poster.join().unwrap();
    remover.join().unwrap();
    let stats = bus.stats();
    assert_eq!(stats.participants, 1);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.posted, u64::from(N));
    bus.close();
    tokio::time::timeout(WAIT, dispatcher)
        .await
        .unwrap()
        .unwrap();
}

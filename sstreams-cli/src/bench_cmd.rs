//! `sstreams bench …`: whole-system throughput figures
//!
//! `bench smd` pushes messages through the SMD bus from one posting thread to 1, 4 and 16
//! handler participants run by a dispatcher on a second thread, and reports messages per
//! second and heap allocations per message (counted by this binary's global allocator).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use sstreams::smd::{SmdBus, SmdClass, SmdConfig, SmdError};

/// Benchmarks
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// SMD bus throughput and allocations per message
    Smd(SmdBenchArgs),
    /// h1 streams against plain hyper: sequential GETs/s and bulk MB/s
    H1(crate::bench_h1::H1BenchArgs),
    /// The SS proxy: bulk MB/s against a bare Unix-socket copy, round-trip latency, SMD rate
    Proxy(crate::bench_proxy::ProxyBenchArgs),
}

/// Options of `bench smd`
#[derive(Debug, Args)]
pub(crate) struct SmdBenchArgs {
    /// Messages posted per run
    #[arg(long, default_value_t = 2_000_000)]
    messages: u64,
    /// Bus queue depth used for the runs (the C default is 40, which is also measured)
    #[arg(long, default_value_t = 1024)]
    queue_depth: usize,
}

pub(crate) fn run(cmd: BenchCommand) -> ExitCode {
    match cmd {
        BenchCommand::Smd(args) => bench_smd(&args),
        BenchCommand::H1(args) => crate::bench_h1::run(&args),
        BenchCommand::Proxy(args) => crate::bench_proxy::run(&args),
    }
}

/// Counts every heap allocation of the process
struct CountingAlloc;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// One measured run
struct Outcome {
    msgs_per_s: f64,
    allocs_per_msg: f64,
    refused: u64,
}

fn bench_smd(args: &SmdBenchArgs) -> ExitCode {
    if cfg!(debug_assertions) {
        println!("note: debug build; build with --release for meaningful numbers");
    }
    println!(
        "SMD bus: {} messages of 32 bytes, 1 posting thread, dispatcher on a second thread",
        args.messages
    );
    println!(
        "{:>12} {:>11} {:>14} {:>16} {:>13} {:>12}",
        "participants", "queue depth", "msgs/s", "deliveries/s", "allocs/msg", "full, retried"
    );
    let mut ok = true;
    let runs = [
        (1, args.queue_depth),
        (4, args.queue_depth),
        (16, args.queue_depth),
        (1, 40),
    ];
    for (participants, depth) in runs {
        match bench_run(participants, depth, args.messages) {
            Some(o) => println!(
                "{participants:>12} {depth:>11} {:>14.0} {:>16.0} {:>13.4} {:>12}",
                o.msgs_per_s,
                o.msgs_per_s * participants as f64,
                o.allocs_per_msg,
                o.refused
            ),
            None => {
                println!("{participants:>12} {depth:>11}  FAILED (not all messages delivered)");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn bench_run(participants: usize, depth: usize, messages: u64) -> Option<Outcome> {
    let bus = SmdBus::new(SmdConfig::default().queue_depth(depth));
    let (done_tx, done_rx) = mpsc::channel();
    let finished = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..participants)
        .map(|_| {
            let done_tx = done_tx.clone();
            let finished = finished.clone();
            let mut seen = 0u64;
            let mut sum = 0u64;
            bus.register(SmdClass::NETWORK, move |m| {
                seen += 1;
                sum = sum.wrapping_add(u64::from(m.payload()[0]));
                if seen == messages
                    && finished.fetch_add(1, Ordering::AcqRel) + 1 == participants as u64
                {
                    let _ = done_tx.send(sum);
                }
            })
        })
        .collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let dispatcher = {
        let bus = bus.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().build().ok()?;
            rt.block_on(async {
                let _ = ready_tx.send(());
                bus.run().await;
            });
            Some(())
        })
    };
    // Runtime setup allocates: keep it out of the measured window.
    ready_rx.recv_timeout(Duration::from_secs(10)).ok()?;

    let body = *b"{\"class\":\"NETWORK\",\"x\":12345678}";
    let mut refused = 0;
    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for _ in 0..messages {
        loop {
            match bus.post(SmdClass::NETWORK, &body) {
                Ok(_) => break,
                Err(SmdError::QueueFull { .. }) => {
                    refused += 1;
                    std::thread::yield_now();
                }
                Err(_) => return None,
            }
        }
    }
    let delivered = done_rx.recv_timeout(Duration::from_secs(120)).is_ok();
    let elapsed = start.elapsed();
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    bus.close();
    let _ = dispatcher.join();
    drop(handles);
    delivered.then(|| Outcome {
        msgs_per_s: messages as f64 / elapsed.as_secs_f64(),
        allocs_per_msg: allocs as f64 / messages as f64,
        refused,
    })
}

//! `sstreams demo …`: ports of the C minimal examples
//!
//! `demo smd` is the local (in-process) mode of C `minimal-secure-streams-smd`: a direct SMD
//! participant that listens to every class (registered on the [`Context`] builder, so it sees
//! every system state), and a secure stream of streamtype `_lws_smd` (class filter
//! SYSTEM_STATE | METRICS | NETWORK, given as the stream's initial tx credit as in C) that
//! sends alternating NETWORK and INTERACTION messages plus one `cpdcheck` trigger. The run
//! passes when the stream saw no INTERACTION message and every count is exactly what was sent.
//!
//! Unlike C, the end is not a timer: after its last message the stream side posts a METRICS
//! end marker; both participants see it after everything posted before it, so the counts are
//! exact. (C also re-forwards every stream rx into the local bus with
//! `lws_smd_ss_rx_forward`, so its direct participant sees those twice; that helper is meant
//! for proxy clients and is not used here.)

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use sstreams::smd::{SmdClass, SmdMessage, SsHeader};
use sstreams::stream::{ConnState, Flags};
use sstreams::{Context, Policy, Stream, StreamEvent, StreamEvents, StreamOptions};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Demos ported from the C minimal examples
#[derive(Debug, Subcommand)]
pub(crate) enum DemoCommand {
    /// SMD: a direct participant and an `_lws_smd` stream exchanging system messages
    Smd(SmdDemoArgs),
}

/// Options of `demo smd`
#[derive(Debug, Args)]
pub(crate) struct SmdDemoArgs {
    /// Number of messages the stream side sends
    #[arg(long, default_value_t = 100)]
    count: u32,
    /// Interval between the stream side's messages, in microseconds
    #[arg(long, default_value_t = 1000)]
    interval_us: u64,
    /// Run the `_lws_smd` stream through an SS proxy (the C example's `-client` build): an
    /// in-process one, or the one at `--proxy`
    #[arg(long)]
    via_proxy: bool,
    /// The proxy to use with `--via-proxy` (@name, /path or tcp:ADDR:PORT); default: start one
    /// in this process
    #[arg(long, requires = "via_proxy")]
    proxy: Option<sstreams::proxy::listen::ProxyAddr>,
    /// With `--via-proxy`: start four worker processes that send and check each other's
    /// messages through the proxy (C `--multi`)
    #[arg(long, requires = "via_proxy")]
    multi: bool,
    /// Internal: run as worker N of `--multi`
    #[arg(long, hide = true, requires = "proxy")]
    worker: Option<u32>,
}

pub(crate) fn run(cmd: DemoCommand) -> ExitCode {
    match cmd {
        DemoCommand::Smd(args) => run_smd(&args),
    }
}

/// What the stream side's filter accepts (C `manual_initial_tx_credit` in the example)
const STREAM_FILTER: SmdClass = SmdClass::from_bits(
    SmdClass::SYSTEM_STATE.bits() | SmdClass::METRICS.bits() | SmdClass::NETWORK.bits(),
);
const END_MARKER: &[u8] = b"{\"dump\":\"smd-demo\",\"ts\":0}";

/// Counts kept by the direct participant
#[derive(Debug, Default)]
struct DirectCounts {
    total: u64,
    states: u64,
    network: u64,
    interaction: u64,
}

/// Counts kept by the stream side
#[derive(Debug, Default)]
struct StreamCounts {
    rx: u64,
    rx_interaction: u64,
    tx: u64,
    tx_network: u64,
    out_of_order: u64,
}

fn run_smd(args: &SmdDemoArgs) -> ExitCode {
    println!(
        "sstreams SMD demo ({}): {} msgs at {}us interval",
        if args.via_proxy {
            "via the SS proxy"
        } else {
            "local"
        },
        args.count,
        args.interval_us
    );
    let rt = match crate::runtime(crate::Threads::Current) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let budget = Duration::from_micros(
        u64::from(args.count).saturating_mul(args.interval_us.saturating_add(50_000)),
    ) + Duration::from_secs(1);
    if let (Some(me), Some(addr)) = (args.worker, &args.proxy) {
        let ok = rt.block_on(crate::demo_multi::work(addr, me, args.count));
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    if args.multi {
        let ok = rt.block_on(async {
            let (_proxy, addr) = match &args.proxy {
                Some(addr) => (None, addr.clone()),
                None => match start_proxy().await {
                    Ok((cx, addr)) => (Some(cx), addr),
                    Err(e) => {
                        println!("proxy: {e}");
                        return false;
                    }
                },
            };
            crate::demo_multi::coordinate(&addr, args.count).await
        });
        println!("Completed: {}", if ok { "OK" } else { "FAIL" });
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let ok = rt.block_on(async {
        match tokio::time::timeout(budget, smd_demo(args)).await {
            Ok(ok) => ok,
            Err(_) => {
                println!("demo timed out after {budget:?}");
                false
            }
        }
    });
    println!("Completed: {}", if ok { "OK" } else { "FAIL" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn smd_demo(args: &SmdDemoArgs) -> bool {
    // The direct participant, registered before the context starts so it sees the very
    // first states (C `early_smd_cb` with filter 0xffffffff).
    let (operational_tx, operational_rx) = oneshot::channel();
    let (done_tx, done_rx) = oneshot::channel();
    let direct = Arc::new(Mutex::new(DirectCounts::default()));
    let participant = {
        let counts = direct.clone();
        let mut operational_tx = Some(operational_tx);
        let mut done_tx = Some(done_tx);
        move |m: &SmdMessage| {
            let mut c = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.total += 1;
            match m.class() {
                SmdClass::SYSTEM_STATE => c.states += 1,
                SmdClass::NETWORK => c.network += 1,
                SmdClass::INTERACTION => c.interaction += 1,
                _ => {}
            }
            if m.class() == SmdClass::SYSTEM_STATE && m.payload() == b"{\"state\":\"OPERATIONAL\"}"
            {
                if let Some(tx) = operational_tx.take() {
                    let _ = tx.send(());
                }
            }
            if m.class() == SmdClass::METRICS && m.payload() == END_MARKER {
                if let Some(tx) = done_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    };
    // Via a proxy: the stream lives at the proxy, and what it receives is forwarded into this
    // process's bus (C `lws_smd_ss_rx_forward`), where the direct participant sees it.
    let mut _proxy = None;
    let proxy_addr = match (args.via_proxy, &args.proxy) {
        (false, _) => None,
        (true, Some(addr)) => Some(addr.clone()),
        (true, None) => match start_proxy().await {
            Ok((cx, addr)) => {
                _proxy = Some(cx);
                Some(addr)
            }
            Err(e) => {
                println!("proxy: {e}");
                return false;
            }
        },
    };
    let mut builder = Context::builder();
    builder
        .policy(Policy::builtin_default())
        .smd_participant(SmdClass::ALL, participant);
    if let Some(addr) = &proxy_addr {
        println!("myss: via the SS proxy at {addr}");
        builder.proxy(addr.clone());
    }
    let cx = match builder.build() {
        Ok(cx) => cx,
        Err(e) => {
            println!("context: {e}");
            return false;
        }
    };
    if operational_rx.await.is_err() {
        return false;
    }
    println!("direct_smd_cb: OPERATIONAL; requesting a CPD check, creating the stream");
    let cpd = b"{\"trigger\": \"cpdcheck\", \"src\":\"direct-test\"}";
    if let Err(e) = cx.smd().post(SmdClass::NETWORK, cpd) {
        println!("direct_smd_cb: cpdcheck not sent: {e}");
    }

    let mut options = StreamOptions::default();
    // C carries the class filter of an `_lws_smd` stream in its initial tx credit.
    options.tx_credit(STREAM_FILTER.bits() as i32);
    let (stream, events) = match cx.open_with(sstreams::smd::STREAMTYPE_NAME, options) {
        Ok(s) => s,
        Err(e) => {
            println!("myss: {e}");
            return false;
        }
    };
    let forward = args.via_proxy.then(|| cx.smd().clone());
    let stream = stream_side(stream, events, args, forward).await;
    let direct_done = done_rx.await.is_ok();
    let stats = cx.smd().stats();
    drop(cx);

    let direct = direct
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("{} {} {}", stream.rx, direct.total, stream.tx);
    println!("stream: {stream:?}");
    println!("direct: {direct:?}");
    println!("bus: {stats:?}");

    // Direct: 14 states (PRE_PRIV_DROP…OPERATIONAL), its own cpdcheck, then locally every
    // stream tx and the marker; via a proxy only what the stream received and forwarded.
    let forwarded = if args.via_proxy {
        stream.tx_network
    } else {
        u64::from(args.count)
    };
    let want_direct = 14 + 1 + forwarded + 1;
    // Stream: its own NETWORK sends (it joined after OPERATIONAL and the cpdcheck), marker.
    let want_stream = stream.tx_network + 1;
    let mut ok = direct_done;
    ok &= check("stream saw no INTERACTION", stream.rx_interaction, 0);
    ok &= check("stream tx count", stream.tx, u64::from(args.count));
    ok &= check("stream rx count", stream.rx, want_stream);
    ok &= check("stream rx order violations", stream.out_of_order, 0);
    ok &= check("direct rx count", direct.total, want_direct);
    // Locally the direct participant sees the INTERACTION messages; via a proxy they stay there.
    let interaction = if args.via_proxy {
        0
    } else {
        stream.tx - stream.tx_network
    };
    ok &= check("direct INTERACTION count", direct.interaction, interaction);
    ok
}

fn check(what: &str, got: u64, want: u64) -> bool {
    if got != want {
        println!("FAIL: {what}: got {got}, want {want}");
    }
    got == want
}

/// Outcome of one wait in the stream side's loop
enum Event {
    Stream(Option<StreamEvent>),
    TxDue,
}

/// The `_lws_smd` stream: states, periodic tx, and rx until the end marker
async fn stream_side(
    stream: Stream,
    mut events: StreamEvents,
    args: &SmdDemoArgs,
    forward: Option<sstreams::smd::SmdBus>,
) -> StreamCounts {
    let mut counts = StreamCounts::default();
    let interval = Duration::from_micros(args.interval_us);
    let mut next_tx = Instant::now();
    let mut connected = false;
    let mut alternate = 0u32;
    let mut last_x: Option<u64> = None;
    loop {
        let sending = connected && counts.tx < u64::from(args.count);
        let event = tokio::select! {
            e = events.next() => Event::Stream(e),
            () = tokio::time::sleep_until(next_tx), if sending => Event::TxDue,
        };
        match event {
            Event::Stream(None) => break,
            Event::Stream(Some(StreamEvent::State(state, _))) => {
                println!("myss_state: {state}");
                connected |= state == ConnState::CONNECTED;
            }
            Event::Stream(Some(StreamEvent::Rx(rx, _))) => {
                let Ok((header, body)) = SsHeader::decode(&rx) else {
                    break;
                };
                counts.rx += 1;
                if let Some(bus) = &forward {
                    if let Err(e) = bus.forward(header.class, header.timestamp_us, body, None) {
                        println!("myss_rx: not forwarded: {e}");
                    }
                }
                if header.class.intersects(SmdClass::INTERACTION) {
                    counts.rx_interaction += 1;
                }
                if let Some(x) = field_x(body) {
                    if last_x.is_some_and(|last| x <= last) {
                        counts.out_of_order += 1;
                    }
                    last_x = Some(x);
                }
                if header.class == SmdClass::METRICS && body == END_MARKER {
                    break;
                }
            }
            Event::Stream(Some(_)) => {}
            Event::TxDue => {
                alternate += 1;
                let (class, body) = if alternate == 4 {
                    let b = "{\"trigger\": \"cpdcheck\", \"src\":\"SS-test\"}".to_owned();
                    (SmdClass::NETWORK, b)
                } else if alternate % 2 == 1 {
                    (
                        SmdClass::NETWORK,
                        format!("{{\"class\":\"NETWORK\",\"x\":{}}}", counts.tx),
                    )
                } else {
                    let b = format!("{{\"class\":\"INTERACTION\",\"x\":{}}}", counts.tx);
                    (SmdClass::INTERACTION, b)
                };
                stream.send(payload(class, body.as_bytes()), Flags::SOM | Flags::EOM);
                counts.tx += 1;
                if class == SmdClass::NETWORK {
                    counts.tx_network += 1;
                }
                // From now, as C schedules: ticks missed while the link was coming up do not
                // all fire at once.
                next_tx = next_tx.max(Instant::now()) + interval;
                if counts.tx == u64::from(args.count) {
                    stream.send(
                        payload(SmdClass::METRICS, END_MARKER),
                        Flags::SOM | Flags::EOM,
                    );
                }
            }
        }
    }
    drop(stream);
    while let Some(e) = events.next().await {
        if let StreamEvent::State(state, _) = e {
            println!("myss_state: {state}");
        }
    }
    counts
}

/// An SS proxy in this process, on a fresh abstract socket, serving the built-in policy
async fn start_proxy() -> Result<(Context, sstreams::proxy::listen::ProxyAddr), String> {
    use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
    let cx = Context::builder()
        .policy(Policy::builtin_default())
        .build()
        .map_err(|e| e.to_string())?;
    let addr = ProxyAddr::Abstract(format!("sstreams-demo-smd-{}", std::process::id()));
    let listener = ProxyListener::bind(addr.clone(), ListenOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(sstreams::proxy::server::serve(
        cx.clone(),
        listener,
        std::future::pending(),
    ));
    Ok((cx, addr))
}

/// An `_lws_smd` tx payload: the 16-byte header, then the body (C `lws_smd_ss_msg_printf`)
fn payload(class: SmdClass, body: &[u8]) -> Vec<u8> {
    let mut p = SsHeader {
        class,
        timestamp_us: 0,
    }
    .encode()
    .to_vec();
    p.extend_from_slice(body);
    p
}

/// The number after `"x":` in a demo body, if any
fn field_x(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = &text[text.find("\"x\":")? + 4..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

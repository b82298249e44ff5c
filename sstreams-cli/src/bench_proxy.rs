//! `sstreams bench proxy`: what going through the SS proxy costs, measured in one run
//!
//! Everything runs in this process on loopback, as tasks of one tokio runtime with two worker
//! threads (the runtime the `sstreams proxy` command uses on a two-core machine): the servers (bulk on a Unix socket, echo on TCP),
//! the proxy (on an abstract Unix socket) and the clients. (Separate single-threaded runtimes,
//! one per role as separate processes would have, measured slower and noisier on a two-core
//! machine: every hop becomes a thread wake-up.) Reported side by side, as the median of
//! interleaved rounds (so a noisy patch of the machine hits every row alike):
//!
//! * bulk MB/s of a raw stream receiving a large body from a server on a Unix socket: through
//!   the proxy, direct, and a bare Unix-socket copy of the same size (the ceiling: the proxy
//!   path copies every byte through two sockets, the bare copy through one, so 50% is the
//!   most a copying proxy can reach), and a bare relay (two socket pairs and a plain copy
//!   between them: what the least a proxy can do costs); the share of the ceiling is the median
//!   of each round's ratio; also the CPU time the process spent per GB (all threads: sender,
//!   proxy and receiver), which other work on the machine disturbs far less than MB/s;
//! * small-message round trips (32 bytes echoed): per second and p50/p99 latency, direct and
//!   proxied, and the latency the proxy adds at p50;
//! * SMD messages per second from the proxy's bus to a proxied `_lws_smd` stream.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams::smd::SmdClass;
use sstreams::stream::{ConnState, Flags};
use sstreams::{Context, StreamEvent, StreamOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Options of `bench proxy`
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct ProxyBenchArgs {
    /// Size of the bulk body, in MiB
    #[arg(long, default_value_t = 128)]
    bulk_mib: u64,
    /// Small-message round trips per client and round
    #[arg(long, default_value_t = 5_000)]
    round_trips: u32,
    /// SMD messages sent to the proxied stream
    #[arg(long, default_value_t = 100_000)]
    smd_messages: u32,
    /// Rounds of the bulk and round-trip measurements (the median is reported)
    #[arg(long, default_value_t = 5)]
    rounds: u32,
}

const CHUNK: usize = 64 * 1024;
const SMALL: &[u8] = b"0123456789abcdef0123456789abcdef";

pub(crate) fn run(args: &ProxyBenchArgs) -> ExitCode {
    let args = *args;
    // The whole bench is a task of the runtime, as the proxy's and a client's work would be,
    // not the caller's thread, which would be a third thread competing for the cores.
    crate::block_on(crate::Threads::Workers(Some(2)), async move {
        tokio::spawn(async move { bench(&args).await.map(|()| true) })
            .await
            .map_err(|e| e.to_string())?
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn bench(args: &ProxyBenchArgs) -> Result<(), String> {
    let bulk_len = args.bulk_mib * 1024 * 1024;
    let bulk = bulk_server(bulk_len).await?;
    let echo = echo_server().await?;
    let policy = format!(
        r#"{{ "s": [ {{ "bulk": {{ "endpoint": "+@{bulk}", "protocol": "raw" }} }},
                     {{ "echo": {{ "endpoint": "{}", "port": {}, "protocol": "raw" }} }} ] }}"#,
        echo.ip(),
        echo.port()
    );
    let direct = Context::builder()
        .policy_json(&policy)
        .build()
        .map_err(|e| e.to_string())?;
    let name = format!("sstreams-bench-proxy-{}", std::process::id());
    let listener = ProxyListener::bind(ProxyAddr::Abstract(name.clone()), ListenOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(server::serve(
        direct.clone(),
        listener,
        std::future::pending(),
    ));
    let proxied = Context::builder()
        .proxy(ProxyAddr::Abstract(name))
        .build()
        .map_err(|e| e.to_string())?;

    let rounds = args.rounds.max(1);
    println!(
        "proxy: {} MiB bulk, {} round trips of {} bytes, median of {rounds} rounds; \
         {} SMD messages",
        args.bulk_mib,
        args.round_trips,
        SMALL.len(),
        args.smd_messages
    );
    let (mut bare, mut d_bulk, mut p_bulk) = (Vec::new(), Vec::new(), Vec::new());
    let (mut relay, mut r_share) = (Vec::new(), Vec::new());
    let (mut d_share, mut p_share) = (Vec::new(), Vec::new());
    let (mut d_rtt, mut p_rtt, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (b, b_cpu) = cpu_per_gb(bulk_len, bare_unix(bulk_len, false)).await?;
        let (r, r_cpu) = cpu_per_gb(bulk_len, bare_unix(bulk_len, true)).await?;
        relay.push((r, r_cpu));
        r_share.push((r / b * 100.0, r_cpu / b_cpu));
        let (d, d_cpu) = cpu_per_gb(bulk_len, stream_bulk(&direct, bulk_len)).await?;
        let (p, p_cpu) = cpu_per_gb(bulk_len, stream_bulk(&proxied, bulk_len)).await?;
        bare.push((b, b_cpu));
        d_bulk.push((d, d_cpu));
        p_bulk.push((p, p_cpu));
        d_share.push((d / b * 100.0, d_cpu / b_cpu));
        p_share.push((p / b * 100.0, p_cpu / b_cpu));
        let d = round_trips(&direct, args.round_trips).await?;
        let p = round_trips(&proxied, args.round_trips).await?;
        added.push(p.p50_us - d.p50_us);
        d_rtt.push(d);
        p_rtt.push(p);
    }
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>10}",
        "bulk", "MB/s", "of bare", "CPU s/GB", "× bare"
    );
    for (what, v, share) in [
        ("bare Unix-socket copy", bare, vec![(100.0, 1.0)]),
        ("bare relay, two Unix sockets", relay, r_share),
        ("direct stream", d_bulk, d_share),
        ("through the proxy", p_bulk, p_share),
    ] {
        let (rate, cpu): (Vec<f64>, Vec<f64>) = v.into_iter().unzip();
        let (share, cpu_share): (Vec<f64>, Vec<f64>) = share.into_iter().unzip();
        println!(
            "{what:<36} {:>10.0} {:>9.1}% {:>10.3} {:>10.2}",
            median(rate),
            median(share),
            median(cpu),
            median(cpu_share)
        );
    }

    println!(
        "{:<36} {:>10} {:>10} {:>10}",
        "round trips", "per s", "p50 µs", "p99 µs"
    );
    for (what, r) in [("direct stream", &d_rtt), ("through the proxy", &p_rtt)] {
        println!(
            "{what:<36} {:>10.0} {:>10.1} {:>10.1}",
            median(r.iter().map(|r| r.per_s).collect()),
            median(r.iter().map(|r| r.p50_us).collect()),
            median(r.iter().map(|r| r.p99_us).collect()),
        );
    }
    println!("{:<36} {:>21.1}", "added p50 latency, µs", median(added));

    let smd = smd_rate(&direct, &proxied, args.smd_messages).await?;
    println!("{:<36} {smd:>10.0}", "SMD msgs/s, proxy bus → client");
    Ok(())
}

/// Serves `len` bytes to every connection, on an abstract Unix socket whose name it returns
/// (a Unix socket like the bare copy's, so the rows differ only in what sstreams adds)
async fn bulk_server(len: u64) -> Result<String, String> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("sstreams-bench-bulk-{}", std::process::id());
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(&name).map_err(|e| e.to_string())?;
    let l = std::os::unix::net::UnixListener::bind_addr(&addr).map_err(|e| e.to_string())?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    let l = tokio::net::UnixListener::from_std(l).map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let zeros = vec![0u8; CHUNK];
                let mut left = len;
                while left > 0 {
                    let n = left.min(CHUNK as u64) as usize;
                    if s.write_all(&zeros[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    Ok(name)
}

async fn echo_server() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Runs a bulk measurement; adds the CPU time the whole process spent on it, in seconds per
/// 10⁹ bytes (steadier than MB/s on a machine shared with other work)
async fn cpu_per_gb(
    len: u64,
    work: impl Future<Output = Result<f64, String>>,
) -> Result<(f64, f64), String> {
    let before = cpu_ns();
    let rate = work.await?;
    let cpu = cpu_ns().saturating_sub(before);
    Ok((rate, cpu as f64 / len as f64))
}

/// CPU time of every thread of this process so far, in ns (Linux `schedstat`; 0 elsewhere)
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// The ceiling: the same bytes over a Unix socket pair, no framing; with `relay`, over two
/// pairs with a task copying from one to the other (the least any proxy does)
async fn bare_unix(len: u64, relay: bool) -> Result<f64, String> {
    let (mut a, mut b) = tokio::net::UnixStream::pair().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let zeros = vec![0u8; CHUNK];
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            a.write_all(&zeros[..n]).await?;
            left -= n as u64;
        }
        Ok::<_, std::io::Error>(())
    });
    if relay {
        let (mut c, d) = tokio::net::UnixStream::pair().map_err(|e| e.to_string())?;
        let mut from = std::mem::replace(&mut b, d);
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = from.read(&mut buf).await {
                if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
    }
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0u64;
    while got < len {
        let n = b.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    writer
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

async fn stream_bulk(cx: &Context, len: u64) -> Result<f64, String> {
    let (stream, mut events) = cx.open("bulk").map_err(|e| e.to_string())?;
    let start = Instant::now();
    stream.connect();
    let mut got = 0u64;
    while got < len {
        match tokio::time::timeout(Duration::from_secs(60), events.next()).await {
            Ok(Some(StreamEvent::Rx(d, _))) => got += d.len() as u64,
            Ok(Some(StreamEvent::State(ConnState::ALL_RETRIES_FAILED, _))) | Ok(None) => {
                return Err("bulk stream failed".into());
            }
            Ok(Some(_)) => {}
            Err(_) => return Err("bulk stream stalled".into()),
        }
    }
    Ok(got as f64 / 1e6 / start.elapsed().as_secs_f64())
}

struct Rtt {
    per_s: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn round_trips(cx: &Context, n: u32) -> Result<Rtt, String> {
    let (stream, mut events) = cx.open("echo").map_err(|e| e.to_string())?;
    stream.connect();
    loop {
        match events.next().await {
            Some(StreamEvent::State(ConnState::CONNECTED, _)) => break,
            Some(_) => {}
            None => return Err("echo stream ended".into()),
        }
    }
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        stream.send(Bytes::from_static(SMALL), Flags::empty());
        let mut got = 0;
        while got < SMALL.len() {
            match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
                Ok(Some(StreamEvent::Rx(d, _))) => got += d.len(),
                Ok(Some(_)) => {}
                _ => return Err("echo stalled".into()),
            }
        }
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort_unstable();
    let pct =
        |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    Ok(Rtt {
        per_s: f64::from(n) / total.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
    })
}

async fn smd_rate(proxy: &Context, client: &Context, n: u32) -> Result<f64, String> {
    let class = SmdClass::from_bits(1 << 25);
    let mut options = StreamOptions::default();
    options.tx_credit(class.bits() as i32);
    let (_stream, mut events) = client
        .open_with(sstreams::smd::STREAMTYPE_NAME, options)
        .map_err(|e| e.to_string())?;
    loop {
        match events.next().await {
            Some(StreamEvent::State(ConnState::CONNECTED, _)) => break,
            Some(_) => {}
            None => return Err("smd stream ended".into()),
        }
    }
    let bus = proxy.smd().clone();
    let start = Instant::now();
    let poster = tokio::spawn(async move {
        let mut sent = 0;
        while sent < n {
            match bus.post(class, b"{\"bench\":1}") {
                Ok(_) => sent += 1,
                // Full queue: let the link drain it.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    });
    let mut got = 0;
    while got < n {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(StreamEvent::Rx(..))) => got += 1,
            Ok(Some(_)) => {}
            _ => return Err(format!("smd stalled after {got} messages")),
        }
    }
    poster.await.map_err(|e| e.to_string())?;
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

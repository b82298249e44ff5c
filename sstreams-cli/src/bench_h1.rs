//! `sstreams bench h1`: h1 streams against plain hyper, in one run, on one local server
//!
//! The server (in this process, on loopback) answers every request with a fixed body and
//! closes the connection, as an SS h1 transaction uses one connection. Measured:
//!
//! * sequential GETs per second of a small body: sstreams streams (one stream, one
//!   `request_tx` per GET) against hyper with a new connection per request (the same work),
//!   and, for reference, hyper reusing one keep-alive connection;
//! * bulk MB/s of one large body: an sstreams stream's rx against hyper reading the body.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use sstreams::stream::{ConnState, Flags, StreamCx};
use sstreams::{Context, StreamHandler};
use sstreams_core::stream::StateReturn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Options of `bench h1`
#[derive(Debug, Args)]
pub(crate) struct H1BenchArgs {
    /// Sequential GETs per client and round
    #[arg(long, default_value_t = 5000)]
    requests: u32,
    /// Size of the bulk body, in MiB
    #[arg(long, default_value_t = 256)]
    bulk_mib: u64,
    /// Rounds of each measurement (the best round is reported)
    #[arg(long, default_value_t = 7)]
    rounds: u32,
}

const SMALL: &[u8] = b"hello from the bench server\n";
const CHUNK: usize = 256 * 1024;

pub(crate) fn run(args: &H1BenchArgs) -> ExitCode {
    crate::block_on(crate::Threads::Workers(Some(2)), async {
        bench(args).await.map(|()| true)
    })
}

async fn bench(args: &H1BenchArgs) -> Result<(), String> {
    let small = server(Bytes::from_static(SMALL), 0).await?;
    let bulk_len = args.bulk_mib * 1024 * 1024;
    let bulk = server(Bytes::new(), bulk_len).await?;
    println!(
        "h1: {} sequential GETs of {} bytes, and one {} MiB body, best of {} rounds",
        args.requests,
        SMALL.len(),
        args.bulk_mib,
        args.rounds
    );

    // Rounds interleave the clients, so a slow patch of the machine hits both alike; the
    // best round of each is kept.
    let (mut ss, mut hy, mut ka, mut ss_b, mut hy_b) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for _ in 0..args.rounds.max(1) {
        ss = ss.max(ss_gets(small, args.requests).await?);
        hy = hy.max(hyper_gets(small, args.requests, false).await?);
        ka = ka.max(hyper_gets(small, args.requests, true).await?);
        ss_b = ss_b.max(ss_bulk(bulk, bulk_len).await?);
        hy_b = hy_b.max(hyper_bulk(bulk, bulk_len).await?);
    }
    let rows = [
        ("GETs/s, new connection each", ss, hy),
        ("bulk MB/s", ss_b, hy_b),
    ];

    println!(
        "{:<30} {:>12} {:>12} {:>10}",
        "measure", "sstreams", "hyper", "ss/hyper"
    );
    for (what, s, h) in rows {
        println!("{what:<30} {s:>12.0} {h:>12.0} {:>9.1}%", s / h * 100.0);
    }
    println!("{:<30} {:>12} {ka:>12.0}", "GETs/s, hyper keep-alive", "-");
    Ok(())
}

/// A server answering every request with `body` (or `len` zero bytes), then closing
async fn server(body: Bytes, len: u64) -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let _ = serve(s, body, len).await;
            });
        }
    });
    Ok(addr)
}

async fn serve(mut s: TcpStream, body: Bytes, len: u64) -> std::io::Result<()> {
    let _ = s.set_nodelay(true);
    let mut req = Vec::with_capacity(512);
    let mut buf = [0u8; 2048];
    loop {
        // Keep-alive clients send several requests on one connection.
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            req.extend_from_slice(&buf[..n]);
        }
        let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let close = String::from_utf8_lossy(&req[..end])
            .to_ascii_lowercase()
            .contains("connection: close");
        req.drain(..end);
        let total = if body.is_empty() {
            len
        } else {
            body.len() as u64
        };
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n");
        s.write_all(head.as_bytes()).await?;
        if body.is_empty() {
            let zeros = vec![0u8; CHUNK];
            let mut left = len;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                s.write_all(&zeros[..n]).await?;
                left -= n as u64;
            }
        } else {
            s.write_all(&body).await?;
        }
        if close {
            return Ok(());
        }
    }
}

fn policy(addr: SocketAddr) -> String {
    format!(
        r#"{{ "s": [{{ "get": {{ "endpoint": "{}", "port": {}, "protocol": "h1",
                             "http_method": "GET", "http_url": "x" }} }}] }}"#,
        addr.ip(),
        addr.port()
    )
}

/// Counts rx bytes and reports each QoS verdict
struct Counter {
    bytes: Arc<AtomicU64>,
    verdicts: mpsc::UnboundedSender<bool>,
}

impl StreamHandler for Counter {
    fn state(&mut self, _cx: &mut StreamCx<'_>, state: ConnState, _ack: u32) -> StateReturn {
        match state {
            ConnState::QOS_ACK_REMOTE => {
                let _ = self.verdicts.send(true);
            }
            ConnState::QOS_NACK_REMOTE | ConnState::ALL_RETRIES_FAILED => {
                let _ = self.verdicts.send(false);
            }
            _ => {}
        }
        StateReturn::Ok
    }

    fn rx(&mut self, _cx: &mut StreamCx<'_>, data: &[u8], _flags: Flags) -> StateReturn {
        self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        StateReturn::Ok
    }
}

async fn ss_transactions(addr: SocketAddr, n: u32) -> Result<(Duration, u64), String> {
    let cx = Context::builder()
        .policy_json(&policy(addr))
        .build()
        .map_err(|e| e.to_string())?;
    let bytes = Arc::new(AtomicU64::new(0));
    let (tx, mut verdicts) = mpsc::unbounded_channel();
    let stream = cx
        .create_stream(
            "get",
            Counter {
                bytes: bytes.clone(),
                verdicts: tx,
            },
        )
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    for _ in 0..n {
        stream.request_tx();
        match verdicts.recv().await {
            Some(true) => {}
            _ => return Err("a GET failed".into()),
        }
    }
    Ok((start.elapsed(), bytes.load(Ordering::Relaxed)))
}

async fn ss_gets(addr: SocketAddr, n: u32) -> Result<f64, String> {
    let (t, bytes) = ss_transactions(addr, n).await?;
    check_len(bytes, u64::from(n) * SMALL.len() as u64)?;
    Ok(f64::from(n) / t.as_secs_f64())
}

async fn ss_bulk(addr: SocketAddr, len: u64) -> Result<f64, String> {
    let (t, bytes) = ss_transactions(addr, 1).await?;
    check_len(bytes, len)?;
    Ok(len as f64 / 1e6 / t.as_secs_f64())
}

fn check_len(got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("received {got} bytes, expected {want}"))
    }
}

async fn hyper_conn(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(send)
}

async fn hyper_get(
    send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    keep_alive: bool,
) -> Result<u64, String> {
    let mut req = hyper::Request::get("/x").header("host", addr.to_string());
    if !keep_alive {
        req = req.header("connection", "close");
    }
    let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
    // A kept-alive connection is ready again only once hyper has seen the end of the last
    // response.
    send.ready().await.map_err(|e| e.to_string())?;
    let mut resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let mut n = 0u64;
    while let Some(frame) = resp.body_mut().frame().await {
        if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
            n += data.len() as u64;
        }
    }
    Ok(n)
}

async fn hyper_gets(addr: SocketAddr, n: u32, keep_alive: bool) -> Result<f64, String> {
    let start = Instant::now();
    let mut total = 0;
    let mut kept = None;
    for _ in 0..n {
        let mut send = match kept.take() {
            Some(s) => s,
            None => hyper_conn(addr).await?,
        };
        total += hyper_get(&mut send, addr, keep_alive).await?;
        if keep_alive {
            kept = Some(send);
        }
    }
    check_len(total, u64::from(n) * SMALL.len() as u64)?;
    Ok(f64::from(n) / start.elapsed().as_secs_f64())
}

async fn hyper_bulk(addr: SocketAddr, len: u64) -> Result<f64, String> {
    let start = Instant::now();
    let mut send = hyper_conn(addr).await?;
    let n = hyper_get(&mut send, addr, false).await?;
    check_len(n, len)?;
    Ok(len as f64 / 1e6 / start.elapsed().as_secs_f64())
}

//! `sstreams demo smd --via-proxy --multi`: worker processes exchanging SMD messages through
//! one SS proxy (the C example's `--multi`)
//!
//! The coordinator (this process) reaches the proxy with its own `_lws_smd` stream, starts
//! [`WORKERS`] copies of this program as workers and waits until each has said `ready` (its
//! stream is connected, so its subscription at the proxy exists); then it says `go`. Each
//! worker sends `count` numbered messages and checks that it receives every worker's messages
//! (its own included: the proxy echoes to the sender), each worker's in order; then it says
//! `done` and exits 0 if everything matched. The run passes when every worker did.

use std::process::Stdio;
use std::time::Duration;

use sstreams::proxy::listen::ProxyAddr;
use sstreams::smd::{STREAMTYPE_NAME, SmdClass, SsHeader};
use sstreams::stream::{ConnState, Flags};
use sstreams::{Context, Policy, Stream, StreamEvent, StreamEvents, StreamOptions};

/// Worker processes started
pub(crate) const WORKERS: u32 = 4;
/// The class the workers talk on (the first user class)
const CLASS: SmdClass = SmdClass::from_bits(1 << 24);
/// Longest a run may take, in seconds
const LIMIT: Duration = Duration::from_secs(60);

/// An open `_lws_smd` stream on CLASS, connected
async fn open(addr: &ProxyAddr) -> Result<(Context, Stream, StreamEvents), String> {
    let cx = Context::builder()
        .policy(Policy::builtin_default())
        .proxy(addr.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut options = StreamOptions::default();
    options.tx_credit(CLASS.bits() as i32);
    let (stream, mut events) = cx
        .open_with(STREAMTYPE_NAME, options)
        .map_err(|e| e.to_string())?;
    loop {
        match events.next().await {
            Some(StreamEvent::State(ConnState::CONNECTED, _)) => return Ok((cx, stream, events)),
            Some(_) => {}
            None => return Err("the stream ended before it connected".into()),
        }
    }
}

fn send(stream: &Stream, body: &str) {
    let mut p = SsHeader {
        class: CLASS,
        timestamp_us: 0,
    }
    .encode()
    .to_vec();
    p.extend_from_slice(body.as_bytes());
    stream.send(p, Flags::SOM | Flags::EOM);
}

/// The next message body on the stream
async fn recv(events: &mut StreamEvents) -> Result<String, String> {
    loop {
        match events.next().await {
            Some(StreamEvent::Rx(d, _)) => {
                let (_, body) = SsHeader::decode(&d).map_err(|e| e.to_string())?;
                return Ok(String::from_utf8_lossy(body).into_owned());
            }
            Some(_) => {}
            None => return Err("the stream ended".into()),
        }
    }
}

/// The number after `"key":` in `body`
fn field(body: &str, key: &str) -> Option<u32> {
    let rest = &body[body.find(&format!("\"{key}\":"))? + key.len() + 3..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The coordinator: starts the workers and tells them when to begin
pub(crate) async fn coordinate(addr: &ProxyAddr, count: u32) -> bool {
    match tokio::time::timeout(LIMIT, coordinate_inner(addr, count)).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            println!("multi: {e}");
            false
        }
        Err(_) => {
            println!("multi: timed out after {LIMIT:?}");
            false
        }
    }
}

async fn coordinate_inner(addr: &ProxyAddr, count: u32) -> Result<bool, String> {
    let (_cx, stream, mut events) = open(addr).await?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut children = Vec::new();
    for k in 0..WORKERS {
        let child = tokio::process::Command::new(&exe)
            .args(["demo", "smd", "--via-proxy", "--proxy", &addr.to_string()])
            .args(["--count", &count.to_string(), "--worker", &k.to_string()])
            .stdout(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start worker {k}: {e}"))?;
        children.push(child);
    }
    let mut ready = 0;
    while ready < WORKERS {
        if field(&recv(&mut events).await?, "ready").is_some() {
            ready += 1;
        }
    }
    println!("multi: {WORKERS} workers ready, go");
    send(&stream, "{\"go\":1}");
    // The coordinator's subscription gets every worker message too: keep reading them, or they
    // pile up at the proxy (the C proxy overflows this link's 32 KiB buffer and drops it).
    let drain = async {
        while events.next().await.is_some() {}
        std::future::pending::<()>().await
    };
    tokio::pin!(drain);
    let mut ok = true;
    for (k, mut child) in children.into_iter().enumerate() {
        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| e.to_string())?,
            () = &mut drain => unreachable!("the drain never completes"),
        };
        println!(
            "multi: worker {k} {}",
            if status.success() { "OK" } else { "FAILED" }
        );
        ok &= status.success();
    }
    Ok(ok)
}

/// A worker: ready, wait for go, send `count` messages, receive everyone's
pub(crate) async fn work(addr: &ProxyAddr, me: u32, count: u32) -> bool {
    match tokio::time::timeout(LIMIT, work_inner(addr, me, count)).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            println!("worker {me}: {e}");
            false
        }
        Err(_) => {
            println!("worker {me}: timed out");
            false
        }
    }
}

async fn work_inner(addr: &ProxyAddr, me: u32, count: u32) -> Result<bool, String> {
    let (_cx, stream, mut events) = open(addr).await?;
    send(&stream, &format!("{{\"ready\":{me}}}"));
    loop {
        if field(&recv(&mut events).await?, "go").is_some() {
            break;
        }
    }
    for n in 0..count {
        send(&stream, &format!("{{\"w\":{me},\"n\":{n}}}"));
    }
    // Next expected number from each worker.
    let mut next = vec![0u32; WORKERS as usize];
    let mut out_of_order = 0;
    while next.iter().any(|&n| n < count) {
        let body = recv(&mut events).await?;
        let (Some(w), Some(n)) = (field(&body, "w"), field(&body, "n")) else {
            continue;
        };
        let Some(slot) = next.get_mut(w as usize) else {
            continue;
        };
        if n != *slot {
            out_of_order += 1;
            println!(
                "worker {me}: from worker {w}: message {n}, expected {}",
                *slot
            );
        }
        *slot = n + 1;
    }
    println!(
        "worker {me}: received {count} messages from each of {WORKERS} workers, {out_of_order} out of order"
    );
    Ok(out_of_order == 0)
}

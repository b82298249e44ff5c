//! `sstreams get`: one stream of a policy, like curl for policies
//!
//! Creates a stream of the streamtype, sets the metadata given with `--meta`, asks to send
//! (which connects), writes every rx payload to stdout and every state to stderr (so does the
//! connection performance JSON of a `"perf": true` streamtype, as `perf: {...}`), and ends at
//! the first final outcome: `QOS_ACK_REMOTE` (exit 0), or `QOS_NACK_REMOTE`,
//! `ALL_RETRIES_FAILED`, `TIMEOUT` (exit 1). Metadata the peer supplies (a response header
//! the policy maps) goes to stderr too, as `metadata NAME=VALUE`. With `--data`, that payload is sent as the
//! request body (with its length announced, as http POST needs). For protocols without a
//! verdict (raw) the run ends when the peer closes.
//!
//! With `--proxy ADDR` the stream runs at that SS proxy (ours or the C one), which has the
//! policy: `--policy` is then not needed. Through a proxy the client does not know the
//! streamtype's protocol: a `DISCONNECTED` without a verdict ends the run with exit 1 (an
//! http transfer cut short, which the C proxy then retries), unless `--raw` says the
//! streamtype is raw, where the peer closing is the normal end (exit 0).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use sstreams::proxy::listen::ProxyAddr;
use sstreams::stream::{ConnState, Flags};
use sstreams::{Context, StreamEvent};

/// Options of `sstreams get`
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// The policy JSON file (not needed with --proxy: the proxy has the policy)
    #[arg(long, required_unless_present = "proxy")]
    policy: Option<PathBuf>,
    /// Run the stream through the SS proxy at this address: @name (abstract), /path
    /// (filesystem socket) or tcp:ADDR:PORT
    #[arg(long, value_name = "ADDR")]
    proxy: Option<ProxyAddr>,
    /// With --proxy: the streamtype is raw (no verdict), so a disconnect is its normal end
    #[arg(long, requires = "proxy")]
    raw: bool,
    /// The streamtype to create
    streamtype: String,
    /// Metadata to set before connecting, as NAME=VALUE (repeatable)
    #[arg(long = "meta", value_name = "NAME=VALUE")]
    meta: Vec<String>,
    /// Payload to send (e.g. an http POST body)
    #[arg(long)]
    data: Option<String>,
    /// Give up after this many seconds
    #[arg(long, default_value_t = 60)]
    timeout_s: u64,
}

pub(crate) fn run(args: GetArgs) -> ExitCode {
    crate::block_on(crate::Threads::Current, get(&args))
}

async fn get(args: &GetArgs) -> Result<bool, String> {
    let mut builder = Context::builder();
    if let Some(policy) = &args.policy {
        builder.policy_json(policy.to_str().ok_or("the policy path is not UTF-8")?);
    }
    if let Some(addr) = &args.proxy {
        builder.proxy(addr.clone());
    }
    let cx = builder.build().map_err(|e| e.to_string())?;
    let (stream, mut events) = cx.open(&args.streamtype).map_err(|e| e.to_string())?;
    for m in &args.meta {
        let (name, value) = m
            .split_once('=')
            .ok_or_else(|| format!("--meta {m:?}: expected NAME=VALUE"))?;
        stream
            .set_metadata(name, value.to_owned())
            .map_err(|e| e.to_string())?;
    }
    match &args.data {
        Some(d) => {
            stream.request_tx_len(d.len() as u64);
            stream.send(d.clone(), Flags::SOM | Flags::EOM);
        }
        None => stream.request_tx(),
    }
    let mut out = std::io::stdout().lock();
    let limit = tokio::time::sleep(Duration::from_secs(args.timeout_s));
    tokio::pin!(limit);
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            () = &mut limit => return Err(format!("no outcome within {} s", args.timeout_s)),
        };
        match event {
            None => return Ok(false),
            Some(StreamEvent::Rx(data, flags)) if flags.contains(Flags::PERF_JSON) => {
                eprintln!(
                    "{}: perf: {}",
                    args.streamtype,
                    String::from_utf8_lossy(&data)
                );
            }
            Some(StreamEvent::Rx(data, _)) => {
                out.write_all(&data).map_err(|e| e.to_string())?;
            }
            Some(StreamEvent::Metadata(name, value)) => {
                eprintln!(
                    "{}: metadata {name}={}",
                    args.streamtype,
                    String::from_utf8_lossy(&value)
                );
            }
            Some(StreamEvent::State(state, ack)) => {
                eprintln!(
                    "{}: {state}{}",
                    args.streamtype,
                    if ack != 0 {
                        format!(" ({ack})")
                    } else {
                        String::new()
                    }
                );
                match state {
                    ConnState::QOS_ACK_REMOTE => break,
                    ConnState::QOS_NACK_REMOTE
                    | ConnState::ALL_RETRIES_FAILED
                    | ConnState::TIMEOUT => {
                        let _ = out.flush();
                        return Ok(false);
                    }
                    // raw has no verdict: the peer closing ends it. Through a proxy the
                    // protocol is unknown: --raw says.
                    ConnState::DISCONNECTED
                        if args.raw
                            || args.proxy.is_none()
                                && !stream.streamtype().protocol().is_http() =>
                    {
                        break;
                    }
                    ConnState::DISCONNECTED if args.proxy.is_some() => {
                        let _ = out.flush();
                        return Err(format!(
                            "{}: disconnected without a verdict (use --raw for a raw streamtype)",
                            args.streamtype
                        ));
                    }
                    _ => {}
                }
            }
            Some(_) => {}
        }
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(true)
}

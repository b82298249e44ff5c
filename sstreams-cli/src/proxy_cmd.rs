//! `sstreams proxy`: the SS proxy daemon
//!
//! Serves secure streams of its policy to clients in other processes (C clients included)
//! over a Unix socket (default: abstract `@proxy.ss.lws`) or TCP, until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sstreams::proxy::listen::{ListenOptions, ProxyAddr, ProxyListener};
use sstreams::proxy::server;
use sstreams::{Context, Policy};

/// Options of `sstreams proxy`
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The policy JSON file (default: the built-in default policy)
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Where to listen: @name (abstract), /path (filesystem socket) or tcp:ADDR:PORT
    #[arg(long, default_value = "@proxy.ss.lws")]
    listen: ProxyAddr,
    /// Permission bits of a filesystem socket, in octal
    #[arg(long, default_value = "600", value_parser = parse_octal)]
    socket_mode: u32,
    /// Numeric group id to give a filesystem socket (use with --socket-mode 660)
    #[arg(long)]
    socket_group: Option<u32>,
    /// Most client links open at once
    #[arg(long, default_value_t = 1024)]
    max_links: usize,
    /// Serve only Unix peers with this uid (repeatable; default: anyone who can connect)
    #[arg(long = "allow-uid", value_name = "UID")]
    allow_uids: Vec<u32>,
}

fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|e| format!("{s:?}: {e}"))
}

pub(crate) fn run(args: ProxyArgs) -> ExitCode {
    crate::block_on(crate::Threads::Workers(None), async {
        proxy(args).await.map(|()| true)
    })
}

async fn proxy(args: ProxyArgs) -> Result<(), String> {
    let mut builder = Context::builder();
    match &args.policy {
        Some(p) => builder.policy(Policy::from_path(p).map_err(|e| e.to_string())?),
        None => builder.policy(Policy::builtin_default()),
    };
    let cx = builder.build().map_err(|e| e.to_string())?;
    let mut options = ListenOptions::default();
    options.mode = args.socket_mode;
    options.group = args.socket_group;
    options.max_links = args.max_links;
    if !args.allow_uids.is_empty() {
        options.allowed_uids = Some(args.allow_uids.clone());
    }
    let listener = ProxyListener::bind(args.listen.clone(), options)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    // Handle the signals before saying we listen: a SIGTERM sent as soon as the line is seen
    // must not kill the process with the default action.
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    eprintln!("sstreams proxy: listening on {}", listener.addr());
    let shutdown = async {
        let (Ok(mut int), Ok(mut term)) = signals else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("sstreams proxy: signal received, shutting down");
    };
    server::serve(cx, listener, shutdown)
        .await
        .map_err(|e| e.to_string())?;
    if let ProxyAddr::Path(p) = &args.listen {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

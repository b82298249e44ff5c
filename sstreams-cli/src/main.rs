//! `sstreams`: the SS proxy daemon, policy tools, demos and benchmarks

use std::future::Future;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod bench_h1;
mod bench_proxy;
mod demo_cmd;
mod demo_multi;
mod get_cmd;
mod policy_cmd;
mod proxy_cmd;

/// Secure Streams for Rust
#[derive(Debug, Parser)]
#[command(name = "sstreams", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check, show or convert a policy
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Run a demo ported from the C minimal examples
    #[command(subcommand)]
    Demo(demo_cmd::DemoCommand),
    /// Run the SS proxy: serve the policy's streams to clients in other processes
    Proxy(proxy_cmd::ProxyArgs),
    /// Run one stream of a policy: payload to stdout, states to stderr (curl for policies)
    Get(get_cmd::GetArgs),
    /// Measure throughput of whole subsystems
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Demo(cmd) => demo_cmd::run(cmd),
        Command::Get(args) => get_cmd::run(args),
        Command::Proxy(args) => proxy_cmd::run(args),
        Command::Bench(cmd) => bench_cmd::run(cmd),
    }
}

/// How a command's tokio runtime runs
#[derive(Debug, Clone, Copy)]
enum Threads {
    /// On the calling thread
    Current,
    /// On worker threads: this many, or tokio's default (one per core) for `None`
    Workers(Option<usize>),
}

/// A tokio runtime with I/O and time
fn runtime(threads: Threads) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Threads::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Threads::Workers(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = n {
                b.worker_threads(n);
            }
            b.enable_all().build()
        }
    }
}

/// Runs a command's work on a new runtime: `Ok(true)` exits 0, `Ok(false)` exits 1 (the work
/// said why), `Err` is printed and exits 1
fn block_on(threads: Threads, work: impl Future<Output = Result<bool, String>>) -> ExitCode {
    let rt = match runtime(threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(work) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `sstreams`: the SS proxy daemon, policy tools, demos and benchmarks

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

//! `sstreams policy …`

use std::process::ExitCode;

use clap::Subcommand;

/// Policy tools
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {}

pub(crate) fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {}
}

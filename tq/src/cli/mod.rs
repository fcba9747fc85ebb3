//! The command line: one subcommand per module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod logging;
mod sled;

/// The rack trust quorum.
#[derive(Debug, Parser)]
#[command(name = "tq", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one sled's daemon: its trust quorum node and HTTP API.
    Sled(sled::SledArgs),
}

impl Cli {
    /// Runs the chosen subcommand; the exit code is the process's.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Sled(args) => sled::run(args),
        }
    }
}

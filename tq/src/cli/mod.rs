//! The command line: one subcommand per module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod chaos;
mod demo;
mod logging;
mod nexus;
mod report;
mod sled;
mod status;

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
    /// Run one sled's daemon: its trust quorum node and HTTP API (`tq sled
    /// init` sets up a new sled's ledger first).
    Sled(sled::SledArgs),
    /// Drive a rack as Nexus does: the LRTQ upgrade, adding and removing
    /// sleds, abandoning a stuck epoch; decisions kept in a state file.
    Nexus(nexus::NexusArgs),
    /// What an operator sees of one sled or the whole rack.
    Status(status::StatusArgs),
    /// An 8-sled LRTQ rack on this machine through upgrade, growth,
    /// removal, crashes and a cold boot, driven by Nexus over HTTP; checked
    /// and summed up (exit code 0 only if every check held).
    Demo(demo::DemoArgs),
    /// A sled's audit log: print it (`show`) or check its hash chain in
    /// both copies (`verify`, exit code 1 naming the first bad record).
    Audit(audit::AuditArgs),
    /// Faults (partitions, loss, pauses, kills, full disks, clock steps)
    /// against a rack of sled processes in network namespaces while Nexus
    /// reconfigures it; checked from the outside (needs root).
    Chaos(chaos::ChaosArgs),
}

impl Cli {
    /// Runs the chosen subcommand; the exit code is the process's.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Sled(args) => sled::run(args),
            Command::Nexus(args) => nexus::run(args),
            Command::Status(args) => status::run(args),
            Command::Demo(args) => demo::run(args),
            Command::Audit(args) => audit::run(args),
            Command::Chaos(args) => chaos::run(args),
        }
    }
}

/// The async runtime did not start (threads, or the I/O driver).
#[derive(Debug, thiserror::Error)]
#[error("cannot start the runtime")]
pub struct RuntimeError(#[source] std::io::Error);

/// The multi-threaded runtime every subcommand but `tq sled init` runs in.
pub fn runtime() -> Result<tokio::runtime::Runtime, RuntimeError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RuntimeError)
}

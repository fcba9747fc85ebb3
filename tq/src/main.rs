//! The `tq` binary: see `tq --help`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// Every freed heap block is zeroed first: a share a library copied into
/// memory of its own and freed does not stay there (see tq-std's crate
/// doc, on zeroization).
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> =
    zeroizing_alloc::ZeroAlloc(std::alloc::System);

fn main() -> ExitCode {
    cli::Cli::parse().run()
}

//! `tq demo`: the project's main job, with no argument needed (see
//! `tq::demo` for the scenario).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tq::demo::layout::Addressing;
use tq::demo::progress::Progress;
use tq::demo::record::Record;
use tq::demo::sleds::Launch;
use tq::demo::{DemoError, MAX_SLEDS, MIN_SLEDS, Options};

use super::report::Report;
use super::{RuntimeError, runtime};

/// `tq demo`'s arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Sleds of the LRTQ rack (two more are added when there is room: a
    /// configuration has at most 32 members).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(MIN_SLEDS as u64..=MAX_SLEDS as u64))]
    pub sleds: u64,
    /// Seed of the LRTQ rack setup (its shares) and of the rack id.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run each sled as its own OS process (`tq sled --config FILE`),
    /// talking to the others and to Nexus only over the network.
    #[arg(long)]
    pub processes: bool,
    /// Keep the temporary directory (ledgers, configurations, logs, Nexus's
    /// state file) afterwards; it is always kept when a check fails.
    #[arg(long)]
    pub keep: bool,
}

/// Why the demo could not run (a check that failed is not one: the
/// summary says which, and the exit code is 1).
#[derive(Debug, thiserror::Error)]
enum DemoCliError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot create {}", .path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the tq binary to run sleds with")]
    Exe(#[source] std::io::Error),
    #[error(transparent)]
    Demo(#[from] DemoError),
}

/// Runs the demo; exit code 0 only if every check held.
pub fn run(args: DemoArgs) -> ExitCode {
    match execute(args) {
        Ok(record) => {
            println!("{}", record.summary());
            if record.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => Report::new("demo", e).exit(),
    }
}

fn execute(args: DemoArgs) -> Result<Record, DemoCliError> {
    let dir = tq::demo::temporary_dir()?;
    // The in-process daemons log through this process, to a file the
    // summary names: the terminal shows the progress (TQ_LOG sets the
    // filter).
    let path = dir.path().join(tq::demo::LOG_FILE);
    let file = std::fs::File::create(&path).map_err(|source| DemoCliError::Log { path, source })?;
    super::logging::init_to_file("info", file);
    let launch = if args.processes {
        Launch::Processes {
            exe: std::env::current_exe().map_err(DemoCliError::Exe)?,
            wrappers: Vec::new(),
        }
    } else {
        Launch::InProcess
    };
    let options = Options {
        sleds: usize::try_from(args.sleds).unwrap_or(usize::MAX),
        seed: args.seed,
        launch,
        addressing: Addressing::Loopback,
        keep: args.keep,
    };
    Ok(runtime()?.block_on(tq::demo::run_in(dir, options, Progress::new()))?)
}

//! `tq demo`: the project's main job, with no argument needed (see
//! `tq::demo` for the scenario).

use std::process::ExitCode;

use clap::Args;
use tq::demo::layout::Addressing;
use tq::demo::progress::Progress;
use tq::demo::sleds::Launch;
use tq::demo::{MAX_SLEDS, MIN_SLEDS, Options};

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

/// Runs the demo; exit code 0 only if every check held.
pub fn run(args: DemoArgs) -> ExitCode {
    let dir = match tq::demo::temporary_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("tq demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The in-process daemons log through this process, to a file the
    // summary names: the terminal shows the progress (TQ_LOG sets the
    // filter).
    let log = dir.path().join(tq::demo::LOG_FILE);
    match std::fs::File::create(&log) {
        Ok(file) => super::logging::init_to_file("info", file),
        Err(e) => {
            eprintln!("tq demo: cannot create {}: {e}", log.display());
            return ExitCode::FAILURE;
        }
    }
    let launch = if args.processes {
        match std::env::current_exe() {
            Ok(exe) => Launch::Processes {
                exe,
                wrappers: Vec::new(),
            },
            Err(e) => {
                eprintln!("tq demo: cannot find the tq binary to run sleds with: {e}");
                return ExitCode::FAILURE;
            }
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
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| runtime.block_on(tq::demo::run_in(dir, options, Progress::new())));
    match outcome {
        Ok(record) => {
            println!("{}", record.summary());
            if record.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("tq demo: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `tq sled --config FILE` and `tq sled init --config FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tq::config::SledConfig;
use tq::sled::DaemonError;

/// The sled daemon's arguments.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SledArgs {
    /// The configuration file (TOML; see `tq/examples/sled.toml`).
    #[arg(long, short, value_name = "FILE", required = true)]
    pub config: Option<PathBuf>,
    /// Instead of running the daemon.
    #[command(subcommand)]
    pub command: Option<SledCommand>,
}

/// What `tq sled` does instead of running.
#[derive(Debug, Subcommand)]
pub enum SledCommand {
    /// Set up a new sled's ledger: create its two directories (mode 0700)
    /// and mark both copies initialized. Once, before the first start; a
    /// sled whose ledger is absent refuses to start, since that is also
    /// what an unmounted drive looks like.
    Init {
        /// The configuration file.
        #[arg(long, short, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Runs the daemon until SIGTERM or Ctrl-C (or initializes the ledger).
/// Exit code 0 after a clean shutdown, 1 with one line on stderr for any
/// failure.
pub fn run(args: SledArgs) -> ExitCode {
    // Before any key or share is read.
    if let Err(e) = tq::hardening::forbid_core_dumps() {
        eprintln!("tq sled: process hardening: {e}");
        return ExitCode::FAILURE;
    }
    super::logging::init();
    tracing::info!(
        dumpable = tq::hardening::is_dumpable(),
        "core dumps off (RLIMIT_CORE 0)"
    );
    let outcome = match (&args.command, &args.config) {
        (Some(SledCommand::Init { config }), _) => init(config),
        (None, Some(config)) => serve(config),
        // clap requires one or the other.
        (None, None) => Err("--config FILE is required".to_owned()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tq sled: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init(path: &Path) -> Result<(), String> {
    let config = SledConfig::load(path).map_err(|e| DaemonError::Config(e).to_string())?;
    tq::sled::init(&config).map_err(|e| e.to_string())?;
    let dirs: Vec<String> = config
        .ledger
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    println!("ledger initialized in {}", dirs.join(" and "));
    Ok(())
}

fn serve(path: &Path) -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            runtime
                .block_on(async {
                    let config = SledConfig::load(path).map_err(DaemonError::Config)?;
                    tq::sled::run(&config).await
                })
                .map_err(|e| e.to_string())
        })
}

//! `tq sled --config FILE` and `tq sled init --config FILE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tq::config::SledConfig;
use tq::hardening::HardeningError;
use tq::sled::DaemonError;

use super::report::Report;
use super::{RuntimeError, runtime};

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

/// Why `tq sled` (or `tq sled init`) failed.
#[derive(Debug, thiserror::Error)]
enum SledCliError {
    /// Core dumps could not be turned off: no key is read then.
    #[error("process hardening")]
    Hardening(#[source] HardeningError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// clap requires one of them; here for completeness.
    #[error("--config FILE is required")]
    NoConfig,
}

/// Runs the daemon until SIGTERM or Ctrl-C (or initializes the ledger).
/// Exit code 0 after a clean shutdown, 1 with one line on stderr for any
/// failure ([`Report`]).
pub fn run(args: SledArgs) -> ExitCode {
    // Before any key or share is read.
    if let Err(e) = tq::hardening::forbid_core_dumps() {
        return Report::new("sled", SledCliError::Hardening(e)).exit();
    }
    super::logging::init();
    tracing::info!(
        dumpable = tq::hardening::is_dumpable(),
        "core dumps off (RLIMIT_CORE 0)"
    );
    let outcome = match (&args.command, &args.config) {
        (Some(SledCommand::Init { config }), _) => init(config),
        (None, Some(config)) => serve(config),
        (None, None) => Err(SledCliError::NoConfig),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => Report::new("sled", e).exit(),
    }
}

fn init(path: &Path) -> Result<(), SledCliError> {
    let config = SledConfig::load(path).map_err(DaemonError::Config)?;
    tq::sled::init(&config)?;
    let dirs: Vec<String> = config
        .ledger
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    println!("ledger initialized in {}", dirs.join(" and "));
    Ok(())
}

fn serve(path: &Path) -> Result<(), SledCliError> {
    runtime()?.block_on(async {
        let config = SledConfig::load(path).map_err(DaemonError::Config)?;
        Ok(tq::sled::run(path, &config).await?)
    })
}

//! `tq sled --config FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tq::config::SledConfig;
use tq::sled::DaemonError;

/// The sled daemon's arguments.
#[derive(Debug, Args)]
pub struct SledArgs {
    /// The configuration file (TOML; see `tq/examples/sled.toml`).
    #[arg(long, short, value_name = "FILE")]
    pub config: PathBuf,
}

/// Runs the daemon until SIGTERM or Ctrl-C. Exit code 0 after a clean
/// shutdown, 1 with one line on stderr for any failure.
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
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| {
            runtime
                .block_on(async {
                    let config = SledConfig::load(&args.config).map_err(DaemonError::Config)?;
                    tq::sled::run(&config).await
                })
                .map_err(|e| e.to_string())
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tq sled: {e}");
            ExitCode::FAILURE
        }
    }
}

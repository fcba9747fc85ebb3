//! `tq chaos`: faults and churn against a rack of sled processes (see
//! `tq::chaos`).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tq::chaos::{ChaosError, Options};

use super::report::Report;
use super::{RuntimeError, runtime};

/// `tq chaos`'s arguments.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Minutes of faults (then heal, settle, check).
    #[arg(long, default_value_t = 2.0)]
    pub minutes: f64,
    /// Seed of the faults and of Nexus's choices: the same seed replays
    /// the same schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sleds of the LRTQ rack.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(4..=16))]
    pub sleds: u64,
    /// Spare sleds Nexus adds during the run.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=8))]
    pub spares: u64,
    /// Replacement sleds made ready per slot: once Nexus removed a slot's
    /// sled, a new one (new platform id and certificate, a fresh ledger
    /// from `tq sled init`) may be slid into its place and added; Nexus's
    /// removals are spread over the run so that they last. Default: as
    /// many as Nexus can ever know (128 sleds over a rack's life, the
    /// first ones included).
    #[arg(long)]
    pub replacements: Option<u64>,
    /// Keep the temporary directory (ledgers, sled logs, the fault log);
    /// always kept when a check fails.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, thiserror::Error)]
enum ChaosCliError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("cannot find the tq binary to run sleds with")]
    Exe(#[source] std::io::Error),
    #[error("--minutes must be a positive number of minutes")]
    Minutes,
    #[error("--replacements: at most {0} per slot (Nexus knows at most {max} sleds over a rack's life)", max = tq_nexus::MAX_KNOWN_SLEDS)]
    Replacements(usize),
    #[error(transparent)]
    Chaos(#[from] ChaosError),
    #[error("interrupted: everything it made was removed")]
    Interrupted,
}

/// Runs it; exit code 0 only if every check held.
pub fn run(args: ChaosArgs) -> ExitCode {
    match execute(args) {
        Ok(summary) => {
            println!("{summary}");
            if summary.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => Report::new("chaos", e).exit(),
    }
}

fn execute(args: ChaosArgs) -> Result<tq::chaos::report::Summary, ChaosCliError> {
    let duration = Duration::try_from_secs_f64(args.minutes * 60.0)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or(ChaosCliError::Minutes)?;
    let lrtq = usize::try_from(args.sleds).unwrap_or(5);
    let spares = usize::try_from(args.spares).unwrap_or(0);
    let slots = (lrtq + spares).max(1);
    let most = tq_nexus::MAX_KNOWN_SLEDS.saturating_sub(slots) / slots;
    let replacements = match args.replacements {
        None => most,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|&n| n <= most)
            .ok_or(ChaosCliError::Replacements(most))?,
    };
    let options = Options {
        exe: std::env::current_exe().map_err(ChaosCliError::Exe)?,
        lrtq,
        spares,
        replacements,
        seed: args.seed,
        duration,
        plant_stale_ledger: false,
        plant_altered_audit: false,
        keep: args.keep,
    };
    runtime()?.block_on(async {
        // Dropping the run removes its namespaces, mounts, processes and
        // directory: an interrupted run leaves nothing behind.
        tokio::select! {
            summary = tq::chaos::run(options) => Ok(summary?),
            () = interrupted() => Err(ChaosCliError::Interrupted),
        }
    })
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

//! `tq nexus`: Nexus's side of the trust quorum from the command line. The
//! Nexus driver (`tq-driver`) drives the sleds of a rack file over their
//! HTTP APIs; its decisions live in a state file, so every command picks
//! up where the last one (or a crashed one) stopped.
//!
//! ```text
//! tq nexus --rack rack.toml --state nexus.json init            # an LRTQ rack: every sled of the file
//! tq nexus --rack rack.toml --state nexus.json sled-key --sled 913-0000019:SN0003 --out request.key
//! tq nexus --rack rack.toml --state nexus.json upgrade         # the LRTQ upgrade, driven to its end
//! tq nexus --rack rack.toml --state nexus.json add SN0009 SN0010
//! tq nexus --rack rack.toml --state nexus.json remove SN0002
//! tq nexus --rack rack.toml --state nexus.json run             # drive what is pending to its end
//! tq nexus --rack rack.toml --state nexus.json abandon         # give up the pending epoch, retry higher
//! tq nexus --rack rack.toml --state nexus.json show [--json]
//! ```
//!
//! Every command but `show` holds the state file's lock while it runs: a
//! second one at the same time is refused in one line, so two can never
//! issue conflicting configurations for one epoch.
//!
//! Nexus's authority key lives beside the state file
//! (`<state>.authority-key`, or `--authority-key FILE`), mode 0600: `init`
//! makes it (or keeps the one rack setup made), `sled-key` writes a sled's
//! request key from it for the sled's `[authority] key_file`, and every
//! call to a sled is authenticated with it (refused if the file is open
//! to other users).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tq::https::{RackCa, RackCaError};
use tq::nexus::http::{ClientError, HttpSled};
use tq::nexus::rack_file::{RackFile, RackFileError};
use tq::nexus::{AuthorityKeyError, MajorityError, StateFileError};
use tq_core::ids::{PlatformId, Threshold, ThresholdOutOfRange};
use tq_driver::{Directory as _, Driver, DriverConfig, DriverError, SledMap, StateFile};
use tq_nexus::{Nexus, Origin, Timing};
use tq_rack_setup::keys::KeyFileError;

use super::report::Report;
use super::{RuntimeError, runtime};

/// `tq nexus`'s arguments.
#[derive(Debug, Args)]
pub struct NexusArgs {
    /// The rack file: the rack id, the rack CA, each sled's platform id and
    /// API address.
    #[arg(long, value_name = "FILE")]
    pub rack: PathBuf,
    /// Nexus's state file (written atomically at every decision).
    #[arg(long, value_name = "FILE")]
    pub state: PathBuf,
    /// Nexus's authority key (default: beside the state file,
    /// `<state>.authority-key`).
    #[arg(long, value_name = "FILE")]
    pub authority_key: Option<PathBuf>,
    /// How long a command may drive before giving up, in seconds (what it
    /// decided stays in the state file; `run` goes on from there).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
    /// How long one call on a sled may take, in seconds (a proxy is given
    /// four fifths of it, at most 60).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub call_timeout: u64,
    /// Abandon a pending epoch whose coordinator made no progress for this
    /// many seconds (0: only when told, with `abandon`).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub abandon_after: u64,
    /// Milliseconds between two polls of a running coordinator.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub poll_ms: u64,
    /// Milliseconds before calling a sled again that was unreachable or not
    /// ready, or telling a member of a commit again.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub retry_ms: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: NexusCommand,
}

/// The things Nexus does.
#[derive(Debug, Subcommand)]
pub enum NexusCommand {
    /// Create the state file for the rack file's sleds (or those named).
    Init {
        /// The sleds are new (no LRTQ data): the first configuration makes
        /// the first secret. Without it, they hold LRTQ shares and the first
        /// configuration is the LRTQ upgrade.
        #[arg(long)]
        fresh: bool,
        /// The rack's sleds (default: every sled of the rack file).
        #[arg(long, value_delimiter = ',', value_name = "SLED,...")]
        sleds: Vec<String>,
    },
    /// Write a sled's request key (derived from Nexus's authority key), to
    /// provision as its `[authority] key_file`.
    SledKey {
        /// The sled, `part:serial` (or a serial no other sled has).
        #[arg(long, value_name = "SLED")]
        sled: String,
        /// The file to write (mode 0600; refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Upgrade the LRTQ rack (its sleds, or those named) and drive it to
    /// its end.
    Upgrade(ChangeArgs),
    /// Add sleds to the current members and drive it to its end.
    Add(ChangeArgs),
    /// Remove sleds from the current members and drive it to its end.
    Remove(ChangeArgs),
    /// Drive what is pending to its end: poll the coordinator, commit at
    /// K + Z acks, tell every member.
    Run,
    /// Abandon the pending epoch and start the same change at a higher
    /// epoch with another coordinator, then drive it.
    Abandon {
        /// The new coordinator (default: the next member that may
        /// coordinate and that Nexus reaches directly, in the order of
        /// automatic abandonment).
        #[arg(long, value_name = "SLED")]
        coordinator: Option<String>,
    },
    /// What Nexus decided: members, epochs, who acked and confirmed.
    Show {
        /// As JSON (the state file's own form).
        #[arg(long)]
        json: bool,
    },
}

/// A membership change.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// The sleds (for `upgrade`: the members, default every LRTQ sled).
    #[arg(value_name = "SLED")]
    pub sleds: Vec<String>,
    /// The new threshold K (default: a majority, n/2 + 1).
    #[arg(long)]
    pub threshold: Option<u8>,
    /// The coordinator (default: the first member able to coordinate that
    /// Nexus reaches).
    #[arg(long, value_name = "SLED")]
    pub coordinator: Option<String>,
    /// Start it and return, without driving it.
    #[arg(long)]
    pub no_wait: bool,
}

/// Why a `tq nexus` command failed.
#[derive(Debug, thiserror::Error)]
enum NexusCliError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    RackFile(#[from] RackFileError),
    #[error(transparent)]
    RackCa(#[from] RackCaError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    StateFile(#[from] StateFileError),
    #[error(transparent)]
    AuthorityKey(#[from] AuthorityKeyError),
    #[error("sled key {}", .0.display())]
    SledKey(PathBuf, #[source] KeyFileError),
    #[error(transparent)]
    Threshold(#[from] ThresholdOutOfRange),
    #[error(transparent)]
    Majority(#[from] MajorityError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("the rack is not on LRTQ: it was upgraded already")]
    NotOnLrtq,
    #[error("{0} is a member already")]
    AlreadyMember(PlatformId),
    #[error("{0} is not a member")]
    NotMember(PlatformId),
    #[error("no member can coordinate: name one with --coordinator")]
    NoCoordinator,
    #[error("nothing is pending")]
    NothingPending,
    #[error(
        "no member that may coordinate is reached directly (a coordinator is never called through a proxy)"
    )]
    NoReachableCoordinator,
    /// The command did its part, but sleds refused calls (logged above).
    #[error("{0} calls were refused by sleds (see above)")]
    Refused(u64),
}

/// Runs the command; exit code 0 on success, 1 with one line on stderr
/// ([`Report`]).
pub fn run(args: NexusArgs) -> ExitCode {
    super::logging::init_with_default("warn");
    let outcome = runtime()
        .map_err(NexusCliError::from)
        .and_then(|runtime| runtime.block_on(execute(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => Report::new("nexus", e).exit(),
    }
}

type HttpDriver = Driver<SledMap<HttpSled>>;

async fn execute(args: NexusArgs) -> Result<(), NexusCliError> {
    let rack = RackFile::load(&args.rack)?;
    let config = DriverConfig {
        timing: Timing {
            poll_interval: Duration::from_millis(args.poll_ms),
            retry_interval: Duration::from_millis(args.retry_ms),
            abandon_after: (args.abandon_after > 0)
                .then(|| Duration::from_secs(args.abandon_after)),
        },
        call_timeout: Duration::from_secs(args.call_timeout.max(1)),
    };
    let rack_ca = RackCa::load(&rack.rack_ca)?;
    let directory = tq::nexus::directory(&rack, &rack_ca, config.call_timeout)?;
    let file = StateFile::new(&args.state);
    let limit = Duration::from_secs(args.timeout);
    let key_path = args
        .authority_key
        .clone()
        .unwrap_or_else(|| tq::nexus::authority_key_path(&args.state));
    if let NexusCommand::Init { fresh, sleds } = &args.command {
        let ids = named(&rack, sleds)?;
        let ids = if ids.is_empty() { rack.ids() } else { ids };
        let origin = if *fresh { Origin::Fresh } else { Origin::Lrtq };
        // The key is made under the state file's lock and only for a new
        // state, so a refused init leaves nothing new behind.
        let lock = file.lock().await.map_err(DriverError::Store)?;
        if file.path().exists() {
            return Err(DriverError::StateExists(file.path().to_owned()).into());
        }
        let (key, made) = tq::nexus::make_authority_key(&key_path)?;
        drop(lock);
        Driver::create(file, directory, key, config, rack.rack_id, origin, &ids).await?;
        println!(
            "{}: {} sleds of rack {}, {}; authority key {} ({})",
            args.state.display(),
            ids.len(),
            rack.rack_id,
            if *fresh { "fresh" } else { "on LRTQ" },
            key_path.display(),
            if made { "made" } else { "kept" }
        );
        return Ok(());
    }
    if let NexusCommand::SledKey { sled, out } = &args.command {
        let id = rack.find(sled)?.id.clone();
        let authority = tq::nexus::read_authority_key(&key_path)?;
        let failed = |e| NexusCliError::SledKey(out.clone(), e);
        let key = tq_rack_setup::keys::sled_key(&authority, rack.rack_id, &id).map_err(failed)?;
        tq_rack_setup::keys::write_sled_key(out, &key).map_err(failed)?;
        println!(
            "{}: the request key of {id} (rack {})",
            out.display(),
            rack.rack_id
        );
        return Ok(());
    }
    if let NexusCommand::Show { json } = &args.command {
        // Only reads: no lock, so it works while another command drives.
        let nexus = tq::nexus::read_state(&args.state, config.timing)?;
        return Ok(show(&nexus, *json)?);
    }
    // From here on this process is the state file's one writer (the
    // driver's lock) until it exits.
    let key = tq::nexus::read_authority_key(&key_path)?;
    let mut driver = Driver::resume(file, directory, key, config).await?;
    driver.observe(|event| eprintln!("{event}"));
    let wait = match &args.command {
        NexusCommand::Init { .. } | NexusCommand::Show { .. } | NexusCommand::SledKey { .. } => {
            false
        }
        NexusCommand::Run => true,
        NexusCommand::Abandon { coordinator } => {
            let coordinator = match coordinator {
                Some(name) => rack.find(name)?.id.clone(),
                None => next_coordinator(&driver)?,
            };
            driver.abandon(&coordinator).await?;
            true
        }
        NexusCommand::Upgrade(change) => {
            if !driver.nexus().is_on_lrtq() {
                return Err(NexusCliError::NotOnLrtq);
            }
            let members = named(&rack, &change.sleds)?;
            let members = if members.is_empty() {
                driver.nexus().members().iter().cloned().collect()
            } else {
                members
            };
            start(&mut driver, &rack, members, change).await?;
            !change.no_wait
        }
        NexusCommand::Add(change) => {
            let mut members: Vec<PlatformId> = driver.nexus().members().iter().cloned().collect();
            for id in named(&rack, &change.sleds)? {
                if members.contains(&id) {
                    return Err(NexusCliError::AlreadyMember(id));
                }
                members.push(id);
            }
            start(&mut driver, &rack, members, change).await?;
            !change.no_wait
        }
        NexusCommand::Remove(change) => {
            let gone = named(&rack, &change.sleds)?;
            if let Some(id) = gone
                .iter()
                .find(|id| !driver.nexus().members().contains(id))
            {
                return Err(NexusCliError::NotMember(id.clone()));
            }
            let members = driver
                .nexus()
                .members()
                .iter()
                .filter(|id| !gone.contains(id))
                .cloned()
                .collect();
            start(&mut driver, &rack, members, change).await?;
            !change.no_wait
        }
    };
    if wait {
        driver.settle(limit).await?;
        if let Some(latest) = driver.nexus().latest_committed() {
            println!(
                "epoch {} committed; {} members confirmed",
                latest.epoch(),
                latest.confirmed().len()
            );
        }
    }
    let refused = driver.stats().refused;
    if refused > 0 {
        return Err(NexusCliError::Refused(refused));
    }
    Ok(())
}

/// The sleds named.
fn named(rack: &RackFile, names: &[String]) -> Result<Vec<PlatformId>, RackFileError> {
    names
        .iter()
        .map(|name| rack.find(name).map(|s| s.id.clone()))
        .collect()
}

async fn start(
    driver: &mut HttpDriver,
    rack: &RackFile,
    members: Vec<PlatformId>,
    change: &ChangeArgs,
) -> Result<(), NexusCliError> {
    let threshold = match change.threshold {
        Some(k) => Threshold::new(k)?,
        None => tq::nexus::majority(members.len())?,
    };
    let coordinator = match &change.coordinator {
        Some(name) => rack.find(name)?.id.clone(),
        None => members
            .iter()
            .find(|id| {
                driver.nexus().may_coordinate(id)
                    && rack.sleds.iter().any(|s| &s.id == *id && s.api.is_some())
            })
            .cloned()
            .ok_or(NexusCliError::NoCoordinator)?,
    };
    driver.start(&members, threshold, &coordinator).await?;
    Ok(())
}

/// The coordinator the machine's automatic abandonment would pick: the
/// next member that may coordinate and that Nexus reaches directly (a
/// coordinator is never called through a proxy).
fn next_coordinator(driver: &HttpDriver) -> Result<PlatformId, NexusCliError> {
    let nexus = driver.nexus();
    if nexus.pending().is_none() {
        return Err(NexusCliError::NothingPending);
    }
    nexus
        .next_coordinator(|id| driver.directory().direct(id).is_some())
        .cloned()
        .ok_or(NexusCliError::NoReachableCoordinator)
}

/// What Nexus decided, as a table or the state file's JSON.
fn show(nexus: &Nexus, json: bool) -> Result<(), serde_json::Error> {
    if json {
        let text = serde_json::to_string_pretty(nexus.state())?;
        println!("{text}");
        return Ok(());
    }
    println!("{}", super::status::nexus_view(nexus));
    Ok(())
}

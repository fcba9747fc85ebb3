//! The key manager: each configured disk's data key, stored only wrapped
//! under the rack secret, re-wrapped on every commit, handed to the disk's
//! backend at start.
//!
//! # What it keeps
//!
//! Each disk ([`DiskSpec`]: a name, a serial, a [`Backend`]) has a random
//! 32-byte data key, made the first time the disk is seen and never
//! changed, so what it encrypts never needs re-encrypting. The key is
//! stored only as a [`wrap::Wrapping`]: ChaCha20-Poly1305 under the disk
//! key of one committed epoch (HKDF-SHA3-256 of that epoch's rack secret,
//! [`crate::secrets`], purpose = the serial), with the rack, epoch and
//! serial in the associated data. The wrappings are in a small file per
//! disk in each ledger directory ([`keyfile`]), both copies written
//! atomically, so the key files live and die with the ledger's drives.
//!
//! # Rules it keeps
//!
//! - **Nothing unwrapped is ever written.** The data key exists in the
//!   clear only in memory ([`wrap::DataKey`], zeroized on drop), for as
//!   long as an unlock or a re-wrap takes; it is handed to a backend and
//!   dropped. No log line, status, metric or error carries it.
//! - **Every disk stays openable across a crash at any instruction.** A
//!   re-wrap under a newly committed epoch writes the file with both the
//!   old and the new wrapping to every copy, and only then the file with
//!   the new one alone; each write replaces a copy atomically. Reading
//!   takes the wrappings of every valid copy, newest epoch first, each
//!   opened with its own epoch's secret: the latest committed one, or an
//!   older one the node still retains (every configuration carries the
//!   retained older secrets, `tq_core::limits::MAX_RETAINED_SECRETS`).
//!   So a sled that missed commits, or died mid-re-wrap, opens its disks
//!   and catches up at once.
//! - **A new key only where there never was one.** A disk gets a new key
//!   only when no copy of its file exists at all; a copy that exists but
//!   is corrupt or unreadable stops the disk (`failed`) rather than orphan
//!   the old key. The new key is wrapped and on disk before any backend
//!   sees it.
//! - **An expunged sled forgets its keys**: it removes every disk's key
//!   files, locks every backend and never tries again.
//! - **Unlocking waits for the rack**: at start, each round loads the
//!   latest secret (waiting for shares), opens and re-wraps every disk's
//!   key and hands it to the backend; a round that fails is retried with
//!   backoff until [`DisksConfig::unlock_deadline`], then what is still
//!   locked is `failed` with the reason, until a later commit (or a
//!   restart) tries again. Each commit runs the same rounds: every disk
//!   ends wrapped under the latest epoch.
//! - **Every refusal is counted** ([`board::DiskStats`]): wrappings that
//!   do not open, bad copies, failed attempts and re-wraps.
//!
//! Status and counters are on the node handle's [`board::DiskBoard`], so
//! they are in the sled's status and metrics.
//!
//! # What it does not do (yet)
//!
//! A sled of an LRTQ rack that has not been upgraded has no committed
//! epoch, and the core loads the LRTQ secret only for the upgrade's
//! coordinator: its disks stay `unlocking` (and then `failed`, "nothing
//! committed") until the upgrade commits, and unlock then. Unlocking from
//! the LRTQ secret as epoch 1 needs the core to collect LRTQ shares for a
//! secret load, as it does for the upgrade.
//!
//! # Modules
//!
//! - [`wrap`]: the data key and its wrapping.
//! - [`keyfile`]: the key files' layout and their mirrored copies.
//! - [`backend`]: `fscrypt` and `command`.
//! - [`board`]: each disk's state and counters.

pub mod backend;
pub mod board;
pub mod keyfile;
mod manager;
pub mod wrap;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio::task::JoinHandle;
use tq_atomic_file::lock::LockError;

pub use backend::{Backend, KeyFormat};
pub use board::{DiskBoard, DiskReport, DiskState, DiskStats};

use crate::backoff::BackoffConfig;
use crate::handle::NodeHandle;
use crate::ledger::LEDGER_COPIES;
use crate::secrets::MAX_PURPOSE_LEN;

/// Most disks one sled's key manager handles (metric series are bounded
/// by it).
pub const MAX_DISKS: usize = 32;

/// Most bytes of a disk's name: `[A-Za-z0-9_-]`, it names its key files.
pub const MAX_NAME_LEN: usize = 32;

/// How long start waits for the disks to unlock, by default: long enough
/// for a cold-booting rack to come up sled by sled.
pub const DEFAULT_UNLOCK_DEADLINE: Duration = Duration::from_secs(600);

/// How often the manager asks the node whether it was expunged, by
/// default.
pub const DEFAULT_EXPUNGE_CHECK: Duration = Duration::from_secs(5);

/// One disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    /// Its name: 1 to [`MAX_NAME_LEN`] of `[A-Za-z0-9_-]`, unique.
    pub name: String,
    /// Its serial: 1 to [`MAX_PURPOSE_LEN`] printable ASCII bytes, unique;
    /// the purpose its wrapping keys are derived for.
    pub serial: String,
    /// What its key opens.
    pub backend: Backend,
}

/// The key manager's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisksConfig {
    /// The disks.
    pub disks: Vec<DiskSpec>,
    /// Where the key files are: the ledger's directories.
    pub key_dirs: [PathBuf; LEDGER_COPIES],
    /// How long rounds are retried before what is still locked is
    /// `failed`.
    pub unlock_deadline: Duration,
    /// The backoff between rounds.
    pub retry: BackoffConfig,
    /// How often the node is asked whether it was expunged.
    pub expunge_check: Duration,
}

impl DisksConfig {
    /// These disks with their files in `key_dirs`, default timings.
    pub fn new(disks: Vec<DiskSpec>, key_dirs: [PathBuf; LEDGER_COPIES]) -> Self {
        Self {
            disks,
            key_dirs,
            unlock_deadline: DEFAULT_UNLOCK_DEADLINE,
            retry: BackoffConfig::default(),
            expunge_check: DEFAULT_EXPUNGE_CHECK,
        }
    }

    /// Checks every bound and that names and serials are unique.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.disks.len() > MAX_DISKS {
            return Err(ConfigError::TooMany(self.disks.len()));
        }
        let mut names = BTreeSet::new();
        let mut serials = BTreeSet::new();
        for disk in &self.disks {
            let name_ok = (1..=MAX_NAME_LEN).contains(&disk.name.len())
                && disk
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(ConfigError::Name(disk.name.clone()));
            }
            let serial_ok = (1..=MAX_PURPOSE_LEN).contains(&disk.serial.len())
                && disk
                    .serial
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b == b' ');
            if !serial_ok {
                return Err(ConfigError::Serial(disk.serial.clone()));
            }
            if !names.insert(disk.name.as_str()) {
                return Err(ConfigError::DuplicateName(disk.name.clone()));
            }
            if !serials.insert(disk.serial.as_str()) {
                return Err(ConfigError::DuplicateSerial(disk.serial.clone()));
            }
            if let Backend::Command { unlock, lock, .. } = &disk.backend
                && (unlock.is_empty() || lock.as_ref().is_some_and(Vec::is_empty))
            {
                return Err(ConfigError::EmptyCommand(disk.name.clone()));
            }
        }
        Ok(())
    }
}

/// What is wrong with the disks' configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// More than [`MAX_DISKS`].
    TooMany(usize),
    /// A name out of bounds or with another character.
    Name(String),
    /// A serial out of bounds or not printable ASCII.
    Serial(String),
    /// A name given twice.
    DuplicateName(String),
    /// A serial given twice.
    DuplicateSerial(String),
    /// A `command` backend with an empty command.
    EmptyCommand(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany(n) => write!(f, "{n} disks, more than {MAX_DISKS}"),
            Self::Name(name) => write!(
                f,
                "disk name {name:?}: 1 to {MAX_NAME_LEN} of A-Z, a-z, 0-9, '-', '_'"
            ),
            Self::Serial(serial) => write!(
                f,
                "disk serial {serial:?}: 1 to {MAX_PURPOSE_LEN} printable ASCII bytes"
            ),
            Self::DuplicateName(name) => write!(f, "disk name {name:?} is given twice"),
            Self::DuplicateSerial(serial) => write!(f, "disk serial {serial:?} is given twice"),
            Self::EmptyCommand(name) => write!(f, "disk {name:?}: an empty command"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why the key manager did not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration.
    Config(ConfigError),
    /// A disk's key files are held by another process.
    Locked(String, LockError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Locked(disk, e) => write!(f, "disk {disk:?}: key file {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A running key manager (its status is on the node handle's
/// [`DiskBoard`]).
pub struct Disks {
    task: JoinHandle<()>,
}

impl Disks {
    /// Stops the manager wherever it is (a key file write in progress
    /// finishes on the blocking pool; each is atomic anyway).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Checks `config`, locks every disk's key files and starts the manager
/// on `handle`'s node. Must be called within a tokio runtime.
pub fn start(handle: &NodeHandle, config: DisksConfig) -> Result<Disks, StartError> {
    config.validate().map_err(StartError::Config)?;
    let files = config
        .disks
        .iter()
        .map(|disk| {
            keyfile::KeyFiles::open(&config.key_dirs, &disk.name)
                .map_err(|e| StartError::Locked(disk.name.clone(), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let board = handle.disks().clone();
    let manager = manager::Manager::new(handle.clone(), config, files, board);
    let span = tracing::info_span!("disks", sled = %handle.id());
    let task = tokio::spawn(tracing::Instrument::instrument(manager.run(), span));
    Ok(Disks { task })
}

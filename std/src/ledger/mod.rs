//! The durable ledger: the node's persistent state in two mirrored files, as
//! on a sled's two M.2 drives.
//!
//! Each copy is a checksummed header and the core's encoding of its
//! persistent state ([`mod@format`]), replaced atomically on every write
//! ([`replace_atomically`]). The payload is opaque here; the node layer
//! encodes and decodes it with the core.
//!
//! - **Init** ([`init`], `tq sled init`) is the only way a sled starts
//!   fresh: it creates each copy's directory (mode 0700; its parent, the
//!   drive, must exist) and writes generation 0 with no payload to *both*
//!   copies, the mark that this sled was set up and has stored nothing yet.
//!   It refuses if either copy exists.
//! - **Open** ([`Ledger::open`]) reads both copies, loads the one with the
//!   highest generation whose checksum holds, and rewrites every other
//!   copy (absent, truncated, corrupted, unreadable or stale) from it
//!   before returning. So one valid copy, even generation 0, is a degraded
//!   mirror to repair, never a fresh sled. No copy on either drive (absent
//!   files, missing directories: an unmounted drive looks like this) is
//!   [`OpenError::NotInitialized`]; no valid copy otherwise is
//!   [`OpenError::NoValidCopy`]. Neither starts the sled.
//! - **Write** gives the state the next generation (never reused, even when
//!   the write fails; never 0) and replaces both copies, at once when
//!   they are on two drives (see `mirror`): a write then waits for
//!   the slower drive, not for the two in turn. Each copy is replaced
//!   atomically and open takes the highest valid generation, so a crash
//!   during the two leaves one state or the other, never a mix. Both
//!   written is [`WriteOutcome::Both`]; one is [`WriteOutcome::Degraded`]
//!   (counted, the state is durable); none is [`WriteError::NoCopy`]: the
//!   caller must not acknowledge anything to the core.
//!   [`Ledger::write_retrying`] keeps trying with backoff until a copy is
//!   written, showing [`LedgerStatus::Failing`] meanwhile.
//!
//! One process owns a ledger: open and init take an exclusive lock
//! ([`lock`]) in each copy's directory, held as long as the [`Ledger`] (or
//! a write it started) lives; a second one gets [`OpenError::Locked`]
//! before touching any file. Files and directories are the process user's
//! alone ([`access`]): copies and temporary files mode 0600, directories
//! 0700, temporary files created exclusively and never through a link. A
//! copy or directory found wider, owned by another user or a symbolic
//! link (a copy) is [`OpenError::Unsafe`].
//!
//! File work runs on tokio's blocking pool, one operation at a time (a
//! mutex held on the blocking thread, so a dropped future cannot let two
//! writes interleave). Payloads hold key shares: every buffer is zeroized
//! when dropped.

pub mod access;
mod file;
pub mod format;
pub use tq_atomic_file::lock;
pub mod lrtq;

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use zeroize::Zeroizing;

use crate::backoff::{Backoff, BackoffConfig};
use access::Unsafe;
pub use format::{CorruptReason, MAX_PAYLOAD_LEN};
use lock::{FileLock, LockError};
pub use tq_atomic_file::{WriteStep, replace as replace_atomically};

/// Copies of the state kept: one per M.2 drive.
pub const LEDGER_COPIES: usize = 2;

/// What open found in one copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFinding {
    /// Intact, and the generation that was loaded.
    Current,
    /// Intact but older than the loaded generation (a crash between the two
    /// renames, or an earlier degraded write).
    Stale {
        /// Its generation.
        generation: u64,
    },
    /// Intact, of the loaded generation, with other bytes (never written
    /// by this code; the lower-numbered copy wins).
    Conflicting,
    /// No file in an existing directory.
    Absent,
    /// The directory does not exist.
    NoDirectory,
    /// The bytes fail a check.
    Corrupt(CorruptReason),
    /// Reading failed.
    Unreadable(io::ErrorKind),
}

impl CopyFinding {
    /// Whether the copy needs rewriting from the loaded one.
    pub fn needs_repair(self) -> bool {
        self != Self::Current
    }
}

/// What open did about one copy that needed repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// The copy was fine, or there was nothing to repair it from.
    NotNeeded,
    /// Rewritten from the loaded copy.
    Repaired,
    /// Rewriting failed at this step; the ledger runs degraded.
    Failed(WriteStep, io::ErrorKind),
}

/// What open found and did, per copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenReport {
    /// The loaded generation (0: initialized, nothing stored yet).
    pub generation: u64,
    /// Per copy: what was found.
    pub found: [CopyFinding; LEDGER_COPIES],
    /// Per copy: the repair.
    pub repair: [Repair; LEDGER_COPIES],
    /// Per copy: whether a temporary file left by a crash was removed.
    pub leftover_removed: [bool; LEDGER_COPIES],
}

/// An opened ledger and the state it holds.
pub struct Opened {
    /// The ledger, ready for writes.
    pub ledger: Ledger,
    /// The newest valid payload, or `None` if nothing was stored since
    /// [`init`] (a fresh sled, or one to start from its LRTQ share file).
    pub state: Option<Zeroizing<Vec<u8>>>,
    /// What was found and repaired.
    pub report: OpenReport,
}

/// Why a ledger could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No copy on either drive (each absent, or its directory missing): a
    /// drive not mounted, or a sled never initialized ([`init`]). Starting
    /// fresh could forget acknowledged state, so the node must not start.
    NotInitialized([CopyFinding; LEDGER_COPIES]),
    /// No copy is valid and not every one is missing: starting fresh
    /// could forget acknowledged state, so the node must not start.
    NoValidCopy([CopyFinding; LEDGER_COPIES]),
    /// Another process owns the ledger (or its lock could not be taken).
    Locked(LockError),
    /// A copy or directory is open to others, owned by another user, or a
    /// symbolic link: see [`access`].
    Unsafe(Unsafe),
    /// The blocking task did not finish (the runtime is shutting down).
    Interrupted,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInitialized(found) => write!(f, "no ledger copy on any drive: {found:?}"),
            Self::NoValidCopy(found) => write!(f, "no valid ledger copy: {found:?}"),
            Self::Locked(e) => write!(f, "ledger {e}"),
            Self::Unsafe(e) => write!(f, "refused: {e}"),
            Self::Interrupted => f.write_str("ledger open interrupted"),
        }
    }
}

/// Why [`init`] did not initialize a ledger. Only a [`InitError::Write`]
/// can leave something behind: one copy at generation 0, which the next
/// open repairs onto the other.
#[derive(Debug)]
pub enum InitError {
    /// A copy's directory could not be created (its parent, the drive,
    /// missing?).
    Directory(PathBuf, io::Error),
    /// A ledger copy is already there: this sled holds state.
    AlreadyInitialized(PathBuf),
    /// Another process owns the ledger.
    Locked(LockError),
    /// A directory is open to others, owned by another user or a link.
    Unsafe(Unsafe),
    /// A copy could not be written.
    Write(CopyFailure),
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory(dir, e) => write!(
                f,
                "cannot create {}: {e} (is its drive mounted?)",
                dir.display()
            ),
            Self::AlreadyInitialized(path) => write!(
                f,
                "{} exists: this sled is initialized already",
                path.display()
            ),
            Self::Locked(e) => write!(f, "ledger {e}"),
            Self::Unsafe(e) => write!(f, "refused: {e}"),
            Self::Write(e) => write!(f, "writing the ledger: {e}"),
        }
    }
}

impl std::error::Error for InitError {}

impl std::error::Error for OpenError {}

/// One copy that could not be written.
#[derive(Debug)]
pub struct CopyFailure {
    /// Which copy (0 or 1).
    pub copy: usize,
    /// The step that failed.
    pub step: WriteStep,
    /// The error.
    pub error: io::Error,
}

impl std::fmt::Display for CopyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "copy {}: {}: {}", self.copy, self.step, self.error)
    }
}

/// A write that made the state durable.
#[derive(Debug)]
pub enum WriteOutcome {
    /// Both copies hold the new generation.
    Both {
        /// The generation written.
        generation: u64,
    },
    /// One copy holds it; the other failed and still holds an older state
    /// (or none). Durable, but one drive fault from losing it.
    Degraded {
        /// The generation written.
        generation: u64,
        /// The copy that failed.
        failed: CopyFailure,
    },
}

impl WriteOutcome {
    /// The generation now on disk.
    pub fn generation(&self) -> u64 {
        match self {
            Self::Both { generation } | Self::Degraded { generation, .. } => *generation,
        }
    }
}

/// A write that did not make the state durable: acknowledge nothing.
#[derive(Debug)]
pub enum WriteError {
    /// The payload is longer than [`MAX_PAYLOAD_LEN`]; retrying cannot help.
    TooLarge(usize),
    /// Neither copy was written. Each may still hold the previous state.
    NoCopy([CopyFailure; LEDGER_COPIES]),
    /// The blocking task did not finish (the runtime is shutting down).
    Interrupted,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge(len) => write!(f, "state of {len} bytes exceeds {MAX_PAYLOAD_LEN}"),
            Self::NoCopy([a, b]) => write!(f, "no ledger copy written ({a}; {b})"),
            Self::Interrupted => f.write_str("ledger write interrupted"),
        }
    }
}

impl std::error::Error for WriteError {}

/// The ledger's health, for the node's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerStatus {
    /// Both copies hold the latest state.
    Healthy,
    /// Only the other copy holds the latest state.
    Degraded {
        /// The copy that is behind.
        failed_copy: usize,
    },
    /// The last write reached no copy; a retry is pending and nothing may
    /// be acknowledged until it succeeds.
    Failing {
        /// Failed attempts in a row.
        attempts: u32,
    },
}

/// Counters of one copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Writes (including repairs) that failed on this copy.
    pub write_failures: u64,
    /// Times open found this copy not current (absent, corrupt, stale...).
    pub found_bad: u64,
    /// Times open rewrote it from the other copy.
    pub repairs: u64,
    /// Times such a rewrite failed.
    pub repair_failures: u64,
}

/// The ledger's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// The generation on disk (0: nothing written yet).
    pub generation: u64,
    /// Writes that reached both copies.
    pub writes_both: u64,
    /// Writes that reached one copy.
    pub writes_degraded: u64,
    /// Writes that reached none.
    pub writes_failed: u64,
    /// Retries made by [`Ledger::write_retrying`].
    pub write_retries: u64,
    /// Per copy.
    pub copies: [CopyStats; LEDGER_COPIES],
}

/// The mirrored ledger. Cheap to clone; clones share one set of files.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    paths: [PathBuf; LEDGER_COPIES],
    /// This process's ownership of each existing directory; released when
    /// the last handle or write ends.
    _locks: Vec<FileLock>,
    /// Whether the copies' directories were on two drives at open: only
    /// then are they written at once.
    separate_drives: bool,
    /// The next write's generation is one more; held across the file work.
    generation: Mutex<u64>,
    stats: Mutex<LedgerStats>,
    status: Mutex<LedgerStatus>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves plain data behind.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    /// Opens the ledger whose copies live at `paths` (one per drive; the
    /// directories must exist), locking, loading and repairing as the
    /// module doc says.
    pub async fn open(paths: [PathBuf; LEDGER_COPIES]) -> Result<Opened, OpenError> {
        tokio::task::spawn_blocking(move || open_blocking(paths))
            .await
            .map_err(|_| OpenError::Interrupted)?
    }

    /// The paths of the copies.
    pub fn paths(&self) -> &[PathBuf; LEDGER_COPIES] {
        &self.inner.paths
    }

    /// Writes `payload` as the next generation to both copies.
    pub async fn write(&self, payload: &[u8]) -> Result<WriteOutcome, WriteError> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(WriteError::TooLarge(payload.len()));
        }
        let payload = Zeroizing::new(payload.to_vec());
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.write_blocking(&payload))
            .await
            .unwrap_or(Err(WriteError::Interrupted))
    }

    /// Writes `payload`, retrying with backoff until at least one copy holds
    /// it. Returns an error only for a payload that can never be written.
    pub async fn write_retrying(
        &self,
        payload: &[u8],
        backoff: BackoffConfig,
    ) -> Result<WriteOutcome, WriteError> {
        let mut backoff = Backoff::new(backoff);
        loop {
            match self.write(payload).await {
                Err(WriteError::TooLarge(len)) => return Err(WriteError::TooLarge(len)),
                Ok(outcome) => return Ok(outcome),
                Err(error) => {
                    let delay = backoff.next_delay();
                    *lock(&self.inner.status) = LedgerStatus::Failing {
                        attempts: backoff.attempts(),
                    };
                    tracing::error!(%error, attempts = backoff.attempts(), ?delay,
                        "ledger write reached no copy; retrying");
                    tokio::time::sleep(delay).await;
                    lock(&self.inner.stats).write_retries += 1;
                }
            }
        }
    }

    /// The ledger's health.
    pub fn status(&self) -> LedgerStatus {
        *lock(&self.inner.status)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LedgerStats {
        *lock(&self.inner.stats)
    }
}

impl Inner {
    fn write_blocking(&self, payload: &[u8]) -> Result<WriteOutcome, WriteError> {
        let mut current = lock(&self.generation);
        // Taken even if the write fails: a failed rename may still have
        // reached the disk, and a generation must never name two states.
        let generation = current.saturating_add(1);
        *current = generation;
        let bytes = format::encode(generation, payload);
        let results = crate::mirror::on_every_copy(&self.paths, self.separate_drives, |path| {
            file::replace(path, &bytes)
        });
        drop(current);
        let results = results.into_iter().enumerate().map(|(copy, result)| {
            result.map_err(|(step, error)| CopyFailure { copy, step, error })
        });

        let mut stats = lock(&self.stats);
        let mut status = lock(&self.status);
        let mut failures = Vec::new();
        for (result, copy_stats) in results.zip(stats.copies.iter_mut()) {
            if let Err(failure) = result {
                copy_stats.write_failures += 1;
                tracing::warn!(%failure, generation, "ledger copy not written");
                failures.push(failure);
            }
        }
        match <[CopyFailure; 2]>::try_from(failures) {
            Ok(both) => {
                stats.writes_failed += 1;
                if !matches!(*status, LedgerStatus::Failing { .. }) {
                    *status = LedgerStatus::Failing { attempts: 1 };
                }
                Err(WriteError::NoCopy(both))
            }
            Err(mut failures) => {
                stats.generation = generation;
                match failures.pop() {
                    None => {
                        stats.writes_both += 1;
                        *status = LedgerStatus::Healthy;
                        Ok(WriteOutcome::Both { generation })
                    }
                    Some(failed) => {
                        stats.writes_degraded += 1;
                        *status = LedgerStatus::Degraded {
                            failed_copy: failed.copy,
                        };
                        Ok(WriteOutcome::Degraded { generation, failed })
                    }
                }
            }
        }
    }
}

/// A copy's bytes that checked out.
struct ValidCopy {
    generation: u64,
    bytes: Zeroizing<Vec<u8>>,
}

fn inspect(path: &Path) -> Result<Result<ValidCopy, CopyFinding>, Unsafe> {
    Ok(match file::read(path) {
        file::ReadCopy::Absent => Err(CopyFinding::Absent),
        file::ReadCopy::NoDirectory => Err(CopyFinding::NoDirectory),
        file::ReadCopy::Failed(e) => Err(CopyFinding::Unreadable(e.kind())),
        file::ReadCopy::Unsafe(refused) => return Err(refused),
        file::ReadCopy::Bytes(bytes) => match format::decode(&bytes) {
            Ok((generation, _)) => Ok(ValidCopy { generation, bytes }),
            Err(reason) => Err(CopyFinding::Corrupt(reason)),
        },
    })
}

/// Checks each existing copy directory and takes its lock. A missing
/// directory is left to the copy's finding.
fn lock_directories(paths: &[PathBuf; LEDGER_COPIES]) -> Result<Vec<FileLock>, OpenError> {
    let mut locks = Vec::with_capacity(LEDGER_COPIES);
    for path in paths {
        let dir = file::directory(path);
        let Ok(metadata) = std::fs::metadata(dir) else {
            continue;
        };
        access::check(dir, &metadata, true).map_err(OpenError::Unsafe)?;
        locks.push(lock::lock_exclusive(path).map_err(OpenError::Locked)?);
    }
    Ok(locks)
}

/// Sets up the ledger of a new sled at `paths`, as the module doc says:
/// creates each copy's directory (mode 0700) if needed, then writes
/// generation 0, holding nothing, to both copies. Blocking; for
/// `tq sled init` and test setups, never while a node runs.
pub fn init(paths: &[PathBuf; LEDGER_COPIES]) -> Result<(), InitError> {
    for path in paths {
        let dir = file::directory(path);
        match std::fs::DirBuilder::new()
            .mode(access::DIRECTORY_MODE)
            .create(dir)
        {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(InitError::Directory(dir.to_owned(), e));
            }
            _ => {}
        }
        let metadata =
            std::fs::metadata(dir).map_err(|e| InitError::Directory(dir.to_owned(), e))?;
        access::check(dir, &metadata, true).map_err(InitError::Unsafe)?;
    }
    let _locks = paths
        .iter()
        .map(|path| lock::lock_exclusive(path))
        .collect::<Result<Vec<_>, _>>()
        .map_err(InitError::Locked)?;
    for path in paths {
        match std::fs::symlink_metadata(path) {
            Ok(_) => return Err(InitError::AlreadyInitialized(path.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(InitError::Directory(file::directory(path).to_owned(), e)),
        }
    }
    let initialized = format::encode(0, &[]);
    for (copy, path) in paths.iter().enumerate() {
        file::replace(path, &initialized)
            .map_err(|(step, error)| InitError::Write(CopyFailure { copy, step, error }))?;
    }
    tracing::info!(paths = ?paths, "ledger initialized");
    Ok(())
}

fn open_blocking(paths: [PathBuf; LEDGER_COPIES]) -> Result<Opened, OpenError> {
    let locks = lock_directories(&paths)?;
    let [first, second] = paths.each_ref().map(|path| inspect(path));
    let inspected = [
        first.map_err(OpenError::Unsafe)?,
        second.map_err(OpenError::Unsafe)?,
    ];
    let newest = inspected
        .iter()
        .enumerate()
        .filter_map(|(i, copy)| copy.as_ref().ok().map(|valid| (i, valid)))
        // Highest generation; on a tie the lower-numbered copy.
        .max_by_key(|(i, valid)| (valid.generation, std::cmp::Reverse(*i)))
        .map(|(i, _)| i);

    let chosen_copy = newest
        .and_then(|n| inspected.get(n))
        .and_then(|c| c.as_ref().ok());
    let found = std::array::from_fn(|i| match (inspected.get(i), newest, chosen_copy) {
        (Some(Err(finding)), _, _) => *finding,
        (Some(Ok(_)), Some(n), _) if n == i => CopyFinding::Current,
        (Some(Ok(valid)), _, Some(chosen)) if chosen.generation > valid.generation => {
            CopyFinding::Stale {
                generation: valid.generation,
            }
        }
        (Some(Ok(valid)), _, Some(chosen)) if chosen.bytes == valid.bytes => CopyFinding::Current,
        _ => CopyFinding::Conflicting,
    });

    let mut stats = LedgerStats::default();
    // No copy at all is a new sled's ledger, not a copy gone bad.
    let fresh = found.iter().all(|finding| *finding == CopyFinding::Absent);
    for ((finding, path), copy_stats) in found.iter().zip(&paths).zip(stats.copies.iter_mut()) {
        if finding.needs_repair() && !fresh {
            copy_stats.found_bad += 1;
            tracing::warn!(path = %path.display(), ?finding, "ledger copy is not current");
        }
    }

    let leftover_removed = paths.clone().map(|path| match file::remove_leftover(&path) {
        Ok(removed) => removed,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot remove a leftover temporary file");
            false
        }
    });

    let Some(chosen) = newest else {
        let missing = |f: &CopyFinding| matches!(f, CopyFinding::Absent | CopyFinding::NoDirectory);
        if found.iter().all(missing) {
            tracing::error!(?found, "no ledger copy on any drive");
            return Err(OpenError::NotInitialized(found));
        }
        tracing::error!(?found, "no valid ledger copy");
        return Err(OpenError::NoValidCopy(found));
    };

    let [first, second] = inspected;
    let Ok(loaded) = (if chosen == 0 { first } else { second }) else {
        return Err(OpenError::NoValidCopy(found));
    };
    let generation = loaded.generation;

    let mut status = LedgerStatus::Healthy;
    let mut repair = [Repair::NotNeeded; LEDGER_COPIES];
    for (copy, (((finding, path), copy_stats), repair)) in found
        .iter()
        .zip(&paths)
        .zip(stats.copies.iter_mut())
        .zip(repair.iter_mut())
        .enumerate()
    {
        if !finding.needs_repair() {
            continue;
        }
        *repair = match file::replace(path, &loaded.bytes) {
            Ok(()) => {
                copy_stats.repairs += 1;
                tracing::info!(copy, generation, "ledger copy repaired from the other");
                Repair::Repaired
            }
            Err((step, error)) => {
                copy_stats.repair_failures += 1;
                copy_stats.write_failures += 1;
                status = LedgerStatus::Degraded { failed_copy: copy };
                tracing::error!(copy, %step, %error, "ledger copy could not be repaired");
                Repair::Failed(step, error.kind())
            }
        };
    }

    let payload = format::decode(&loaded.bytes)
        .map(|(_, payload)| Zeroizing::new(payload.to_vec()))
        .map_err(|_| OpenError::NoValidCopy(found))?;
    // Generation 0 is what init wrote: nothing stored yet.
    let state = (generation > 0).then_some(payload);
    stats.generation = generation;
    tracing::info!(generation, copy = chosen, "ledger loaded");
    Ok(Opened {
        ledger: Ledger::from_parts(paths, locks, generation, stats, status),
        state,
        report: OpenReport {
            generation,
            found,
            repair,
            leftover_removed,
        },
    })
}

impl Ledger {
    fn from_parts(
        paths: [PathBuf; LEDGER_COPIES],
        locks: Vec<FileLock>,
        generation: u64,
        stats: LedgerStats,
        status: LedgerStatus,
    ) -> Self {
        let dirs = paths.each_ref().map(|path| file::directory(path));
        let separate_drives = crate::mirror::on_separate_drives(&dirs);
        Self {
            inner: Arc::new(Inner {
                paths,
                separate_drives,
                _locks: locks,
                generation: Mutex::new(generation),
                stats: Mutex::new(stats),
                status: Mutex::new(status),
            }),
        }
    }
}

//! The durable ledger: the node's persistent state in two mirrored files, as
//! on a sled's two M.2 drives.
//!
//! Each copy is a checksummed header and the core's encoding of its
//! persistent state ([`mod@format`]), replaced atomically on every write
//! ([`file`]). The payload is opaque here; the node layer encodes and
//! decodes it with the core.
//!
//! - **Open** reads both copies, loads the one with the highest generation
//!   whose checksum holds, and rewrites every other copy (absent,
//!   truncated, corrupted, unreadable or stale) from it before returning.
//!   Both copies absent from existing directories is a fresh sled; any other
//!   state with no valid copy is [`OpenError::NoValidCopy`], never a silent
//!   fresh start.
//! - **Write** gives the state the next generation (never reused, even when
//!   the write fails) and replaces copy 0, then copy 1. Both written is
//!   [`WriteOutcome::Both`]; one is [`WriteOutcome::Degraded`] (counted,
//!   the state is durable); none is [`WriteError::NoCopy`]: the caller must
//!   not acknowledge anything to the core. [`Ledger::write_retrying`] keeps
//!   trying with backoff until a copy is written, showing
//!   [`LedgerStatus::Failing`] meanwhile.
//!
//! File work runs on tokio's blocking pool, one operation at a time (a
//! mutex held on the blocking thread, so a dropped future cannot let two
//! writes interleave). Payloads hold key shares: every buffer is zeroized
//! when dropped.

mod file;
pub mod format;
pub mod lrtq;

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use zeroize::Zeroizing;

use crate::backoff::{Backoff, BackoffConfig};
pub use file::{WriteStep, replace as replace_atomically};
pub use format::{CorruptReason, MAX_PAYLOAD_LEN};

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
    /// The loaded generation; `None` for a fresh sled.
    pub generation: Option<u64>,
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
    /// The newest valid payload, or `None` for a fresh sled.
    pub state: Option<Zeroizing<Vec<u8>>>,
    /// What was found and repaired.
    pub report: OpenReport,
}

/// Why a ledger could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No copy is valid and not both are cleanly absent: starting fresh
    /// could forget acknowledged state, so the node must not start.
    NoValidCopy([CopyFinding; LEDGER_COPIES]),
    /// The blocking task did not finish (the runtime is shutting down).
    Interrupted,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoValidCopy(found) => write!(f, "no valid ledger copy: {found:?}"),
            Self::Interrupted => f.write_str("ledger open interrupted"),
        }
    }
}

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
    /// directories must exist), loading and repairing as the module doc
    /// says.
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
        let results: Vec<Result<(), CopyFailure>> = self
            .paths
            .iter()
            .enumerate()
            .map(|(copy, path)| {
                file::replace(path, &bytes).map_err(|(step, error)| CopyFailure {
                    copy,
                    step,
                    error,
                })
            })
            .collect();
        drop(current);

        let mut stats = lock(&self.stats);
        let mut status = lock(&self.status);
        let mut failures = Vec::new();
        for (result, copy_stats) in results.into_iter().zip(stats.copies.iter_mut()) {
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

fn inspect(path: &std::path::Path) -> Result<ValidCopy, CopyFinding> {
    match file::read(path) {
        file::ReadCopy::Absent => Err(CopyFinding::Absent),
        file::ReadCopy::NoDirectory => Err(CopyFinding::NoDirectory),
        file::ReadCopy::Failed(e) => Err(CopyFinding::Unreadable(e.kind())),
        file::ReadCopy::Bytes(bytes) => match format::decode(&bytes) {
            Ok((generation, _)) => Ok(ValidCopy { generation, bytes }),
            Err(reason) => Err(CopyFinding::Corrupt(reason)),
        },
    }
}

fn open_blocking(paths: [PathBuf; LEDGER_COPIES]) -> Result<Opened, OpenError> {
    let inspected = paths.clone().map(|path| inspect(&path));
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
        if found.iter().all(|f| *f == CopyFinding::Absent) {
            tracing::info!("no ledger: a fresh sled");
            let report = OpenReport {
                generation: None,
                found,
                repair: [Repair::NotNeeded; LEDGER_COPIES],
                leftover_removed,
            };
            return Ok(Opened {
                ledger: Ledger::from_parts(paths, 0, stats, LedgerStatus::Healthy),
                state: None,
                report,
            });
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

    let state = format::decode(&loaded.bytes)
        .map(|(_, payload)| Zeroizing::new(payload.to_vec()))
        .map_err(|_| OpenError::NoValidCopy(found))?;
    stats.generation = generation;
    tracing::info!(generation, copy = chosen, "ledger loaded");
    Ok(Opened {
        ledger: Ledger::from_parts(paths, generation, stats, status),
        state: Some(state),
        report: OpenReport {
            generation: Some(generation),
            found,
            repair,
            leftover_removed,
        },
    })
}

impl Ledger {
    fn from_parts(
        paths: [PathBuf; LEDGER_COPIES],
        generation: u64,
        stats: LedgerStats,
        status: LedgerStatus,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                paths,
                generation: Mutex::new(generation),
                stats: Mutex::new(stats),
                status: Mutex::new(status),
            }),
        }
    }
}

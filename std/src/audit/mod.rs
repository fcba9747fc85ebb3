//! The audit trail: a tamper-evident, hash-chained log of what this sled
//! was asked and what it gave, kept on both ledger drives.
//!
//! # What is recorded
//!
//! [`AuditEvent`]: every Nexus request that changes state (reconfigure,
//! upgrade from LRTQ, commit, prepare-and-commit; direct or relayed by a
//! peer), accepted or refused and why; every share leaving for a peer
//! (a `Share` answering `GetShare`, a `Prepare` dealing one, an LRTQ
//! share), recorded *before* it is sent; every secret handed out or
//! refused, and for whom (Nexus's fingerprint call or the sled); every
//! secret rebuilt, expungement and alarm; the sled's starts; what open
//! found and repaired in the log itself; and every refusal, as the growth
//! of each refusal count per interval ([`refusals`]: a record per refused
//! handshake would let anyone who can reach a port write to the drives). Status reads are not recorded
//! (Nexus polls them). **No record holds a share, a secret, a key or a
//! tag**: events are built from identifiers, epochs and error texts only
//! ([`event`]), and a test searches a real run's logs for every share and
//! secret it knows.
//!
//! # Where, and how
//!
//! Each copy is a directory `audit/` beside a ledger copy (one per M.2
//! drive; [`audit_dirs`]), holding segment files of JSON lines
//! ([`segment`]). Each record carries a sequence number and the SHA3-256
//! hash of the previous record's line ([`record`]), so a changed, removed
//! or reordered record breaks the chain; [`verify`] names the first bad
//! record. Both copies get every append (`writer`: fsynced before the
//! caller acts), and open (`open`) compares them, cuts a torn tail
//! (a crashed append) and rewrites a copy that is behind or damaged from
//! the other, as the ledger does; each of these is recorded.
//!
//! **One writer**: the sled's process holds a lock (`audit.lock`, beside
//! each copy's directory in the ledger's) for the log's life. Readers
//! (`tq audit`) take none: run beside the sled, they may see the record
//! being appended as a torn tail.
//!
//! **A drive that fails** is left until the next open repairs its copy;
//! if neither takes a record, every later append first opens the log
//! again from the drives, so the sled starts and runs without them and
//! records again once one is back (what it could not record is kept for
//! that, up to a bound, but for shares, which were not sent).
//!
//! **Where the events come from**: the node task ([`crate::node`])
//! records each Nexus request's outcome before answering it
//! ([`AuditEvent::NexusRequest`]: the entry point for refusals made
//! before the node, such as authentication's), holds every outgoing
//! message that hands out a share ([`peek`] reads which, from the head of
//! its encoding) until its record is on a drive, and records the core's
//! events, secret loads and its start.
//!
//! **Bounded**: segments rotate at [`AuditConfig::max_segment_bytes`], and
//! only [`AuditConfig::retained_segments`] are kept. A segment's first
//! record says which segments are kept, so a segment dropped by rotation
//! shows as such and any other missing one is damage.
//!
//! **What a chain without a key cannot show**: a log cut at its end, or
//! rewritten whole by someone who can write both drives, verifies. The
//! head (sequence number and hash) that `tq audit verify` prints is the
//! value to keep elsewhere to catch that.
//!
//! # Choices
//!
//! - **JSON lines**, not postcard: a record is read by people (`tq audit
//!   show`, or `grep` on a box without `tq`), a newline frames each
//!   record so a torn tail is simply bytes after the last newline, and the
//!   hash covers the line's exact bytes, so nothing is re-encoded to
//!   check it. The size costs little at the rate of these events.
//! - **SHA3-256** (`sha3`, the ledger's checksum): no new crate.
//! - **Whole-segment repairs through `tq-atomic-file`**, appends as plain
//!   writes with an fsync (an append cannot be a replace).
//! - **A share is not sent unless its record is on a drive**: if no copy
//!   takes the record, the message is dropped and counted; the core sends
//!   again what matters when the peer asks or reconnects.

pub mod event;
mod open;
pub mod peek;
pub mod record;
pub mod refusals;
pub mod segment;
pub mod verify;
mod writer;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::ledger::LEDGER_COPIES;
use crate::ledger::access::Unsafe;
use crate::ledger::lock::LockError;
pub use event::{AuditEvent, NexusCall, RequestOutcome, SecretFor, ShareMessage};
pub use writer::AppendError;

/// Copies of the log: one per ledger drive.
pub const AUDIT_COPIES: usize = LEDGER_COPIES;

/// The directory of each copy's segments, beside the ledger copy.
pub const AUDIT_DIR_NAME: &str = "audit";

/// The audit directories of a ledger's copies (`audit/` in each ledger
/// copy's directory).
pub fn audit_dirs(ledger: &[PathBuf; LEDGER_COPIES]) -> [PathBuf; AUDIT_COPIES] {
    ledger
        .each_ref()
        .map(|path| tq_atomic_file::directory(path).join(AUDIT_DIR_NAME))
}

/// Default segment size cap.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 1 << 20;

/// Default segments kept.
pub const DEFAULT_RETAINED_SEGMENTS: u64 = 8;

/// The log's bounds: at most `retained_segments` segments of at most
/// `max(max_segment_bytes, 2 × (MAX_RECORD_LEN + 1))` bytes each, per copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// A segment is closed before it would grow past this (at most
    /// 64 MiB less two records: larger is taken as that).
    pub max_segment_bytes: u64,
    /// Segments kept (at least 1); the oldest is removed past that.
    pub retained_segments: u64,
    /// How often the growth of the refusal counts is recorded
    /// ([`refusals`]).
    pub refusal_record_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            retained_segments: DEFAULT_RETAINED_SEGMENTS,
            refusal_record_interval: refusals::DEFAULT_REFUSAL_RECORD_INTERVAL,
        }
    }
}

/// The log's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written (to at least one copy).
    pub records: u64,
    /// Appends that flushed the drives: each takes one batch of records
    /// (those of one Nexus call, or of every network event run since the
    /// last), so a burst of share requests costs far fewer than records.
    pub flushes: u64,
    /// Appends that reached no copy.
    pub append_failures: u64,
    /// Segments opened by rotation.
    pub rotations: u64,
    /// Per copy: writes that failed (the copy is then left until the next
    /// open).
    pub copy_failures: [u64; AUDIT_COPIES],
    /// Per copy: times open rewrote it from the other.
    pub copy_repairs: [u64; AUDIT_COPIES],
    /// Messages holding a share not sent because their record reached no
    /// copy.
    pub shares_withheld: u64,
}

/// Why the log could not be opened. A log no drive takes is not one:
/// it opens with no copy, and every append tries the drives again.
#[derive(Debug)]
pub enum OpenError {
    /// A copy's directory could not be created or read.
    Directory(PathBuf, io::Error),
    /// A directory or file is open to others, foreign or a link.
    Unsafe(Unsafe),
    /// Another process owns the log.
    Locked(LockError),
    /// The blocking task did not finish.
    Interrupted,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Directory(dir, e) => write!(f, "audit directory {}: {e}", dir.display()),
            Self::Unsafe(e) => write!(f, "refused: {e}"),
            Self::Locked(e) => write!(f, "audit log {e}"),
            Self::Interrupted => f.write_str("audit log open interrupted"),
        }
    }
}

impl std::error::Error for OpenError {}

/// The open log. Cheap to clone; clones share the writer.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    identity: (String, u64, AuditConfig),
    writer: Mutex<writer::Writer>,
}

fn lock_writer(mutex: &Mutex<writer::Writer>) -> MutexGuard<'_, writer::Writer> {
    // A panic while holding it leaves plain data behind.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AuditLog {
    /// Opens the log in `dirs` (see [`audit_dirs`]) for `sled`, whose
    /// ledger holds `ledger_generation`: locks, reads, repairs and
    /// records what it found (see the module doc).
    pub async fn open(
        dirs: [PathBuf; AUDIT_COPIES],
        sled: String,
        ledger_generation: u64,
        config: AuditConfig,
    ) -> Result<Self, OpenError> {
        tokio::task::spawn_blocking(move || {
            Self::open_blocking(dirs, sled, ledger_generation, config)
        })
        .await
        .map_err(|_| OpenError::Interrupted)?
    }

    /// [`Self::open`], on the calling thread.
    pub fn open_blocking(
        dirs: [PathBuf; AUDIT_COPIES],
        sled: String,
        ledger_generation: u64,
        config: AuditConfig,
    ) -> Result<Self, OpenError> {
        let (mut writer, notes) =
            open::open_copies(&dirs, [None, None], &sled, ledger_generation, config)?;
        if let Err(error) = writer.append(&notes) {
            tracing::error!(%error, "cannot record what the audit log's open found");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                identity: (sled, ledger_generation, config),
                writer: Mutex::new(writer),
            }),
        })
    }

    /// Appends `events` to every live copy, fsynced, on the blocking pool.
    /// If no copy is live, the log is first opened again from the drives
    /// (as at start), so a drive that comes back is used again.
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<(), AppendError> {
        if events.is_empty() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.append_blocking(&events))
            .await
            .unwrap_or(Err(AppendError::NoCopy))
    }

    /// [`Self::record`], on the calling thread (for tools and tests).
    pub fn record_blocking(&self, events: &[AuditEvent]) -> Result<(), AppendError> {
        self.inner.append_blocking(events)
    }

    /// Counts a message holding a share that was not sent for want of its
    /// record.
    pub fn share_withheld(&self) {
        lock_writer(&self.inner.writer).stats.shares_withheld += 1;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuditStats {
        lock_writer(&self.inner.writer).stats
    }

    /// The copies' directories.
    pub fn dirs(&self) -> [PathBuf; AUDIT_COPIES] {
        lock_writer(&self.inner.writer).dirs.clone()
    }
}

impl Inner {
    fn append_blocking(&self, events: &[AuditEvent]) -> Result<(), AppendError> {
        let mut writer = lock_writer(&self.writer);
        if writer.copies.iter().all(Option::is_none) {
            let (sled, generation, config) = &self.identity;
            let locks = std::mem::take(&mut writer.locks);
            match open::open_copies(&writer.dirs, locks, sled, *generation, *config) {
                Ok((mut reopened, notes)) => {
                    let repairs = reopened.stats.copy_repairs;
                    reopened.stats = writer.stats;
                    for (total, new) in reopened.stats.copy_repairs.iter_mut().zip(repairs) {
                        *total += new;
                    }
                    *writer = reopened;
                    let _ = writer.append(&notes);
                }
                Err(error) => tracing::error!(%error, "the audit log cannot be reopened"),
            }
        }
        let result = writer.append(events);
        if result.is_err() {
            writer.stats.append_failures += 1;
        }
        result
    }
}

#[cfg(test)]
mod tests;

//! Appending records to both copies, and rotating segments.
//!
//! Each append writes whole lines (newline last) to the newest segment of
//! every live copy, all of its lines in one write per copy, then fsyncs
//! the copies (at once when they are on two drives) before returning, so a
//! record is on the drives before the caller acts on it. A segment that
//! would grow past the configured cap is closed: the next record opens a
//! new segment (its first record is `SegmentOpened`, chained to the
//! previous segment's last record like any other), and segments older
//! than the retained count are removed. A fresh segment always takes at least one record besides its
//! opening one, so a segment holds at most
//! `max(cap, 2 × (MAX_RECORD_LEN + 1))` bytes.
//!
//! A copy whose write fails is dropped for the rest of the process (the
//! next open compares it with the other and repairs it); the append fails
//! only if no copy took it.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use super::event::AuditEvent;
use super::record::{Record, RecordHash};
use super::{AUDIT_COPIES, AuditConfig, AuditStats, segment};
use crate::ledger::access::FILE_MODE;
use crate::ledger::lock::FileLock;

/// The largest cap honoured: a segment under it, plus its opening record
/// and one more, stays readable ([`segment::MAX_SEGMENT_FILE_LEN`]).
const MAX_SEGMENT_CAP: u64 =
    segment::MAX_SEGMENT_FILE_LEN - 2 * (super::record::MAX_RECORD_LEN as u64 + 1);

/// The newest segment of one copy, open for appending.
pub(super) struct LiveCopy {
    pub(super) file: File,
    /// Its length: where the next line goes.
    pub(super) len: u64,
}

/// Where the chain stands.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChainHead {
    /// The newest segment.
    pub(super) segment: u64,
    /// The oldest segment kept.
    pub(super) oldest_kept: u64,
    /// Records in the newest segment, its opening one included.
    pub(super) segment_records: u64,
    /// The next record's sequence number.
    pub(super) next_seq: u64,
    /// The last record's hash.
    pub(super) prev: RecordHash,
}

pub(super) struct Writer {
    /// Each copy's lock, held for the log's life: one process writes it.
    pub(super) locks: [Option<FileLock>; AUDIT_COPIES],
    pub(super) dirs: [PathBuf; AUDIT_COPIES],
    /// Whether `dirs` were on two drives at open: only then are the copies
    /// flushed at once.
    pub(super) separate_drives: bool,
    pub(super) sled: String,
    pub(super) config: AuditConfig,
    pub(super) copies: [Option<LiveCopy>; AUDIT_COPIES],
    pub(super) head: ChainHead,
    pub(super) stats: AuditStats,
    /// Lines of the append under way not yet written to the copies (each
    /// copy's `len` already counts them): written by [`Self::sync_all`].
    pub(super) unwritten: Vec<u8>,
    pub(super) unwritten_records: u64,
}

/// Why an append reached no copy.
#[derive(Debug)]
pub enum AppendError {
    /// No copy is live (each failed earlier or now).
    NoCopy,
    /// A record could not be encoded.
    Encode(super::record::EncodeError),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCopy => f.write_str("no audit log copy took the record"),
            Self::Encode(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AppendError {}

/// Opens (creating or truncating) a segment file for appending: never
/// through a link, mode 0600.
pub(super) fn create_segment(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )?;
    Ok(File::from(fd))
}

/// Opens an existing segment file for appending at `len`.
pub(super) fn open_segment(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

impl Writer {
    /// Appends `events` in order and fsyncs every live copy.
    pub(super) fn append(&mut self, events: &[AuditEvent]) -> Result<(), AppendError> {
        for event in events {
            let record = Record::new(self.head.next_seq, self.head.prev, event.clone());
            let line = match record.to_line() {
                Ok(line) => line,
                Err(error) => {
                    // What was written before it is still made durable.
                    self.sync_all();
                    return Err(AppendError::Encode(error));
                }
            };
            let cap = self.config.max_segment_bytes.min(MAX_SEGMENT_CAP);
            let needed = self.head.segment_records >= 2
                && self
                    .copies
                    .iter()
                    .flatten()
                    .any(|copy| copy.len.saturating_add(line.len() as u64 + 1) > cap);
            if needed {
                self.sync_all();
                self.rotate()?;
                // The chain moved on by the opening record.
                let record = Record::new(self.head.next_seq, self.head.prev, event.clone());
                let line = record.to_line().map_err(AppendError::Encode)?;
                self.write_line(&line);
            } else {
                self.write_line(&line);
            }
        }
        self.sync_all();
        if self.copies.iter().all(Option::is_none) {
            return Err(AppendError::NoCopy);
        }
        self.stats.flushes += 1;
        Ok(())
    }

    /// Queues one line for every live copy and moves the head past it.
    fn write_line(&mut self, line: &[u8]) {
        self.unwritten.extend_from_slice(line);
        self.unwritten.push(b'\n');
        for copy in self.copies.iter_mut().flatten() {
            copy.len += line.len() as u64 + 1;
        }
        self.unwritten_records += 1;
        self.head.next_seq = self.head.next_seq.wrapping_add(1);
        self.head.prev = RecordHash::of_line(line);
        self.head.segment_records += 1;
    }

    /// Writes the queued lines to every live copy, in one write each.
    fn write_unwritten(&mut self) {
        let lines = std::mem::take(&mut self.unwritten);
        if !lines.is_empty() {
            for index in 0..AUDIT_COPIES {
                let written = match self.copies.get_mut(index).and_then(Option::as_mut) {
                    Some(copy) => copy.file.write_all(&lines),
                    None => continue,
                };
                if let Err(error) = written {
                    self.drop_copy(index, "append", &error);
                }
            }
        }
        if self.copies.iter().any(Option::is_some) {
            self.stats.records += self.unwritten_records;
        }
        self.unwritten_records = 0;
        // The buffer is kept for the next append.
        self.unwritten = lines;
        self.unwritten.clear();
    }

    /// Writes the queued lines, then flushes every live copy (at once when
    /// they are on two drives).
    fn sync_all(&mut self) {
        self.write_unwritten();
        let synced = crate::mirror::on_every_copy(&self.copies, self.separate_drives, |copy| {
            copy.as_ref().map(|copy| copy.file.sync_data())
        });
        for (index, synced) in synced.into_iter().enumerate() {
            if let Some(Err(error)) = synced {
                self.drop_copy(index, "fsync", &error);
            }
        }
    }

    fn drop_copy(&mut self, index: usize, step: &str, error: &io::Error) {
        if let Some(slot) = self.copies.get_mut(index) {
            *slot = None;
        }
        if let Some(failures) = self.stats.copy_failures.get_mut(index) {
            *failures += 1;
        }
        tracing::error!(copy = index, step, %error,
            "audit log copy failed; it is left until the next open repairs it");
    }

    /// Closes the newest segment and opens the next, in every live copy;
    /// then removes the segments older than the retained count.
    fn rotate(&mut self) -> Result<(), AppendError> {
        let segment = self.head.segment.wrapping_add(1);
        let retained = self.config.retained_segments.max(1);
        let oldest_kept = segment
            .saturating_sub(retained - 1)
            .max(self.head.oldest_kept);
        let opening = Record::new(
            self.head.next_seq,
            self.head.prev,
            AuditEvent::SegmentOpened {
                segment,
                oldest_kept,
                sled: self.sled.clone(),
            },
        );
        let line = opening.to_line().map_err(AppendError::Encode)?;
        for index in 0..AUDIT_COPIES {
            if self.copies.get(index).is_none_or(Option::is_none) {
                continue;
            }
            let Some(dir) = self.dirs.get(index).cloned() else {
                continue;
            };
            let created = create_segment(&segment::path(&dir, segment))
                .and_then(|file| sync_dir(&dir).map(|()| file));
            match created {
                Ok(file) => {
                    if let Some(slot) = self.copies.get_mut(index) {
                        *slot = Some(LiveCopy { file, len: 0 });
                    }
                }
                Err(error) => self.drop_copy(index, "create a segment", &error),
            }
        }
        self.head.segment = segment;
        self.head.oldest_kept = oldest_kept;
        self.head.segment_records = 0;
        self.write_line(&line);
        self.sync_all();
        self.stats.rotations += 1;
        for (index, dir) in self.dirs.clone().iter().enumerate() {
            if self.copies.get(index).is_some_and(Option::is_some) {
                remove_older(dir, oldest_kept);
            }
        }
        Ok(())
    }
}

/// Removes the segments of `dir` older than `oldest_kept` (oldest first, so
/// a crash leaves the newer of them, next to the kept ones).
pub(super) fn remove_older(dir: &Path, oldest_kept: u64) -> u64 {
    let Ok(numbers) = segment::list(dir) else {
        return 0;
    };
    let mut removed = 0;
    for number in numbers.into_iter().filter(|n| *n < oldest_kept) {
        match std::fs::remove_file(segment::path(dir, number)) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(dir = %dir.display(), number, %error, "cannot remove a rotated segment");
            }
        }
    }
    if removed > 0
        && let Err(error) = sync_dir(dir)
    {
        tracing::warn!(dir = %dir.display(), %error, "cannot fsync the audit directory");
    }
    removed
}

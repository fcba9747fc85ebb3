//! Opening the log: both copies read and verified, a torn tail cut off,
//! the copies made identical again, and the chain's head found.
//!
//! - A **torn tail** (bytes after the last newline of the newest segment:
//!   an append a crash cut short) is truncated away; a newest segment
//!   left empty by a crash during rotation is removed.
//! - The **copy to continue from** is the one that verifies, else the one
//!   that reaches further (the higher last sequence number; copy 0 on a
//!   tie). The other copy is rewritten from it, segment by segment (each
//!   a whole-file replace), and its extra segments removed: a copy behind
//!   after a crash between the two appends, missing after a drive
//!   change, or damaged.
//! - Each of these is returned as an event to record, so the log says
//!   what open found and did; so is a copy to continue from that fails
//!   verification itself (`LogDamaged`: its damage stays for
//!   `tq audit verify` to show), and a log created from nothing.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::event::AuditEvent;
use super::record::GENESIS;
use super::verify::{self, Verdict};
use super::writer::{
    ChainHead, LiveCopy, Writer, create_segment, open_segment, remove_older, sync_dir,
};
use super::{AUDIT_COPIES, AuditConfig, AuditStats, OpenError, segment};
use crate::ledger::access::{self, DIRECTORY_MODE};
use crate::ledger::lock::{self, FileLock, LockError};

/// Takes copy `copy`'s lock (beside its directory, in the ledger's) if
/// not held yet; whether it is held. Held elsewhere is refused.
fn take_lock(
    dir: &Path,
    copy: usize,
    locks: &mut [Option<FileLock>; AUDIT_COPIES],
) -> Result<bool, OpenError> {
    let Some(slot) = locks.get_mut(copy) else {
        return Ok(false);
    };
    if slot.is_some() {
        return Ok(true);
    }
    if !dir.parent().is_some_and(Path::is_dir) {
        return Ok(false);
    }
    match lock::lock_exclusive(dir) {
        Ok(taken) => {
            *slot = Some(taken);
            Ok(true)
        }
        Err(held @ LockError::Held(_)) => Err(OpenError::Locked(held)),
        Err(error) => {
            // A drive that cannot hold a lock file cannot hold the log.
            tracing::error!(copy, %error, "audit log copy unusable");
            Ok(false)
        }
    }
}

/// A copy's directory, checked (created if its drive is there).
fn prepare_dir(dir: &Path) -> Result<bool, OpenError> {
    let drive_there = dir.parent().is_some_and(Path::is_dir);
    if !dir.exists() {
        if !drive_there {
            return Ok(false);
        }
        match std::fs::DirBuilder::new().mode(DIRECTORY_MODE).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(OpenError::Directory(dir.to_owned(), e)),
        }
    }
    let metadata =
        std::fs::symlink_metadata(dir).map_err(|e| OpenError::Directory(dir.to_owned(), e))?;
    access::check(dir, &metadata, true).map_err(OpenError::Unsafe)?;
    // Whole-segment replaces (repairs) a crash interrupted.
    for entry in std::fs::read_dir(dir).map_err(|e| OpenError::Directory(dir.to_owned(), e))? {
        let name = entry
            .map_err(|e| OpenError::Directory(dir.to_owned(), e))?
            .file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".tmp"))
            && segment::number_of(stem).is_some()
        {
            let _ = tq_atomic_file::remove_leftover(&dir.join(stem));
        }
    }
    Ok(true)
}

/// Cuts a copy's torn tail; the event to record.
fn truncate_torn(dir: &Path, copy: usize, verdict: &mut Verdict) -> Option<AuditEvent> {
    let torn = verdict.summary.torn_tail.take()?;
    let path = segment::path(dir, torn.segment);
    let cut = if torn.keep == 0 {
        std::fs::remove_file(&path).and_then(|()| sync_dir(dir))
    } else {
        open_segment(&path).and_then(|file| {
            file.set_len(torn.keep)?;
            file.sync_all()
        })
    };
    match cut {
        Ok(()) => {
            if torn.keep == 0 {
                verdict.summary.segments.retain(|n| *n != torn.segment);
            }
            tracing::warn!(
                copy,
                segment = torn.segment,
                bytes = torn.bytes,
                "audit log: torn tail of a crashed append truncated"
            );
            Some(AuditEvent::TornTailTruncated {
                copy,
                segment: torn.segment,
                bytes: torn.bytes,
            })
        }
        Err(error) => {
            tracing::error!(copy, %error, "audit log: cannot truncate a torn tail");
            None
        }
    }
}

/// What to say of a copy rewritten from the other.
fn finding(copy: &Verdict, leader: &Verdict) -> String {
    if let Some(bad) = &copy.bad {
        return format!("damaged: {bad}");
    }
    match (copy.summary.head, leader.summary.head) {
        (None, _) => "empty or missing".to_owned(),
        (Some((seq, _)), Some((lead, _))) if seq < lead => {
            format!("behind: up to seq {seq} of {lead}")
        }
        _ => "differs from the other copy".to_owned(),
    }
}

/// Makes `to` hold exactly the segments of `from`; segments rewritten and
/// removed.
fn mirror(from: &Path, from_segments: &[u64], to: &Path) -> io::Result<(u64, u64)> {
    let mut rewritten = 0;
    for &number in from_segments {
        let bytes = segment::read(&segment::path(from, number))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let target = segment::path(to, number);
        if segment::read(&target).ok().as_deref() != Some(&bytes[..]) {
            tq_atomic_file::replace(&target, &bytes).map_err(|(_, e)| e)?;
            rewritten += 1;
        }
    }
    let mut removed = 0;
    for number in segment::list(to)? {
        if !from_segments.contains(&number) {
            std::fs::remove_file(segment::path(to, number))?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(to)?;
    }
    Ok((rewritten, removed))
}

/// Locks (those of `locks` not held yet), reads, repairs and opens the
/// copies in `dirs`; the writer positioned at the head, holding the locks,
/// and the events to record first. A copy whose directory or lock cannot
/// be made or read is left out (the log runs on the other, and the next
/// open tries it again); one open to others, or locked by another
/// process, is refused.
pub(super) fn open_copies(
    dirs: &[PathBuf; AUDIT_COPIES],
    mut locks: [Option<FileLock>; AUDIT_COPIES],
    sled: &str,
    ledger_generation: u64,
    config: AuditConfig,
) -> Result<(Writer, Vec<AuditEvent>), OpenError> {
    let mut notes = Vec::new();
    let mut usable = [false; AUDIT_COPIES];
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(AUDIT_COPIES);
    for (copy, dir) in dirs.iter().enumerate() {
        if !take_lock(dir, copy, &mut locks)? {
            verdicts.push(Verdict {
                summary: verify::Summary::default(),
                bad: None,
            });
            continue;
        }
        let ready = match prepare_dir(dir) {
            Ok(ready) => ready,
            Err(OpenError::Unsafe(refused)) => return Err(OpenError::Unsafe(refused)),
            Err(error) => {
                tracing::error!(copy, %error, "audit log copy unusable");
                false
            }
        };
        if let Some(slot) = usable.get_mut(copy) {
            *slot = ready;
        }
        let mut verdict = verify::verify_dir(dir, |_, _, _| {});
        if ready {
            notes.extend(truncate_torn(dir, copy, &mut verdict));
        }
        verdicts.push(verdict);
    }
    let leader = (0..AUDIT_COPIES)
        .filter(|&copy| usable.get(copy).copied().unwrap_or(false))
        .max_by_key(|&copy| {
            let verdict = verdicts.get(copy);
            (
                verdict.is_some_and(|v| v.bad.is_none() && v.summary.head.is_some()),
                verdict.and_then(|v| v.summary.head).map(|(seq, _)| seq),
                std::cmp::Reverse(copy),
            )
        });
    let Some(leader) = leader else {
        // No drive takes the log now; every append tries again.
        tracing::error!("no audit log copy can be opened: nothing is recorded until one can");
        return Ok((
            detached(dirs, sled, config, AuditStats::default(), locks),
            notes,
        ));
    };
    let lead = verdicts.get(leader).cloned().unwrap_or(Verdict {
        summary: verify::Summary::default(),
        bad: None,
    });
    let Some(lead_dir) = dirs.get(leader) else {
        return Ok((
            detached(dirs, sled, config, AuditStats::default(), locks),
            notes,
        ));
    };

    let mut stats = AuditStats::default();
    for (copy, dir) in dirs.iter().enumerate() {
        if copy == leader || !usable.get(copy).copied().unwrap_or(false) {
            continue;
        }
        let Some(verdict) = verdicts.get(copy) else {
            continue;
        };
        match mirror(lead_dir, &lead.summary.segments, dir) {
            Ok((0, 0)) => {}
            Ok((rewritten, removed)) => {
                if let Some(repairs) = stats.copy_repairs.get_mut(copy) {
                    *repairs += 1;
                }
                let finding = finding(verdict, &lead);
                tracing::warn!(copy, %finding, rewritten, removed,
                    "audit log copy repaired from the other");
                notes.push(AuditEvent::CopyRepaired {
                    copy,
                    finding,
                    rewritten,
                    removed,
                });
            }
            Err(error) => {
                tracing::error!(copy, %error, "audit log copy could not be repaired");
                if let Some(slot) = usable.get_mut(copy) {
                    *slot = false;
                }
            }
        }
    }
    if let Some(bad) = &lead.bad {
        tracing::error!(copy = leader, %bad, "the audit log fails verification");
        notes.push(AuditEvent::LogDamaged {
            copy: leader,
            finding: bad.to_string(),
        });
    }

    let mut writer = detached(dirs, sled, config, stats, locks);
    match (lead.summary.segments.last(), lead.summary.head) {
        (Some(&newest), Some((seq, prev))) => {
            let bytes = match segment::read(&segment::path(lead_dir, newest)) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::error!(%error, "cannot read the newest audit segment");
                    return Ok((writer, notes));
                }
            };
            writer.head = ChainHead {
                segment: newest,
                oldest_kept: lead.summary.oldest_kept,
                segment_records: segment::lines(&bytes).lines.len() as u64,
                next_seq: seq.wrapping_add(1),
                prev,
            };
            for (copy, dir) in dirs.iter().enumerate() {
                if !usable.get(copy).copied().unwrap_or(false) {
                    continue;
                }
                remove_older(dir, writer.head.oldest_kept);
                let path = segment::path(dir, newest);
                match open_segment(&path).and_then(|file| Ok((file.metadata()?.len(), file))) {
                    Ok((len, file)) => {
                        if let Some(slot) = writer.copies.get_mut(copy) {
                            *slot = Some(LiveCopy { file, len });
                        }
                    }
                    Err(error) => {
                        tracing::error!(copy, %error, "cannot open the audit segment to append");
                    }
                }
            }
        }
        _ => {
            // Nothing on either drive: a new log from segment 0.
            for (copy, dir) in dirs.iter().enumerate() {
                if !usable.get(copy).copied().unwrap_or(false) {
                    continue;
                }
                for number in segment::list(dir).unwrap_or_default() {
                    let _ = std::fs::remove_file(segment::path(dir, number));
                }
                match create_segment(&segment::path(dir, 0)).and_then(|f| sync_dir(dir).map(|()| f))
                {
                    Ok(file) => {
                        if let Some(slot) = writer.copies.get_mut(copy) {
                            *slot = Some(LiveCopy { file, len: 0 });
                        }
                    }
                    Err(error) => tracing::error!(copy, %error, "cannot create the audit log"),
                }
            }
            let opening = AuditEvent::SegmentOpened {
                segment: 0,
                oldest_kept: 0,
                sled: sled.to_owned(),
            };
            notes.insert(0, opening);
            notes.insert(1, AuditEvent::LogCreated { ledger_generation });
        }
    }
    Ok((writer, notes))
}

/// A writer with no copy open yet, at the genesis.
fn detached(
    dirs: &[PathBuf; AUDIT_COPIES],
    sled: &str,
    config: AuditConfig,
    stats: AuditStats,
    locks: [Option<FileLock>; AUDIT_COPIES],
) -> Writer {
    Writer {
        locks,
        dirs: dirs.clone(),
        separate_drives: crate::mirror::on_separate_drives(dirs),
        sled: sled.to_owned(),
        config,
        copies: [None, None],
        head: ChainHead {
            segment: 0,
            oldest_kept: 0,
            segment_records: 0,
            next_seq: 0,
            prev: GENESIS,
        },
        stats,
        unwritten: Vec::new(),
        unwritten_records: 0,
    }
}

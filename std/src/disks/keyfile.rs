//! Where a disk's wrappings are kept: one file per disk in each ledger
//! directory (one per M.2 drive), `disk-key.<name>`, replaced atomically
//! (`tq-atomic-file`) and locked for the owning process.
//!
//! ```text
//! offset  len  field
//!      0    8  magic "TQDISKEY"
//!      8    1  format version (FORMAT_VERSION)
//!      9    1  number of wrappings n, 1..=MAX_WRAPPINGS
//!     10  68n  each: epoch (8 bytes, big-endian), nonce (12), sealed key and tag (48)
//!      -   32  SHA3-256 of everything before it
//! ```
//!
//! Reading takes every wrapping of every valid copy ([`KeyFiles::read`]):
//! after a crash between the copies' writes they may differ, and each
//! still holds a wrapping that opens, so the union is what to try. A copy
//! that fails a check is reported, never trusted. Nothing here holds a
//! key in the clear: the file is public bytes under the wrapping.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use sha3::{Digest, Sha3_256};
use tq_atomic_file::lock::{FileLock, LockError, lock_exclusive};
use tq_atomic_file::{WriteStep, replace};
use tq_core::ids::Epoch;

use super::wrap::{NONCE_LEN, SEALED_LEN, Wrapping};
use crate::ledger::LEDGER_COPIES;

/// First bytes of every key file.
pub const MAGIC: [u8; 8] = *b"TQDISKEY";

/// The layout above. A later layout bumps it.
pub const FORMAT_VERSION: u8 = 1;

/// Most wrappings one file holds: the old and the new during a re-wrap.
pub const MAX_WRAPPINGS: usize = 2;

const ENTRY_LEN: usize = 8 + NONCE_LEN + SEALED_LEN;
const CHECKSUM_LEN: usize = 32;

/// Largest valid file; reading stops past it.
pub const MAX_FILE_LEN: usize = 10 + MAX_WRAPPINGS * ENTRY_LEN + CHECKSUM_LEN;

/// The name of a disk's key file in a ledger directory.
pub fn file_name(disk: &str) -> String {
    format!("disk-key.{disk}")
}

/// Why a copy's bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corrupt {
    /// Not a key file, or a format this build does not read.
    Header,
    /// No wrapping, or more than [`MAX_WRAPPINGS`].
    Count,
    /// The length does not match the count.
    Length,
    /// The checksum does not match.
    Checksum,
}

/// The bytes of a file holding `wrappings` (1..=[`MAX_WRAPPINGS`]).
pub fn encode(wrappings: &[Wrapping]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_FILE_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(u8::try_from(wrappings.len()).unwrap_or(u8::MAX));
    for w in wrappings {
        out.extend_from_slice(&w.epoch.0.to_be_bytes());
        out.extend_from_slice(&w.nonce);
        out.extend_from_slice(&w.sealed);
    }
    let sum: [u8; CHECKSUM_LEN] = Sha3_256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// The wrappings in a file's bytes.
pub fn decode(bytes: &[u8]) -> Result<Vec<Wrapping>, Corrupt> {
    let (body, sum) = bytes
        .split_last_chunk::<CHECKSUM_LEN>()
        .ok_or(Corrupt::Length)?;
    let (header, entries) = body.split_first_chunk::<10>().ok_or(Corrupt::Length)?;
    let (magic, rest) = header.split_at(8);
    if magic != MAGIC || rest.first() != Some(&FORMAT_VERSION) {
        return Err(Corrupt::Header);
    }
    let count = usize::from(rest.get(1).copied().unwrap_or(0));
    if count == 0 || count > MAX_WRAPPINGS {
        return Err(Corrupt::Count);
    }
    if entries.len() != count * ENTRY_LEN {
        return Err(Corrupt::Length);
    }
    let expected: [u8; CHECKSUM_LEN] = Sha3_256::digest(body).into();
    // An integrity check of public bytes: no need for constant time.
    if &expected != sum {
        return Err(Corrupt::Checksum);
    }
    Ok(entries
        .chunks_exact(ENTRY_LEN)
        .filter_map(|entry| {
            let (epoch, rest) = entry.split_first_chunk::<8>()?;
            let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
            Some(Wrapping {
                epoch: Epoch(u64::from_be_bytes(*epoch)),
                nonce: *nonce,
                sealed: sealed.try_into().ok()?,
            })
        })
        .collect())
}

/// What reading one copy found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopyRead {
    /// Valid, with these wrappings.
    Valid(Vec<Wrapping>),
    /// No file in an existing directory.
    Absent,
    /// The bytes fail a check.
    Corrupt(Corrupt),
    /// Reading failed.
    Unreadable(ErrorKind),
}

/// What writing the copies achieved.
#[derive(Debug)]
pub struct WriteReport {
    /// Copies written.
    pub written: usize,
    /// The first failure, if any copy failed.
    pub failure: Option<(usize, WriteStep, io::Error)>,
}

/// One disk's key file in every ledger directory, locked for this process
/// while the value lives. A copy whose directory is missing at open (its
/// drive not mounted) is left out for the value's life, as a failed drive:
/// read as unreadable, never written.
pub struct KeyFiles {
    paths: [PathBuf; LEDGER_COPIES],
    /// Per copy, its lock; `None` for a copy left out.
    locks: [Option<FileLock>; LEDGER_COPIES],
}

impl KeyFiles {
    /// Locks `disk`'s key files in `dirs` (the ledger's directories).
    /// Fails only if another process holds one (or a lock file cannot be
    /// made in a directory that is there).
    pub fn open(dirs: &[PathBuf; LEDGER_COPIES], disk: &str) -> Result<Self, LockError> {
        let paths = dirs.clone().map(|dir| dir.join(file_name(disk)));
        let mut locks: [Option<FileLock>; LEDGER_COPIES] = Default::default();
        for (lock, path) in locks.iter_mut().zip(&paths) {
            match lock_exclusive(path) {
                Ok(held) => *lock = Some(held),
                Err(LockError::Io(_, e))
                    if e.kind() == ErrorKind::NotFound
                        && !tq_atomic_file::directory(path).exists() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self { paths, locks })
    }

    /// The copies' paths.
    pub fn paths(&self) -> &[PathBuf; LEDGER_COPIES] {
        &self.paths
    }

    fn copies(&self) -> impl Iterator<Item = (usize, &PathBuf, bool)> {
        self.paths
            .iter()
            .zip(&self.locks)
            .enumerate()
            .map(|(copy, (path, lock))| (copy, path, lock.is_some()))
    }

    /// Reads every copy. Blocking.
    pub fn read(&self) -> [CopyRead; LEDGER_COPIES] {
        let mut out = [const { CopyRead::Unreadable(ErrorKind::NotFound) }; LEDGER_COPIES];
        for ((_, path, held), slot) in self.copies().zip(out.iter_mut()) {
            if held {
                *slot = read_copy(path);
            }
        }
        out
    }

    /// Replaces every copy with `wrappings`, copy 0 first. Blocking.
    pub fn write(&self, wrappings: &[Wrapping]) -> WriteReport {
        let bytes = encode(wrappings);
        let mut report = WriteReport {
            written: 0,
            failure: None,
        };
        for (copy, path, held) in self.copies() {
            let result = if held {
                replace(path, &bytes)
            } else {
                Err((
                    WriteStep::Create,
                    io::Error::new(ErrorKind::NotFound, "its directory was missing at start"),
                ))
            };
            match result {
                Ok(()) => report.written += 1,
                Err((step, error)) => {
                    report.failure.get_or_insert((copy, step, error));
                }
            }
        }
        report
    }

    /// Removes every copy (an expunged sled's keys). Blocking. Absent
    /// copies are fine; the first other failure is returned after trying
    /// them all.
    pub fn remove(&self) -> io::Result<()> {
        let mut first = Ok(());
        for (_, path, _) in self.copies() {
            let removed = fs::remove_file(path).or_else(|e| match e.kind() {
                ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            });
            let synced = removed.and_then(|()| {
                match fs::File::open(tq_atomic_file::directory(path)) {
                    Ok(dir) => dir.sync_all(),
                    // No directory: nothing of it to remove.
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                }
            });
            if first.is_ok() {
                first = synced;
            }
        }
        first
    }
}

fn read_copy(path: &Path) -> CopyRead {
    use std::io::Read as _;
    let file = match fs::File::open(path) {
        Ok(file) => file,
        // No file in its directory: absent. No directory (a drive not
        // mounted) is not "no key": it must not let a new key be made.
        Err(e) if e.kind() == ErrorKind::NotFound && tq_atomic_file::directory(path).is_dir() => {
            return CopyRead::Absent;
        }
        Err(e) => return CopyRead::Unreadable(e.kind()),
    };
    let mut bytes = Vec::with_capacity(MAX_FILE_LEN);
    // One byte past the largest valid file tells a long one apart.
    match file.take(MAX_FILE_LEN as u64 + 1).read_to_end(&mut bytes) {
        Ok(_) => match decode(&bytes) {
            Ok(wrappings) => CopyRead::Valid(wrappings),
            Err(reason) => CopyRead::Corrupt(reason),
        },
        Err(e) => CopyRead::Unreadable(e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapping(epoch: u64, byte: u8) -> Wrapping {
        Wrapping {
            epoch: Epoch(epoch),
            nonce: [byte; NONCE_LEN],
            sealed: [byte; SEALED_LEN],
        }
    }

    #[test]
    fn files_round_trip_and_every_bad_byte_is_caught() {
        let ws = vec![wrapping(3, 1), wrapping(4, 2)];
        let bytes = encode(&ws);
        assert_eq!(bytes.len(), MAX_FILE_LEN);
        assert_eq!(decode(&bytes).unwrap(), ws);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "length {len}");
        }
        assert_eq!(decode(&encode(&[])), Err(Corrupt::Count));
    }

    #[test]
    fn copies_are_read_apart_and_removed() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let paths = [dirs[0].path().to_owned(), dirs[1].path().to_owned()];
        let files = KeyFiles::open(&paths, "data0").unwrap();
        assert!(KeyFiles::open(&paths, "data0").is_err(), "locked");
        assert_eq!(files.read(), [CopyRead::Absent, CopyRead::Absent]);
        let report = files.write(&[wrapping(2, 9)]);
        assert_eq!(report.written, 2);
        fs::write(&files.paths()[1], b"junk").unwrap();
        let read = files.read();
        assert_eq!(read[0], CopyRead::Valid(vec![wrapping(2, 9)]));
        assert!(matches!(read[1], CopyRead::Corrupt(_)));
        files.remove().unwrap();
        assert_eq!(files.read(), [CopyRead::Absent, CopyRead::Absent]);
        // A drive not mounted is not a disk without a key: that copy is
        // unreadable, and left out.
        std::fs::remove_dir_all(&paths[1]).unwrap();
        assert_eq!(
            files.read(),
            [CopyRead::Absent, CopyRead::Unreadable(ErrorKind::NotFound)]
        );
        let half = KeyFiles::open(&paths, "other").unwrap();
        assert_eq!(
            half.read(),
            [CopyRead::Absent, CopyRead::Unreadable(ErrorKind::NotFound)]
        );
        let report = half.write(&[wrapping(3, 1)]);
        assert_eq!(report.written, 1);
        assert_eq!(report.failure.map(|f| f.0), Some(1));
        assert!(!paths[1].exists(), "nothing made where the drive was");
    }
}

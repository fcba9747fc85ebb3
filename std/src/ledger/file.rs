//! Blocking file operations on one ledger copy: a bounded read, and the
//! atomic replace of `tq-atomic-file` (temporary file, fsync, rename,
//! fsync of the directory).
//!
//! Only the ledger's blocking thread (and `init`) calls these. They never
//! create a directory: a copy's directory is on its drive, and a missing
//! one is a fault to report, not a place to start afresh.
//!
//! Files are only ever opened without following a symbolic link, and the
//! temporary file is created exclusively with mode 0600 (see
//! [`super::access`]): a link or file planted at its name makes the write
//! fail instead of sending the ledger's bytes elsewhere.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use zeroize::Zeroizing;

pub(super) use tq_atomic_file::{directory, remove_leftover, replace};

use super::access::{self, AccessProblem, Unsafe};
use super::format::MAX_COPY_LEN;

/// What reading a copy found.
pub(super) enum ReadCopy {
    /// Its directory exists and holds no file of that name.
    Absent,
    /// Its directory does not exist (a drive not mounted, say).
    NoDirectory,
    /// The file's bytes, up to one byte past the largest valid copy.
    Bytes(Zeroizing<Vec<u8>>),
    /// Reading failed.
    Failed(io::Error),
    /// A symbolic link, not a regular file, or open to others: refused.
    Unsafe(Unsafe),
}

pub(super) fn read(path: &Path) -> ReadCopy {
    let opened = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    );
    let file = match opened {
        Ok(fd) => File::from(fd),
        Err(rustix::io::Errno::NOENT) => {
            return if directory(path).is_dir() {
                ReadCopy::Absent
            } else {
                ReadCopy::NoDirectory
            };
        }
        Err(rustix::io::Errno::LOOP) => {
            return ReadCopy::Unsafe(Unsafe {
                path: path.to_owned(),
                problem: AccessProblem::Symlink,
            });
        }
        Err(e) => return ReadCopy::Failed(e.into()),
    };
    // Checked on the open descriptor, so what is checked is what is read.
    match file.metadata() {
        Ok(metadata) => {
            if let Err(refused) = access::check(path, &metadata, false) {
                return ReadCopy::Unsafe(refused);
            }
        }
        Err(e) => return ReadCopy::Failed(e),
    }
    // One byte more than any valid copy tells "too long" from "exactly full"
    // without reading an arbitrarily large file.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_COPY_LEN + 1));
    match file.take(MAX_COPY_LEN as u64 + 1).read_to_end(&mut bytes) {
        Ok(_) => ReadCopy::Bytes(bytes),
        Err(e) => ReadCopy::Failed(e),
    }
}

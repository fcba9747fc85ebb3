//! Blocking file operations on one ledger copy: a bounded read and an
//! atomic replace (temporary file, fsync, rename, fsync of the directory).
//!
//! Only the ledger's blocking thread (and `init`) calls these. They never
//! create a directory: a copy's directory is on its drive, and a missing
//! one is a fault to report, not a place to start afresh.
//!
//! Files are only ever opened without following a symbolic link, and the
//! temporary file is created exclusively with mode 0600 (see
//! [`super::access`]): a link or file planted at its name makes the write
//! fail instead of sending the ledger's bytes elsewhere.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use zeroize::Zeroizing;

use super::access::{self, AccessProblem, FILE_MODE, Unsafe};
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

/// The step of an atomic replace that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating the temporary file.
    Create,
    /// Writing the temporary file.
    Write,
    /// Flushing the temporary file to the drive.
    SyncFile,
    /// Renaming the temporary file over the copy.
    Rename,
    /// Flushing the directory entry to the drive.
    SyncDirectory,
}

impl std::fmt::Display for WriteStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Create => "create the temporary file",
            Self::Write => "write the temporary file",
            Self::SyncFile => "fsync the temporary file",
            Self::Rename => "rename the temporary file",
            Self::SyncDirectory => "fsync the directory",
        })
    }
}

/// Where the temporary file of a copy lives: beside it, so the rename stays
/// on one file system.
pub(super) fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(super) fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
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

/// Replaces the file at `path` with `bytes` so that after a crash at any
/// point it holds either its old or its new bytes (temporary file beside
/// it, fsync, rename, fsync of the directory). Blocking. Also keeps the
/// Nexus driver's state file.
///
/// The file ends with mode 0600 (less under a stricter umask). The caller
/// must hold the file's lock ([`super::lock`]): a leftover temporary file
/// is removed first, which would break another writer's replace.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), (WriteStep, io::Error)> {
    let temp = temp_path(path);
    remove_leftover(path).map_err(|e| (WriteStep::Create, e))?;
    let result = write_temp(&temp, bytes).and_then(|()| {
        fs::rename(&temp, path).map_err(|e| (WriteStep::Rename, e))?;
        File::open(directory(path))
            .and_then(|dir| dir.sync_all())
            .map_err(|e| (WriteStep::SyncDirectory, e))
    });
    if matches!(result, Err((step, _)) if step != WriteStep::SyncDirectory) {
        // Best effort: the next write removes a leftover first anyway.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp(temp: &Path, bytes: &[u8]) -> Result<(), (WriteStep, io::Error)> {
    // Exclusive and without following a link: whatever sits at this name
    // now was put there by someone else since the leftover was removed.
    let fd = rustix::fs::open(
        temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(|e| (WriteStep::Create, e.into()))?;
    let mut file = File::from(fd);
    file.write_all(bytes).map_err(|e| (WriteStep::Write, e))?;
    file.sync_all().map_err(|e| (WriteStep::SyncFile, e))
}

/// Removes a temporary file a crash left behind (a link itself, never its
/// target); absence is fine.
pub(super) fn remove_leftover(path: &Path) -> io::Result<bool> {
    match fs::remove_file(temp_path(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

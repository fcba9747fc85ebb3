//! Blocking file operations on one ledger copy: a bounded read and an
//! atomic replace (temporary file, fsync, rename, fsync of the directory).
//!
//! Only the ledger's blocking thread calls these. They never create a
//! directory: a copy's directory is its drive's mount point, and a missing
//! one is a fault to report, not a place to start afresh.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

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

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

pub(super) fn read(path: &Path) -> ReadCopy {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return if directory(path).is_dir() {
                ReadCopy::Absent
            } else {
                ReadCopy::NoDirectory
            };
        }
        Err(e) => return ReadCopy::Failed(e),
    };
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
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), (WriteStep, io::Error)> {
    let temp = temp_path(path);
    let result = write_temp(&temp, bytes).and_then(|()| {
        fs::rename(&temp, path).map_err(|e| (WriteStep::Rename, e))?;
        File::open(directory(path))
            .and_then(|dir| dir.sync_all())
            .map_err(|e| (WriteStep::SyncDirectory, e))
    });
    if matches!(result, Err((step, _)) if step != WriteStep::SyncDirectory) {
        // Best effort: a leftover is overwritten by the next write anyway.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp(temp: &Path, bytes: &[u8]) -> Result<(), (WriteStep, io::Error)> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(|e| (WriteStep::Create, e))?;
    file.write_all(bytes).map_err(|e| (WriteStep::Write, e))?;
    file.sync_all().map_err(|e| (WriteStep::SyncFile, e))
}

/// Removes a temporary file a crash left behind; absence is fine.
pub(super) fn remove_leftover(path: &Path) -> io::Result<bool> {
    match fs::remove_file(temp_path(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

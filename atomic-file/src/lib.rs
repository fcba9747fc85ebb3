//! `tq-atomic-file`: a file replaced atomically, and a lock so one process
//! at a time writes it. The sled's ledger copies (tq-std) and the Nexus
//! driver's state file (tq-driver) are both kept this way; this crate is
//! all either takes from the other's world, so the driver does not depend
//! on the host runtime.
//!
//! - [`replace`]: temporary file beside the target, fsync, rename, fsync
//!   of the directory; after a crash at any point the file holds its old
//!   or its new bytes.
//! - [`lock`]: an exclusive `flock` on `<name>.lock` beside the file.
//! - [`private`]: reading a key file written this way, refused if it is
//!   a link, another user's, or open to group or others.
//!
//! Every file this crate creates is mode [`FILE_MODE`] (0600: the
//! process user's alone) and is opened without following a symbolic
//! link; the temporary file is created exclusively, so a link or file
//! planted at its name makes the write fail instead of sending the bytes
//! elsewhere. Nothing here creates a directory: a missing one is the
//! caller's fault to report.

pub mod lock;
pub mod private;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// The mode of every file created here: the process user's alone.
pub const FILE_MODE: u32 = 0o600;

/// The step of an atomic replace that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStep {
    /// Creating the temporary file.
    Create,
    /// Writing the temporary file.
    Write,
    /// Flushing the temporary file to the drive.
    SyncFile,
    /// Renaming the temporary file over the target.
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

/// Where the temporary file of `path` lives: beside it (`<name>.tmp`), so
/// the rename stays on one file system.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The directory `path` is in (`.` for a bare file name).
pub fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces the file at `path` with `bytes` so that after a crash at any
/// point it holds either its old or its new bytes (temporary file beside
/// it, fsync, rename, fsync of the directory). Blocking.
///
/// The file ends with mode [`FILE_MODE`] (less under a stricter umask).
/// The caller must hold the file's lock ([`lock::lock_exclusive`]): a
/// leftover temporary file is removed first, which would break another
/// writer's replace.
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

/// Removes the temporary file of `path` that a crash left behind (a link
/// itself, never its target); whether there was one. Absence is fine.
pub fn remove_leftover(path: &Path) -> io::Result<bool> {
    match fs::remove_file(temp_path(path)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn replace_writes_a_private_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !FILE_MODE, 0, "mode {mode:o}");
        assert!(!temp_path(&path).exists());
    }

    #[test]
    fn a_link_planted_at_the_temporary_name_is_removed_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let elsewhere = dir.path().join("elsewhere");
        fs::write(&elsewhere, b"untouched").unwrap();
        symlink(&elsewhere, temp_path(&path)).unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(fs::read(&elsewhere).unwrap(), b"untouched");
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let held = lock::lock_exclusive(&path).unwrap();
        assert!(matches!(
            lock::lock_exclusive(&path),
            Err(lock::LockError::Held(_))
        ));
        drop(held);
        lock::lock_exclusive(&path).unwrap();
    }
}

//! One process per file: an exclusive `flock` on a lock file beside the
//! file it guards, held for as long as the returned [`FileLock`] lives.
//!
//! The guarded file itself cannot carry the lock: every write replaces it
//! by a rename, and a lock sits on the old inode. The lock file is never
//! removed (removing it would let two processes lock two different
//! inodes); it holds nothing. The kernel drops the lock when the process
//! ends, however it ends.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, Mode, OFlags};

use crate::FILE_MODE;

/// How long a lock held by someone else is waited for before giving up:
/// enough for an owner that is ending (its last write finishing, its
/// process exiting) to let go, short enough to refuse a second daemon
/// promptly.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

const RETRY_EVERY: Duration = Duration::from_millis(10);

/// An exclusive lock, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    // Closing the descriptor releases the lock.
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process (or another owner in this one) holds it.
    Held(PathBuf),
    /// The lock file could not be opened or locked.
    Io(PathBuf, io::Error),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Held(path) => write!(
                f,
                "in use by another process (it holds the lock {})",
                path.display()
            ),
            Self::Io(path, e) => write!(f, "cannot lock {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// The lock file guarding `path`: beside it, named `<name>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the exclusive lock guarding `path` (see [`lock_path`]), waiting
/// up to [`LOCK_WAIT`] for another owner to let go. Blocking.
pub fn lock_exclusive(path: &Path) -> Result<FileLock, LockError> {
    let lock = lock_path(path);
    let io_error = |e: io::Error| LockError::Io(lock.clone(), e);
    // Never through a symlink: a planted one must not make us create or
    // truncate a file elsewhere.
    let fd = rustix::fs::open(
        &lock,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map_err(|e| io_error(e.into()))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                return Ok(FileLock {
                    _file: File::from(fd),
                    path: lock,
                });
            }
            Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                std::thread::sleep(RETRY_EVERY);
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(LockError::Held(lock)),
            Err(e) => return Err(io_error(e.into())),
        }
    }
}

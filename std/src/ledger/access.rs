//! Who may reach a ledger's files: only the process's own user. Copies
//! and temporary files are mode 0600, their directories 0700, and all of
//! them are owned by the process's effective uid.
//!
//! Anything wider is refused rather than repaired: a copy that was open
//! to others may already have leaked its shares, and tightening it
//! silently would hide that from the operator. The refusal names the path
//! and what is wrong, so the fix is one `chmod` or `chown` once checked.

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Mode of a ledger copy, its temporary and lock files (the one every
/// file `tq-atomic-file` creates).
pub use tq_atomic_file::FILE_MODE;

/// Mode of a ledger directory.
pub const DIRECTORY_MODE: u32 = 0o700;

/// Permission bits for the group and others: none may be set.
const GROUP_AND_OTHERS: u32 = 0o077;

/// What is wrong with a path's ownership or permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessProblem {
    /// Group or others have some access (the permission bits found).
    OpenToOthers {
        /// The permission bits (`mode & 0o7777`).
        mode: u32,
    },
    /// Owned by another user than the process's effective uid.
    ForeignOwner {
        /// The owner found.
        owner: u32,
        /// The process's effective uid.
        euid: u32,
    },
    /// A symbolic link where a file or directory was expected.
    Symlink,
    /// Not a regular file (for a copy) or not a directory (for a drive).
    WrongKind,
}

/// A ledger path refused for its ownership or permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsafe {
    /// The path.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: AccessProblem,
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.problem {
            AccessProblem::OpenToOthers { mode } => write!(
                f,
                "{path} has mode {mode:04o}, open to other users (want {FILE_MODE:04o} for a \
                 file, {DIRECTORY_MODE:04o} for a directory; check who read it before tightening it)"
            ),
            AccessProblem::ForeignOwner { owner, euid } => write!(
                f,
                "{path} is owned by uid {owner}, not by this process's uid {euid}"
            ),
            AccessProblem::Symlink => write!(f, "{path} is a symbolic link"),
            AccessProblem::WrongKind => {
                write!(f, "{path} is not a regular file or directory as expected")
            }
        }
    }
}

impl std::error::Error for Unsafe {}

fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks the metadata of a ledger file (copy or leftover) or directory:
/// of the right kind, owned by this process's user, closed to others.
pub(crate) fn check(path: &Path, metadata: &Metadata, directory: bool) -> Result<(), Unsafe> {
    let refuse = |problem| {
        Err(Unsafe {
            path: path.to_owned(),
            problem,
        })
    };
    if metadata.file_type().is_symlink() {
        return refuse(AccessProblem::Symlink);
    }
    if (directory && !metadata.is_dir()) || (!directory && !metadata.is_file()) {
        return refuse(AccessProblem::WrongKind);
    }
    let euid = effective_uid();
    if metadata.uid() != euid {
        return refuse(AccessProblem::ForeignOwner {
            owner: metadata.uid(),
            euid,
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_AND_OTHERS != 0 {
        return refuse(AccessProblem::OpenToOthers { mode });
    }
    Ok(())
}

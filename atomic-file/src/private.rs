//! Reading a secret file that must be its owner's alone (a key): a
//! regular file, not a link, owned by this process's effective uid, no
//! access for group or others, exactly as long as the caller expects.
//!
//! Anything else is refused, not repaired: a key that was open to others
//! may have leaked, and tightening it silently would hide that from the
//! operator. [`replace`](crate::replace) writes such files.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

/// Permission bits for the group and others: none may be set.
const GROUP_AND_OTHERS: u32 = 0o077;

/// Why a private file was not read.
#[derive(Debug)]
pub enum PrivateFileError {
    /// No file at the path.
    Missing(PathBuf),
    /// A symbolic link at the path.
    Symlink(PathBuf),
    /// Not a regular file.
    NotAFile(PathBuf),
    /// Owned by another user than the process's effective uid.
    ForeignOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The process's effective uid.
        euid: u32,
    },
    /// Group or others have some access.
    OpenToOthers {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not the expected length.
    WrongLength {
        /// The file.
        path: PathBuf,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: u64,
    },
    /// Opening or reading it failed.
    Io(PathBuf, io::Error),
}

impl fmt::Display for PrivateFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(path) => write!(f, "{} does not exist", path.display()),
            Self::Symlink(path) => write!(f, "{} is a symbolic link", path.display()),
            Self::NotAFile(path) => write!(f, "{} is not a regular file", path.display()),
            Self::ForeignOwner { path, owner, euid } => write!(
                f,
                "{} is owned by uid {owner}, not by this process's uid {euid}",
                path.display()
            ),
            Self::OpenToOthers { path, mode } => write!(
                f,
                "{} has mode {mode:04o}, open to other users (want {:04o}; check who read it \
                 before tightening it)",
                path.display(),
                crate::FILE_MODE
            ),
            Self::WrongLength {
                path,
                expected,
                found,
            } => write!(f, "{} holds {found} bytes, not {expected}", path.display()),
            Self::Io(path, e) => write!(f, "cannot read {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for PrivateFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Fills `buf` with the file at `path`, which must hold exactly
/// `buf.len()` bytes and be this process user's alone (see the module
/// doc). Never follows a link. Blocking.
pub fn read_private(path: &Path, buf: &mut [u8]) -> Result<(), PrivateFileError> {
    let owned = || path.to_owned();
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => PrivateFileError::Missing(owned()),
        // O_NOFOLLOW on a link.
        rustix::io::Errno::LOOP => PrivateFileError::Symlink(owned()),
        e => PrivateFileError::Io(owned(), e.into()),
    })?;
    let file = File::from(fd);
    let metadata = file
        .metadata()
        .map_err(|e| PrivateFileError::Io(owned(), e))?;
    if !metadata.is_file() {
        return Err(PrivateFileError::NotAFile(owned()));
    }
    let euid = rustix::process::geteuid().as_raw();
    if metadata.uid() != euid {
        return Err(PrivateFileError::ForeignOwner {
            path: owned(),
            owner: metadata.uid(),
            euid,
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_AND_OTHERS != 0 {
        return Err(PrivateFileError::OpenToOthers {
            path: owned(),
            mode,
        });
    }
    let wrong_length = |found| PrivateFileError::WrongLength {
        path: owned(),
        expected: buf.len(),
        found,
    };
    if metadata.len() != buf.len() as u64 {
        return Err(wrong_length(metadata.len()));
    }
    let mut reader = file.take(buf.len() as u64);
    reader
        .read_exact(buf)
        .map_err(|e| PrivateFileError::Io(owned(), e))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    #[test]
    fn a_private_file_is_read_and_anything_wider_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        crate::replace(&path, &[7; 32]).unwrap();
        let mut buf = [0; 32];
        read_private(&path, &mut buf).unwrap();
        assert_eq!(buf, [7; 32]);

        let mut short = [0; 31];
        assert!(matches!(
            read_private(&path, &mut short),
            Err(PrivateFileError::WrongLength { found: 32, .. })
        ));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = read_private(&path, &mut buf).unwrap_err();
        assert!(
            matches!(error, PrivateFileError::OpenToOthers { mode: 0o640, .. }),
            "{error}"
        );

        let link = dir.path().join("link");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        symlink(&path, &link).unwrap();
        assert!(matches!(
            read_private(&link, &mut buf),
            Err(PrivateFileError::Symlink(_))
        ));
        assert!(matches!(
            read_private(&dir.path().join("none"), &mut buf),
            Err(PrivateFileError::Missing(_))
        ));
        assert!(matches!(
            read_private(dir.path(), &mut buf),
            Err(PrivateFileError::NotAFile(_)) | Err(PrivateFileError::OpenToOthers { .. })
        ));
    }
}

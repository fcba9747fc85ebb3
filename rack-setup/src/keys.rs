//! The key files of Nexus's authority (tq-core's `authority`): Nexus's
//! authority key, beside its state file, and each sled's request key,
//! named in the sled's configuration.
//!
//! - The authority key file holds the key's 32 bytes.
//! - A sled's request key file holds the rack id the key was derived for
//!   (16 bytes), then the key (32 bytes): a sled that has not joined a
//!   configuration yet knows its rack from it.
//!
//! Both are written atomically, mode 0600 (`tq-atomic-file`), and read
//! only if they are a regular file of this user's, closed to group and
//! others, of exactly their length ([`tq_atomic_file::private`]): a key
//! that was open to others may have leaked, so it is refused, not fixed.

use std::fmt;
use std::path::{Path, PathBuf};

use getrandom::SysRng;
use tq_atomic_file::WriteStep;
use tq_atomic_file::lock::{LockError, lock_exclusive};
use tq_atomic_file::private::{PrivateFileError, read_private};
use tq_core::authority::{KEY_LEN, NexusAuthorityKey, SledRequestKey};
use tq_core::ids::RackId;
use zeroize::Zeroizing;

/// Bytes of an authority key file.
pub const AUTHORITY_KEY_FILE_LEN: usize = KEY_LEN;

/// Bytes of a sled request key file: the rack id, then the key.
pub const SLED_KEY_FILE_LEN: usize = 16 + KEY_LEN;

/// Why a key file could not be made, written or read.
#[derive(Debug)]
pub enum KeyFileError {
    /// The system's random source failed.
    Random,
    /// The key could not be derived (a platform id the core cannot
    /// encode).
    Derive,
    /// Another process holds the file's lock.
    Locked(LockError),
    /// Writing the file failed.
    Write(PathBuf, WriteStep, std::io::Error),
    /// A file is already there (a key is never overwritten: sleds may
    /// hold keys derived from it).
    Exists(PathBuf),
    /// Reading it was refused or failed.
    Read(PrivateFileError),
    /// The blocking task reading it did not finish.
    Interrupted,
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random => f.write_str("the system's random source failed"),
            Self::Derive => f.write_str("the sled's key cannot be derived"),
            Self::Locked(_) => f.write_str("locked"),
            Self::Write(path, step, _) => write!(f, "{}: cannot {step}", path.display()),
            Self::Exists(path) => write!(
                f,
                "{} exists already (a key is never overwritten)",
                path.display()
            ),
            Self::Read(e) => write!(f, "{e}"),
            Self::Interrupted => f.write_str("reading the key file was interrupted"),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Locked(e) => Some(e),
            Self::Write(_, _, e) => Some(e),
            Self::Read(e) => std::error::Error::source(e),
            Self::Random | Self::Derive | Self::Exists(_) | Self::Interrupted => None,
        }
    }
}

/// A fresh authority key from the system's random source.
pub fn new_authority_key() -> Result<NexusAuthorityKey, KeyFileError> {
    NexusAuthorityKey::generate(&mut SysRng).map_err(|_| KeyFileError::Random)
}

/// The request key of sled `sled` of rack `rack_id`, derived from
/// `authority`.
pub fn sled_key(
    authority: &NexusAuthorityKey,
    rack_id: RackId,
    sled: &tq_core::ids::PlatformId,
) -> Result<SledRequestKey, KeyFileError> {
    authority
        .sled_key(rack_id, sled)
        .map_err(|_| KeyFileError::Derive)
}

/// Writes `bytes` to a new key file at `path` (atomically, mode 0600,
/// under its lock); refuses if one is there.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    let _lock = lock_exclusive(path).map_err(KeyFileError::Locked)?;
    if path.symlink_metadata().is_ok() {
        return Err(KeyFileError::Exists(path.to_owned()));
    }
    tq_atomic_file::replace(path, bytes)
        .map_err(|(step, e)| KeyFileError::Write(path.to_owned(), step, e))
}

/// Writes `key` to a new authority key file at `path`.
pub fn write_authority_key(path: &Path, key: &NexusAuthorityKey) -> Result<(), KeyFileError> {
    write_new(path, key.expose_bytes())
}

/// Reads the authority key file at `path`.
pub fn read_authority_key(path: &Path) -> Result<NexusAuthorityKey, KeyFileError> {
    let mut bytes = Zeroizing::new([0u8; AUTHORITY_KEY_FILE_LEN]);
    read_private(path, &mut *bytes).map_err(KeyFileError::Read)?;
    Ok(NexusAuthorityKey::from_bytes(*bytes))
}

/// Writes `key` to a new sled request key file at `path`.
pub fn write_sled_key(path: &Path, key: &SledRequestKey) -> Result<(), KeyFileError> {
    let mut bytes = Zeroizing::new([0u8; SLED_KEY_FILE_LEN]);
    let (rack, secret) = bytes.split_at_mut(16);
    rack.copy_from_slice(&key.rack_id().0);
    secret.copy_from_slice(key.expose_bytes());
    write_new(path, &*bytes)
}

/// Reads the sled request key file at `path`.
pub fn read_sled_key(path: &Path) -> Result<SledRequestKey, KeyFileError> {
    let mut bytes = Zeroizing::new([0u8; SLED_KEY_FILE_LEN]);
    read_private(path, &mut *bytes).map_err(KeyFileError::Read)?;
    let mut rack = [0u8; 16];
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let (r, k) = bytes.split_at(16);
    rack.copy_from_slice(r);
    key.copy_from_slice(k);
    Ok(SledRequestKey::from_bytes(RackId(rack), *key))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn key_files_round_trip_private_and_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let authority = new_authority_key().unwrap();
        let path = dir.path().join("nexus.json.authority-key");
        write_authority_key(&path, &authority).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        let read = read_authority_key(&path).unwrap();
        assert_eq!(read.expose_bytes(), authority.expose_bytes());
        assert!(matches!(
            write_authority_key(&path, &new_authority_key().unwrap()),
            Err(KeyFileError::Exists(_))
        ));
        assert_eq!(
            read_authority_key(&path).unwrap().expose_bytes(),
            authority.expose_bytes()
        );

        let rack = RackId([9; 16]);
        let sled = crate::sled_id(2).unwrap();
        let key = sled_key(&authority, rack, &sled).unwrap();
        let sled_path = dir.path().join("request.key");
        write_sled_key(&sled_path, &key).unwrap();
        let back = read_sled_key(&sled_path).unwrap();
        assert_eq!(back.rack_id(), rack);
        assert_eq!(back.expose_bytes(), key.expose_bytes());

        std::fs::set_permissions(&sled_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_sled_key(&sled_path),
            Err(KeyFileError::Read(PrivateFileError::OpenToOthers { .. }))
        ));
    }
}

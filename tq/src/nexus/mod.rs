//! Nexus over HTTP: the rack file it drives a rack from ([`rack_file`]),
//! the Nexus driver's way to reach a sled over its API ([`http`]), and
//! Nexus's authority key, kept beside its state file
//! ([`authority_key_path`]).
//! `tq nexus ...` and `tq demo` drive racks with `tq_driver::Driver` over
//! [`directory`]; `tq nexus show` and `tq status` read its decisions with
//! [`read_state`].

pub mod http;
pub mod rack_file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tq_core::authority::NexusAuthorityKey;
use tq_core::ids::{Threshold, ThresholdOutOfRange};
use tq_driver::store::StoreError;
use tq_driver::{SledMap, StateFile};
use tq_nexus::{Nexus, RestoreError, Timing};
use tq_rack_setup::keys::{self, KeyFileError};

use crate::https::RackCa;
use http::{ClientError, HttpSled};
use rack_file::RackFile;

/// The sleds of `rack` Nexus reaches directly (those with an API
/// address), each verified under `rack_ca` as the sled the file names,
/// each request bounded by `timeout`.
pub fn directory(
    rack: &RackFile,
    rack_ca: &RackCa,
    timeout: Duration,
) -> Result<SledMap<HttpSled>, ClientError> {
    let map = SledMap::new();
    for sled in &rack.sleds {
        if let Some(addr) = sled.api {
            let api = HttpSled::new(addr, sled.id.clone(), rack_ca, timeout)?;
            map.insert(sled.id.clone(), api);
        }
    }
    Ok(map)
}

/// Where Nexus's authority key is kept when not named: beside its state
/// file, `<state file name>.authority-key` (as its lock is
/// `<name>.lock`).
pub fn authority_key_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".authority-key");
    state.with_file_name(name)
}

/// Nexus's authority key could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("authority key {}", .path.display())]
pub struct AuthorityKeyError {
    /// The key file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: KeyFileError,
}

/// Reads Nexus's authority key at `path` (refused unless it is this
/// user's alone). Blocking.
pub fn read_authority_key(path: &Path) -> Result<NexusAuthorityKey, AuthorityKeyError> {
    keys::read_authority_key(path).map_err(|source| AuthorityKeyError {
        path: path.to_owned(),
        source,
    })
}

/// Makes Nexus's authority key at `path` (mode 0600, atomically) unless a
/// key is there already, which is kept (rack setup may have made it and
/// handed sleds their keys); the key, and whether it was made now.
/// Blocking.
pub fn make_authority_key(path: &Path) -> Result<(NexusAuthorityKey, bool), AuthorityKeyError> {
    let failed = |source| AuthorityKeyError {
        path: path.to_owned(),
        source,
    };
    if path.symlink_metadata().is_ok() {
        return Ok((read_authority_key(path)?, false));
    }
    let key = keys::new_authority_key().map_err(failed)?;
    keys::write_authority_key(path, &key).map_err(failed)?;
    Ok((key, true))
}

/// No default threshold for this many members.
#[derive(Debug, thiserror::Error)]
pub enum MajorityError {
    /// A majority does not fit a threshold's type.
    #[error("{0} members are too many")]
    TooMany(usize),
    /// The core refuses the majority as a threshold.
    #[error(transparent)]
    OutOfRange(#[from] ThresholdOutOfRange),
}

/// The threshold of a configuration of `members` members when none is
/// given: a majority, `members / 2 + 1`, as LRTQ had.
pub fn majority(members: usize) -> Result<Threshold, MajorityError> {
    let k = u8::try_from(members / 2 + 1).map_err(|_| MajorityError::TooMany(members))?;
    Ok(Threshold::new(k)?)
}

/// Why Nexus's state could not be read from its file.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file could not be read or decoded, or is locked.
    #[error("{}", .path.display())]
    Store {
        /// The state file.
        path: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// There is none.
    #[error("no Nexus state file at {}", .0.display())]
    Missing(PathBuf),
    /// The machine refuses the state it holds.
    #[error("{}: the stored state is refused", .path.display())]
    Refused {
        /// The state file.
        path: PathBuf,
        /// Why.
        #[source]
        source: RestoreError,
    },
}

/// Nexus as its state file at `path` left it, read without its lock (so
/// while another command drives): for showing, not for driving.
pub fn read_state(path: &Path, timing: Timing) -> Result<Nexus, StateFileError> {
    let loaded = StateFile::new(path)
        .load()
        .map_err(|source| StateFileError::Store {
            path: path.to_owned(),
            source,
        })?
        .ok_or_else(|| StateFileError::Missing(path.to_owned()))?;
    Nexus::restore(loaded.state, timing, tq_nexus::Instant(0)).map_err(|source| {
        StateFileError::Refused {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// `init`'s key: made private beside the state file, kept when there,
    /// refused once open to others.
    #[test]
    fn the_authority_key_is_made_once_kept_and_refused_when_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = authority_key_path(&dir.path().join("nexus.json"));
        assert!(path.ends_with("nexus.json.authority-key"));
        let (made, fresh) = make_authority_key(&path).unwrap();
        assert!(fresh);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (kept, fresh) = make_authority_key(&path).unwrap();
        assert!(!fresh);
        assert_eq!(kept.expose_bytes(), made.expose_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
        let error = make_authority_key(&path).unwrap_err();
        let line = crate::error::Chain(&error).to_string();
        assert!(line.contains("open to other users"), "{line}");
    }
}

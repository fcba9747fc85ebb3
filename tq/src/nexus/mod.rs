//! Nexus over HTTP: the rack file it drives a rack from ([`rack_file`]),
//! and the Nexus driver's way to reach a sled over its API ([`http`]).
//! `tq nexus ...` and `tq demo` drive racks with `tq_driver::Driver` over
//! [`directory`]; `tq nexus show` and `tq status` read its decisions with
//! [`read_state`].

pub mod http;
pub mod rack_file;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tq_core::ids::{Threshold, ThresholdOutOfRange};
use tq_driver::store::StoreError;
use tq_driver::{SledMap, StateFile};
use tq_nexus::{Nexus, RestoreError, Timing};

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

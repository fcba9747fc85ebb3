//! The state file: Nexus's decisions ([`tq_nexus::State`]) as JSON in one
//! file, replaced atomically at every decision (`tq-atomic-file`, as ledgers:
//! temporary file beside it, fsync, rename, fsync of the directory), so
//! after a crash at any point it holds the last decision stored or the
//! one before, never a mix.
//!
//! ```json
//! { "format": "tq-nexus-state", "version": 1, "revision": 7, "state": { ... } }
//! ```
//!
//! JSON, so an operator can read what Nexus decided (`jq`); the machine
//! checks a decoded state before it drives from it
//! ([`tq_nexus::Nexus::restore`]). The file is small (a few tens of KiB at
//! most): it is read whole, and refused past [`MAX_STATE_FILE_LEN`].

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tq_atomic_file::lock::{FileLock, LockError, lock_exclusive};
use tq_atomic_file::{WriteStep, replace as replace_atomically};
use tq_nexus::State;

/// The `format` field of every state file.
pub const FORMAT: &str = "tq-nexus-state";

/// The layout above. A later layout bumps it.
pub const VERSION: u32 = 1;

/// Longest state file read: far above the largest state's JSON (32 known
/// sleds, 64 remembered commits, a full configuration and request).
pub const MAX_STATE_FILE_LEN: u64 = 4 << 20;

#[derive(Serialize)]
struct Envelope<'a> {
    format: &'a str,
    version: u32,
    revision: u64,
    state: &'a State,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decoded {
    format: String,
    version: u32,
    revision: u64,
    state: State,
}

/// Why the state file could not be read or written.
#[derive(Debug)]
pub enum StoreError {
    /// Reading failed.
    Read(io::Error),
    /// Longer than [`MAX_STATE_FILE_LEN`].
    TooLong,
    /// Not a state file of this format and version, or not valid JSON of
    /// a state.
    Decode(String),
    /// The state does not encode (never, for a state the machine made).
    Encode(String),
    /// Replacing the file failed at this step; it still holds the
    /// previous state.
    Write(WriteStep, io::Error),
    /// Another driver holds the state file (or its lock failed).
    Locked(LockError),
    /// The blocking write did not finish (the runtime is shutting down).
    Interrupted,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "reading the state file: {e}"),
            Self::TooLong => write!(f, "the state file is over {MAX_STATE_FILE_LEN} bytes"),
            Self::Decode(e) => write!(f, "not a Nexus state file: {e}"),
            Self::Encode(e) => write!(f, "encoding the state: {e}"),
            Self::Write(step, e) => write!(f, "writing the state file: {step}: {e}"),
            Self::Locked(e) => write!(f, "the Nexus state file is {e}"),
            Self::Interrupted => f.write_str("the state file write was interrupted"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A state file at a path.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

/// What a state file held.
#[derive(Debug)]
pub struct Loaded {
    /// The decisions.
    pub state: State,
    /// The machine's revision when it was written (informational: a
    /// restored machine counts again from zero).
    pub revision: u64,
}

impl StateFile {
    /// The state file at `path` (its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state; `Ok(None)` if there is no file.
    pub fn load(&self) -> Result<Option<Loaded>, StoreError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Read(e)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(StoreError::Read)?;
        if bytes.len() as u64 > MAX_STATE_FILE_LEN {
            return Err(StoreError::TooLong);
        }
        decode(&bytes).map(Some)
    }

    /// Takes the exclusive lock that makes the caller the file's one
    /// writer, for as long as the returned lock lives (waiting up to
    /// [`tq_atomic_file::lock::LOCK_WAIT`] for an owner that is ending).
    pub async fn lock(&self) -> Result<FileLock, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || lock_exclusive(&path))
            .await
            .map_err(|_| StoreError::Interrupted)?
            .map_err(StoreError::Locked)
    }

    /// Replaces the file with `state` at `revision`, durably, off the async
    /// threads. The caller holds the [`lock`](Self::lock).
    pub async fn store(&self, revision: u64, state: &State) -> Result<(), StoreError> {
        let bytes = encode(revision, state)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || replace_atomically(&path, &bytes))
            .await
            .map_err(|_| StoreError::Interrupted)?
            .map_err(|(step, e)| StoreError::Write(step, e))
    }
}

/// The file's bytes for `state` at `revision`.
pub fn encode(revision: u64, state: &State) -> Result<Vec<u8>, StoreError> {
    let envelope = Envelope {
        format: FORMAT,
        version: VERSION,
        revision,
        state,
    };
    let mut bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|e| StoreError::Encode(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A state file's contents.
pub fn decode(bytes: &[u8]) -> Result<Loaded, StoreError> {
    let decoded: Decoded =
        serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))?;
    if decoded.format != FORMAT || decoded.version != VERSION {
        return Err(StoreError::Decode(format!(
            "format {:?} version {}, this build reads {FORMAT:?} version {VERSION}",
            decoded.format, decoded.version
        )));
    }
    Ok(Loaded {
        state: decoded.state,
        revision: decoded.revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_core::ids::{PlatformId, RackId, Threshold};
    use tq_nexus::{Nexus, Origin, Timing};

    fn nexus_with_pending() -> Nexus {
        let ids: Vec<PlatformId> = (0..4)
            .map(|i| PlatformId::new(tq_core::ids::SLED_PART_NUMBER, &format!("SN{i}")).unwrap())
            .collect();
        let now = tq_nexus::Instant(0);
        let mut nexus =
            Nexus::new(RackId([7; 16]), Origin::Fresh, &ids, Timing::default(), now).unwrap();
        nexus
            .start(now, &ids, Threshold::new(3).unwrap(), &ids[1])
            .unwrap();
        nexus
    }

    #[tokio::test]
    async fn a_stored_state_loads_back_and_restores_the_pending_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("nexus.json"));
        assert!(file.load().unwrap().is_none());
        let nexus = nexus_with_pending();
        file.store(5, nexus.state()).await.unwrap();
        let loaded = file.load().unwrap().unwrap();
        assert_eq!(loaded.revision, 5);
        assert_eq!(&loaded.state, nexus.state());
        let restored =
            Nexus::restore(loaded.state, Timing::default(), tq_nexus::Instant(0)).unwrap();
        assert_eq!(restored.pending().map(|p| p.epoch().0), Some(1));
        // Nothing but the file is left: the temporary one was renamed.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "Nexus's decisions are its own");
    }

    #[test]
    fn another_format_a_later_version_or_a_torn_file_is_refused() {
        let nexus = nexus_with_pending();
        let good = String::from_utf8(encode(1, nexus.state()).unwrap()).unwrap();
        assert!(decode(good.as_bytes()).is_ok());
        let other = good.replacen(FORMAT, "something-else", 1);
        assert!(matches!(
            decode(other.as_bytes()),
            Err(StoreError::Decode(_))
        ));
        let later = good.replacen("\"version\": 1", "\"version\": 2", 1);
        assert!(matches!(
            decode(later.as_bytes()),
            Err(StoreError::Decode(_))
        ));
        let torn = &good.as_bytes()[..good.len() / 2];
        assert!(matches!(decode(torn), Err(StoreError::Decode(_))));
        let extra = good.replacen("{", "{\"extra\": 0,", 1);
        assert!(matches!(
            decode(extra.as_bytes()),
            Err(StoreError::Decode(_))
        ));
    }

    #[tokio::test]
    async fn one_writer_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().join("nexus.json"));
        let held = file.lock().await.unwrap();
        assert!(matches!(
            file.lock().await,
            Err(StoreError::Locked(LockError::Held(_)))
        ));
        drop(held);
        file.lock().await.unwrap();
    }

    #[test]
    fn a_file_past_the_bound_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nexus.json");
        std::fs::write(&path, vec![b' '; MAX_STATE_FILE_LEN as usize + 1]).unwrap();
        assert!(matches!(
            StateFile::new(path).load(),
            Err(StoreError::TooLong)
        ));
    }
}

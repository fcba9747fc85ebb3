//! The LRTQ share file: a read-only input for a sled that comes from an
//! LRTQ rack and has no ledger yet.
//!
//! It holds the core's encoding of [`tq_core::persistent::LrtqShareData`]
//! (`tq_core::wire::encode_lrtq_share_data`). The node layer reads it only
//! when [`super::Ledger::open`] found a ledger holding nothing yet (just
//! initialized), hands the bytes to the core (`NodeCtx::restore_lrtq`),
//! and from then on the ledger holds the state. A configured file that is
//! missing is [`LrtqFileError::Missing`], never a fresh start: the sled
//! would forget the share its rack counts on. This module never writes it.

use std::io::{self, Read};
use std::path::PathBuf;

use tq_core::ids::RackId;
use tq_core::wire::{self, MAX_LRTQ_SHARE_DATA_LEN, WireError};
use zeroize::Zeroizing;

/// An LRTQ share file that decoded.
pub struct LrtqFile {
    /// The file's bytes, as the core decodes them. Holds a key share.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The rack it belongs to.
    pub rack_id: RackId,
}

/// Why an LRTQ share file could not be used.
#[derive(Debug)]
pub enum LrtqFileError {
    /// No file at the path.
    Missing(PathBuf),
    /// Reading failed.
    Io(io::Error),
    /// Longer than the core's largest LRTQ share data.
    TooLong,
    /// The core refused the bytes.
    Decode(WireError),
    /// The blocking task did not finish.
    Interrupted,
}

impl std::fmt::Display for LrtqFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(path) => write!(
                f,
                "{} is missing (is its drive mounted? a sled from an LRTQ rack needs it to start)",
                path.display()
            ),
            Self::Io(e) => write!(f, "cannot read the LRTQ share file: {e}"),
            Self::TooLong => write!(
                f,
                "LRTQ share file longer than {MAX_LRTQ_SHARE_DATA_LEN} bytes"
            ),
            Self::Decode(e) => write!(f, "LRTQ share file does not decode: {e}"),
            Self::Interrupted => f.write_str("reading the LRTQ share file was interrupted"),
        }
    }
}

impl std::error::Error for LrtqFileError {}

/// Reads and checks the LRTQ share file at `path`.
pub async fn read_share_file(path: PathBuf) -> Result<LrtqFile, LrtqFileError> {
    tokio::task::spawn_blocking(move || read_blocking(&path))
        .await
        .unwrap_or(Err(LrtqFileError::Interrupted))
}

fn read_blocking(path: &std::path::Path) -> Result<LrtqFile, LrtqFileError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LrtqFileError::Missing(path.to_owned()));
        }
        Err(e) => return Err(LrtqFileError::Io(e)),
    };
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_LRTQ_SHARE_DATA_LEN + 1));
    file.take(MAX_LRTQ_SHARE_DATA_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(LrtqFileError::Io)?;
    if bytes.len() > MAX_LRTQ_SHARE_DATA_LEN {
        return Err(LrtqFileError::TooLong);
    }
    let data = wire::decode_lrtq_share_data(&bytes).map_err(LrtqFileError::Decode)?;
    Ok(LrtqFile {
        rack_id: data.rack_id,
        bytes,
    })
}

//! The rack's reference measurements: the firmware digests a peer's
//! certificate may carry, read from a small TOML file.
//!
//! ```toml
//! [[measurement]]
//! name = "sp 1.0.4"          # what it is, shown in status and logs
//! sha3_256 = "9c3b...e1"     # 64 hex digits
//! ```
//!
//! Reading is strict: an unknown key, a digest that is not 64 hex digits,
//! an empty or over-long name, the same digest twice, more than
//! [`MAX_REFERENCE_MEASUREMENTS`] entries or a file above
//! [`MAX_REFERENCE_FILE_LEN`] bytes is a [`ReferenceError`]. An empty list
//! is allowed (and admits no peer).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use serde::Deserialize;

use super::measurements::Fwid;

/// Largest reference measurements file read.
pub const MAX_REFERENCE_FILE_LEN: u64 = 64 * 1024;

/// Most entries in the file.
pub const MAX_REFERENCE_MEASUREMENTS: usize = 256;

/// Longest name of an entry, in bytes.
pub const MAX_REFERENCE_NAME_LEN: usize = 64;

/// The accepted digests, each with its name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceMeasurements {
    by_digest: BTreeMap<[u8; 32], String>,
}

/// Why the reference measurements file could not be used.
#[derive(Debug)]
pub enum ReferenceError {
    /// It could not be read.
    Read(std::io::Error),
    /// It is larger than [`MAX_REFERENCE_FILE_LEN`].
    TooLarge,
    /// It is not TOML of the format above.
    Parse(String),
    /// An entry's digest is not 64 hex digits.
    BadDigest(usize),
    /// An entry's name is empty or too long.
    BadName(usize),
    /// A digest is listed twice.
    Duplicate(usize),
    /// More than [`MAX_REFERENCE_MEASUREMENTS`] entries.
    TooMany,
}

impl std::fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(e) => write!(f, "cannot read: {e}"),
            Self::TooLarge => write!(f, "larger than {MAX_REFERENCE_FILE_LEN} bytes"),
            Self::Parse(e) => write!(f, "{e}"),
            Self::BadDigest(i) => write!(f, "measurement[{i}]: sha3_256 is not 64 hex digits"),
            Self::BadName(i) => write!(
                f,
                "measurement[{i}]: name must be 1 to {MAX_REFERENCE_NAME_LEN} bytes"
            ),
            Self::Duplicate(i) => write!(f, "measurement[{i}]: digest listed twice"),
            Self::TooMany => write!(f, "more than {MAX_REFERENCE_MEASUREMENTS} measurements"),
        }
    }
}

impl std::error::Error for ReferenceError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    measurement: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    sha3_256: String,
}

impl ReferenceMeasurements {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ReferenceError> {
        let file = std::fs::File::open(path).map_err(ReferenceError::Read)?;
        let mut text = String::new();
        file.take(MAX_REFERENCE_FILE_LEN + 1)
            .read_to_string(&mut text)
            .map_err(ReferenceError::Read)?;
        if text.len() as u64 > MAX_REFERENCE_FILE_LEN {
            return Err(ReferenceError::TooLarge);
        }
        Self::parse(&text)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, ReferenceError> {
        let file: File = toml::from_str(text)
            .map_err(|e| ReferenceError::Parse(e.message().trim().replace('\n', " ")))?;
        if file.measurement.len() > MAX_REFERENCE_MEASUREMENTS {
            return Err(ReferenceError::TooMany);
        }
        let mut by_digest = BTreeMap::new();
        for (i, entry) in file.measurement.into_iter().enumerate() {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&entry.sha3_256, &mut digest)
                .map_err(|_| ReferenceError::BadDigest(i))?;
            if entry.name.is_empty() || entry.name.len() > MAX_REFERENCE_NAME_LEN {
                return Err(ReferenceError::BadName(i));
            }
            if by_digest.insert(digest, entry.name).is_some() {
                return Err(ReferenceError::Duplicate(i));
            }
        }
        Ok(Self { by_digest })
    }

    /// The name of `fwid` if it is an accepted digest.
    pub fn name_of(&self, fwid: &Fwid) -> Option<&str> {
        let digest = fwid.sha3_256()?;
        self.by_digest.get(&digest).map(String::as_str)
    }

    /// How many digests are accepted.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no digest is accepted.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::measurements::SHA3_256_OID;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn entry(name: &str, digest: &str) -> String {
        format!("[[measurement]]\nname = \"{name}\"\nsha3_256 = \"{digest}\"\n")
    }

    #[test]
    fn digests_are_looked_up_by_algorithm_and_value() {
        let corpus = ReferenceMeasurements::parse(&entry("sp", A)).unwrap();
        let fwid = |algorithm: &str, digest: Vec<u8>| Fwid {
            algorithm: algorithm.into(),
            digest,
        };
        assert_eq!(
            corpus.name_of(&fwid(SHA3_256_OID, vec![0xaa; 32])),
            Some("sp")
        );
        assert_eq!(corpus.name_of(&fwid(SHA3_256_OID, vec![0xab; 32])), None);
        assert_eq!(corpus.name_of(&fwid(SHA3_256_OID, vec![0xaa; 31])), None);
        // The same bytes under another algorithm are another measurement.
        assert_eq!(
            corpus.name_of(&fwid("2.16.840.1.101.3.4.2.1", vec![0xaa; 32])),
            None
        );
        assert!(ReferenceMeasurements::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_refused() {
        let twice = format!("{}{}", entry("a", A), entry("b", A));
        assert!(matches!(
            ReferenceMeasurements::parse(&twice),
            Err(ReferenceError::Duplicate(1))
        ));
        assert!(matches!(
            ReferenceMeasurements::parse(&entry("a", &A[1..])),
            Err(ReferenceError::BadDigest(0))
        ));
        assert!(matches!(
            ReferenceMeasurements::parse(&entry("", A)),
            Err(ReferenceError::BadName(0))
        ));
        assert!(matches!(
            ReferenceMeasurements::parse(&format!("{}extra = 1\n", entry("a", A))),
            Err(ReferenceError::Parse(_))
        ));
    }
}

//! One record: a JSON object on one line, and the hash that chains it.
//!
//! A record's hash is SHA3-256 over a domain string and the line's exact
//! bytes (without its newline), so nothing is re-encoded to check it: any
//! changed byte changes the hash. Each record carries the previous one's
//! hash (`prev`) and its sequence number (`seq`, one more than the
//! previous one's, across segments); the very first record's `prev` is
//! [`GENESIS`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest as _, Sha3_256};

use super::event::AuditEvent;

/// The longest line a record may take (without its newline); a longer one
/// is refused when written and damaged when read. Events are identifiers
/// and short reasons, far below this.
pub const MAX_RECORD_LEN: usize = 4096;

/// Separates this hash from every other SHA3-256 use of the project.
const DOMAIN: &[u8] = b"tq-std audit record v1\0";

/// A record's hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecordHash(pub [u8; 32]);

/// The `prev` of a log's very first record.
pub const GENESIS: RecordHash = RecordHash([0; 32]);

impl RecordHash {
    /// The hash of a record's line (without its newline).
    pub fn of_line(line: &[u8]) -> Self {
        let mut hasher = Sha3_256::new();
        hasher.update(DOMAIN);
        hasher.update(line);
        Self(hasher.finalize().into())
    }
}

impl fmt::Display for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RecordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordHash({self})")
    }
}

impl Serialize for RecordHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RecordHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Self(bytes))
    }
}

/// One record, as on its line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the log: the previous record's plus one.
    pub seq: u64,
    /// The previous record's hash.
    pub prev: RecordHash,
    /// When it was written: milliseconds since the Unix epoch, by the
    /// sled's clock (which may have been reset: order is by `seq`).
    pub time_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// Why a record was not encoded.
#[derive(Debug)]
pub enum EncodeError {
    /// Longer than [`MAX_RECORD_LEN`].
    TooLong(usize),
    /// serde_json refused it (never for these types).
    Json(serde_json::Error),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "record of {len} bytes exceeds {MAX_RECORD_LEN}"),
            Self::Json(e) => write!(f, "encoding a record: {e}"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl Record {
    /// A record of `event` at `seq` after `prev`, stamped now.
    pub fn new(seq: u64, prev: RecordHash, event: AuditEvent) -> Self {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Self {
            seq,
            prev,
            time_ms,
            event,
        }
    }

    /// Its line, without the newline.
    pub fn to_line(&self) -> Result<Vec<u8>, EncodeError> {
        let line = serde_json::to_vec(self).map_err(EncodeError::Json)?;
        if line.len() > MAX_RECORD_LEN {
            return Err(EncodeError::TooLong(line.len()));
        }
        Ok(line)
    }

    /// Parses a line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(line)
    }
}

//! SHA3-256 share digests, which let a node check a share before using it.

use core::fmt;
use serde::{Deserialize, Serialize};
use sha3::{Digest, Sha3_256};
use subtle::{Choice, ConstantTimeEq};

/// SHA3-256 of a share's bytes. Public: configurations list one per member
/// (and the LRTQ share data one per LRTQ share).
/// Lower-case hex in JSON; raw bytes in postcard.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ShareDigest(#[serde(with = "crate::serde_forms::hex_array")] pub [u8; 32]);

impl ShareDigest {
    /// SHA3-256 over the concatenation of `parts`.
    pub(crate) fn of_parts(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha3_256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// The digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Comparisons against a received share's digest go through here, so that
/// checking a share does not reveal how many leading bytes matched.
impl ConstantTimeEq for ShareDigest {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl fmt::Debug for ShareDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareDigest(")?;
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ShareDigest {
    fn format(&self, f: defmt::Formatter) {
        // The first 4 bytes are enough to tell digests apart in a log.
        defmt::write!(f, "ShareDigest({=[u8]:02x}..)", &self.0[..4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha3_256_of_empty_input_matches_the_published_value() {
        // FIPS 202 example value for SHA3-256("").
        let expected = [
            0xa7, 0xff, 0xc6, 0xf8, 0xbf, 0x1e, 0xd7, 0x66, 0x51, 0xc1, 0x47, 0x56, 0xa0, 0x61,
            0xd6, 0x62, 0xf5, 0x80, 0xff, 0x4d, 0xe4, 0x3b, 0x49, 0xfa, 0x82, 0xd8, 0x0a, 0x4b,
            0x80, 0xf8, 0x43, 0x4a,
        ];
        assert_eq!(ShareDigest::of_parts(&[]).0, expected);
    }

    #[test]
    fn parts_are_concatenated() {
        assert_eq!(
            ShareDigest::of_parts(&[b"ab", b"c"]),
            ShareDigest::of_parts(&[b"abc"])
        );
    }
}

//! The byte layout of one ledger copy: a fixed header, then the payload.
//!
//! ```text
//! offset  len  field
//!      0    8  magic "TQLEDGER"
//!      8    4  format version, little-endian u32 (FORMAT_VERSION)
//!     12    8  generation, little-endian u64
//!     20    4  payload length, little-endian u32 (<= MAX_PERSISTENT_STATE_LEN)
//!     24   32  SHA3-256 of bytes 0..24 followed by the payload
//!     56    -  payload: the core's encoding of its persistent state
//! ```
//!
//! A copy is accepted only if every field checks out and the file is exactly
//! header plus payload long. This module does no I/O.

use sha3::{Digest, Sha3_256};
use tq_core::wire::MAX_PERSISTENT_STATE_LEN;
use zeroize::Zeroizing;

/// First bytes of every ledger copy.
pub const MAGIC: [u8; 8] = *b"TQLEDGER";

/// The layout described above. A later layout bumps it.
pub const FORMAT_VERSION: u32 = 1;

const CHECKSUM_LEN: usize = 32;
const CHECKED_HEADER_LEN: usize = 8 + 4 + 8 + 4;

/// Bytes before the payload.
pub const HEADER_LEN: usize = CHECKED_HEADER_LEN + CHECKSUM_LEN;

/// Largest payload a copy may hold: the core's largest persistent state.
pub const MAX_PAYLOAD_LEN: usize = MAX_PERSISTENT_STATE_LEN;

/// Largest valid copy; reading stops past it.
pub const MAX_COPY_LEN: usize = HEADER_LEN + MAX_PAYLOAD_LEN;

/// Why the bytes of a copy were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorruptReason {
    /// Shorter than the header.
    Truncated,
    /// The magic bytes are wrong: not a ledger copy.
    BadMagic,
    /// A format version this build does not read.
    UnsupportedVersion(u32),
    /// The declared payload length is above [`MAX_PAYLOAD_LEN`].
    TooLong,
    /// The file length is not header plus declared payload length.
    LengthMismatch,
    /// The checksum does not match the header and payload.
    ChecksumMismatch,
}

impl std::fmt::Display for CorruptReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("shorter than the header"),
            Self::BadMagic => f.write_str("not a ledger file (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported ledger format version {v}"),
            Self::TooLong => f.write_str("declared payload longer than the largest state"),
            Self::LengthMismatch => f.write_str("file length does not match the header"),
            Self::ChecksumMismatch => f.write_str("checksum mismatch"),
        }
    }
}

fn checksum(checked_header: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = Sha3_256::new();
    hasher.update(checked_header);
    hasher.update(payload);
    hasher.finalize().into()
}

/// The bytes of a copy holding `payload` at `generation`. The caller checks
/// `payload.len() <= MAX_PAYLOAD_LEN` (the length field is a `u32`).
pub fn encode(generation: u64, payload: &[u8]) -> Zeroizing<Vec<u8>> {
    debug_assert!(payload.len() <= MAX_PAYLOAD_LEN);
    let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + payload.len()));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let sum = checksum(&out, payload);
    out.extend_from_slice(&sum);
    out.extend_from_slice(payload);
    out
}

/// The generation and payload of a copy, if it is intact.
pub fn decode(bytes: &[u8]) -> Result<(u64, &[u8]), CorruptReason> {
    let (header, payload) = bytes
        .split_first_chunk::<HEADER_LEN>()
        .ok_or(CorruptReason::Truncated)?;
    let (checked, sum) = header.split_at(CHECKED_HEADER_LEN);
    let (magic, rest) = checked.split_at(8);
    let (version, rest) = rest.split_at(4);
    let (generation, length) = rest.split_at(8);
    if magic != MAGIC {
        return Err(CorruptReason::BadMagic);
    }
    let version = u32::from_le_bytes(version.try_into().map_err(|_| CorruptReason::Truncated)?);
    if version != FORMAT_VERSION {
        return Err(CorruptReason::UnsupportedVersion(version));
    }
    let length = u32::from_le_bytes(length.try_into().map_err(|_| CorruptReason::Truncated)?);
    if length as usize > MAX_PAYLOAD_LEN {
        return Err(CorruptReason::TooLong);
    }
    if payload.len() != length as usize {
        return Err(CorruptReason::LengthMismatch);
    }
    if checksum(checked, payload) != sum {
        return Err(CorruptReason::ChecksumMismatch);
    }
    let generation = u64::from_le_bytes(
        generation
            .try_into()
            .map_err(|_| CorruptReason::Truncated)?,
    );
    Ok((generation, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_as_documented() {
        let bytes = encode(0x0102_0304_0506_0708, b"abc");
        assert_eq!(bytes.len(), HEADER_LEN + 3);
        assert_eq!(&bytes[..8], b"TQLEDGER");
        assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
        assert_eq!(&bytes[12..20], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&bytes[20..24], &[3, 0, 0, 0]);
        let mut h = Sha3_256::new();
        h.update(&bytes[..24]);
        h.update(b"abc");
        assert_eq!(&bytes[24..56], h.finalize().as_slice());
        assert_eq!(&bytes[56..], b"abc");
        assert_eq!(decode(&bytes), Ok((0x0102_0304_0506_0708, &b"abc"[..])));
    }

    #[test]
    fn empty_and_largest_payloads_round_trip() {
        assert_eq!(decode(&encode(0, b"")), Ok((0, &b""[..])));
        let big = vec![0xa5; MAX_PAYLOAD_LEN];
        let bytes = encode(u64::MAX, &big);
        assert_eq!(bytes.len(), MAX_COPY_LEN);
        assert_eq!(decode(&bytes), Ok((u64::MAX, &big[..])));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = encode(7, b"payload");
        for len in 0..bytes.len() {
            let expected = if len < HEADER_LEN {
                CorruptReason::Truncated
            } else {
                CorruptReason::LengthMismatch
            };
            assert_eq!(decode(&bytes[..len]), Err(expected), "length {len}");
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let bytes = encode(7, b"payload");
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&flipped).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn header_fields_are_checked() {
        let good = encode(7, b"payload");
        let mut bad = good.to_vec();
        bad[0] = b'X';
        assert_eq!(decode(&bad), Err(CorruptReason::BadMagic));
        let mut bad = good.to_vec();
        bad[8] = 2;
        assert_eq!(decode(&bad), Err(CorruptReason::UnsupportedVersion(2)));
        let mut bad = good.to_vec();
        bad[20..24].copy_from_slice(&(MAX_PAYLOAD_LEN as u32 + 1).to_le_bytes());
        assert_eq!(decode(&bad), Err(CorruptReason::TooLong));
        let mut bad = good.to_vec();
        bad.push(0);
        assert_eq!(decode(&bad), Err(CorruptReason::LengthMismatch));
        let mut bad = good.to_vec();
        bad[12] ^= 1;
        assert_eq!(decode(&bad), Err(CorruptReason::ChecksumMismatch));
    }
}

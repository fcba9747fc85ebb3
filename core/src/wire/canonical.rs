//! The canonical rule: a value has exactly one accepted encoding
//! (PROTOCOL.md section 5).
//!
//! Postcard's reader accepts more than its writer writes: a varint padded
//! with `0x80` bytes (`80 00` for 0), and a length varint as long as the
//! reader's `usize` allows (10 bytes on a 64-bit host, 5 on the 32-bit
//! service processor), so the same bytes could decode on one and not on the
//! other. Checking each varint would mean reading postcard's format
//! ourselves; instead every decoder ends here: the decoded value is encoded
//! again and must give back exactly the bytes it was read from. That covers
//! every varint (epochs, lengths, enum tags) and every other way two
//! encodings could name one value (a member list out of order), for every
//! type, present and future.
//!
//! Host and service processor then agree: an accepted encoding has only
//! minimal varints, whose lengths fit 32 bits, and reads the same on both;
//! bytes one of them refuses inside postcard (a 6-byte length on the
//! service processor) the other refuses here, as [`WireError::Malformed`]
//! too. For that the check runs before trailing bytes are reported, so a
//! non-canonical value followed by extra bytes is `Malformed` on both.
//!
//! The encoding is streamed through the chunked encoder with a
//! [`CHECK_CHUNK_LEN`]-byte page on the stack, compared page by page with
//! the input, and stops at the first page that differs.

use serde::Serialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::WireError;
use super::chunked;

/// Bytes of re-encoding held at once while comparing.
pub(super) const CHECK_CHUNK_LEN: usize = 64;

/// Whether `encoding` (its `version` byte included, no trailing bytes) is
/// exactly the encoding of `value`, the value just decoded from it.
pub(super) fn check<T: Serialize + ?Sized>(
    value: &T,
    version: u8,
    encoding: &[u8],
) -> Result<(), WireError> {
    check_against(value, version, encoding.len(), |offset, chunk| {
        let expected = encoding
            .get(offset..)
            .and_then(|rest| rest.get(..chunk.len()));
        Ok::<_, core::convert::Infallible>(expected.is_some_and(|expected| same(chunk, expected)))
    })
    .map_err(|_| WireError::Malformed)
}

/// Whether `value` encodes (after its `version` byte) to exactly `len`
/// stored bytes: `compare` is handed each chunk of the re-encoding with its
/// offset and says whether the stored bytes there are the same, or fails. `Err(None)`: not the
/// canonical encoding; `Err(Some(error))`: `compare` failed.
pub(super) fn check_against<T: Serialize + ?Sized, E>(
    value: &T,
    version: u8,
    len: usize,
    mut compare: impl FnMut(usize, &[u8]) -> Result<bool, E>,
) -> Result<(), Option<E>> {
    let mut page = [0u8; CHECK_CHUNK_LEN];
    let mut offset = 0usize;
    let encoded = chunked::encode_chunked(value, version, &mut page, |chunk| {
        let end = offset
            .checked_add(chunk.len())
            .filter(|&end| end <= len)
            .ok_or(None)?;
        match compare(offset, chunk) {
            Ok(true) => {
                offset = end;
                Ok(())
            }
            Ok(false) => Err(None),
            Err(error) => Err(Some(error)),
        }
    });
    page.zeroize();
    match encoded {
        Ok(_) if offset == len => Ok(()),
        Err(chunked::ChunkedEncodeError::Sink(failed)) => Err(failed),
        // Shorter, or (never for our types) not encodable.
        _ => Err(None),
    }
}

/// Whether two pages are equal. Pages may hold share bytes: compared
/// without an early exit, so the time says only whether the bytes are
/// canonical. One constant-time test per page: subtle's slice comparison
/// fences every byte, which made the whole check 2.2 times as costly
/// (largest Prepare).
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |any, (x, y)| any | (x ^ y));
    a.len() == b.len() && bool::from(difference.ct_eq(&0))
}

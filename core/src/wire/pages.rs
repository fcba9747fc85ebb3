//! Decoding the persistent state from storage read a page at a time
//! (flash that is not memory-mapped), instead of one contiguous slice.
//!
//! The decoder is the same in-place decoder as for a slice; only postcard's
//! source of bytes differs: a [`PageReader`] behind a small buffer. Nothing
//! our types decode borrows from its input (platform ids are copied), so
//! the stored encoding never has to be in memory at once; the canonical
//! check then re-reads the pages it compares against.

use postcard::de_flavors::Flavor;
use serde::Serialize;
use serde::de::DeserializeSeed;

use super::{PERSISTENT_STATE_VERSION, WireError, canonical, in_place};
use crate::persistent::PersistentState;

/// Storage the encoded persistent state is read back from, a piece at a
/// time.
pub trait PageReader {
    /// Why a read failed.
    type Error;

    /// Fills `buf` with the stored bytes at `offset`.
    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// Why a state read through a [`PageReader`] was not restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PagedError<E> {
    /// The storage could not be read.
    Read(E),
    /// The bytes are not a persistent state (as for a slice).
    Wire(WireError),
}

/// Bytes of storage buffered at once.
const PAGE_LEN: usize = 64;

/// The longest piece postcard asks for at once: a platform id field.
const PIECE_LEN: usize = crate::limits::PLATFORM_ID_FIELD_LEN;

/// Decodes the persistent state stored as `len` bytes behind `reader` into
/// `state`, in place and under the canonical rule, as
/// [`super::decode_persistent_state_into`] decodes a slice. On an error
/// `state` is left empty.
pub fn decode_persistent_state_from<R: PageReader>(
    reader: &mut R,
    len: usize,
    state: &mut PersistentState,
) -> Result<(), PagedError<R::Error>> {
    let decoded = decode_into(reader, len, state);
    if decoded.is_err() {
        state.clear();
    }
    decoded
}

fn decode_into<R: PageReader>(
    reader: &mut R,
    len: usize,
    state: &mut PersistentState,
) -> Result<(), PagedError<R::Error>> {
    if len == 0 {
        return Err(PagedError::Wire(WireError::Empty));
    }
    let mut version = [0u8; 1];
    reader.read(0, &mut version).map_err(PagedError::Read)?;
    match version[0] {
        PERSISTENT_STATE_VERSION => decode_current(reader, len, state),
        // An older version's arm goes here (see the recipe in `super`).
        other => Err(PagedError::Wire(WireError::UnsupportedVersion(other))),
    }
}

/// [`decode_into`] of the current version.
fn decode_current<R: PageReader>(
    reader: &mut R,
    len: usize,
    state: &mut PersistentState,
) -> Result<(), PagedError<R::Error>> {
    let mut pages = Pages::new(reader, len);
    let mut deserializer = postcard::Deserializer::from_flavor(&mut pages);
    let read = in_place::StateInto(state).deserialize(&mut deserializer);
    let used = deserializer.finalize();
    if let Some(error) = pages.error.take() {
        return Err(PagedError::Read(error));
    }
    let used = match (read, used) {
        (Ok(()), Ok(used)) => used,
        _ => return Err(PagedError::Wire(WireError::Malformed)),
    };
    check_canonical(pages.reader, PERSISTENT_STATE_VERSION, used, state)?;
    if used < len {
        return Err(PagedError::Wire(WireError::TrailingBytes));
    }
    Ok(())
}

/// The canonical rule against the stored bytes: `value` must encode (as
/// version `version`) to the first `len` of them exactly.
fn check_canonical<R: PageReader, T: Serialize + ?Sized>(
    reader: &mut R,
    version: u8,
    len: usize,
    value: &T,
) -> Result<(), PagedError<R::Error>> {
    let mut stored = [0u8; canonical::CHECK_CHUNK_LEN];
    canonical::check_against(value, version, len, |offset, chunk| {
        let Some(stored) = stored.get_mut(..chunk.len()) else {
            return Ok(false);
        };
        reader.read(offset, stored)?;
        Ok(canonical::same(chunk, stored))
    })
    .map_err(|error| match error {
        Some(read) => PagedError::Read(read),
        None => PagedError::Wire(WireError::Malformed),
    })
}

/// postcard's source of bytes: the stored encoding after its version byte,
/// through a page buffer.
struct Pages<'r, R: PageReader> {
    reader: &'r mut R,
    /// Stored bytes, version byte included.
    len: usize,
    /// The next stored byte to hand out.
    at: usize,
    page: [u8; PAGE_LEN],
    /// Where `page` starts in storage, and how much of it holds bytes.
    page_at: usize,
    page_len: usize,
    piece: [u8; PIECE_LEN],
    /// The first read error, reported instead of the decoder's.
    error: Option<R::Error>,
}

impl<'r, R: PageReader> Pages<'r, R> {
    fn new(reader: &'r mut R, len: usize) -> Self {
        Self {
            reader,
            len,
            at: 1,
            page: [0; PAGE_LEN],
            page_at: 0,
            page_len: 0,
            piece: [0; PIECE_LEN],
            error: None,
        }
    }

    fn byte(&mut self) -> Option<u8> {
        if self.at >= self.len {
            return None;
        }
        let in_page = self.at.wrapping_sub(self.page_at);
        if self.at < self.page_at || in_page >= self.page_len {
            self.page_at = self.at;
            self.page_len = PAGE_LEN.min(self.len - self.at);
            let page = self.page.get_mut(..self.page_len)?;
            if let Err(error) = self.reader.read(self.page_at, page) {
                self.error.get_or_insert(error);
                return None;
            }
        }
        let byte = self.page.get(self.at - self.page_at).copied();
        self.at += 1;
        byte
    }
}

impl<'de, 'p: 'de, 'r: 'p, R: PageReader + 'p> Flavor<'de> for &'p mut Pages<'r, R> {
    type Remainder = usize;
    type Source = ();

    fn pop(&mut self) -> postcard::Result<u8> {
        self.byte().ok_or(postcard::Error::DeserializeUnexpectedEnd)
    }

    /// Nothing our types decode borrows from the input; storage could not
    /// lend it anyway.
    fn try_take_n(&mut self, _: usize) -> postcard::Result<&'de [u8]> {
        Err(postcard::Error::DeserializeUnexpectedEnd)
    }

    fn try_take_n_temp<'a>(&'a mut self, count: usize) -> postcard::Result<&'a [u8]>
    where
        'de: 'a,
    {
        if count > PIECE_LEN {
            return Err(postcard::Error::DeserializeUnexpectedEnd);
        }
        for index in 0..count {
            let byte = self
                .byte()
                .ok_or(postcard::Error::DeserializeUnexpectedEnd)?;
            if let Some(slot) = self.piece.get_mut(index) {
                *slot = byte;
            }
        }
        self.piece
            .get(..count)
            .ok_or(postcard::Error::DeserializeUnexpectedEnd)
    }

    /// How many stored bytes the value took, version byte included.
    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.at)
    }
}

//! Encoding through a small page buffer: the one encoder of every wire
//! type.
//!
//! Postcard writes the encoding byte by byte into a [`Flavor`]; the
//! [`Pager`] here fills a caller's page buffer and hands each full page to
//! a sink before reusing it, so a firmware task can write the persistent
//! state (about 20 KiB) to storage page by page without holding all of it.
//! Encoding into one buffer is the same pager with a sink that accepts
//! only the final page: whatever the buffer size, the bytes are the same.

use core::fmt;

use postcard::ser_flavors::Flavor;
use serde::Serialize;

use super::WireError;

/// Why a value could not be encoded through a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ChunkedEncodeError<E> {
    /// The sink refused a chunk: nothing was handed to it afterwards.
    Sink(E),
    /// The value could not be encoded: [`WireError::BufferTooSmall`] for a
    /// zero-length chunk buffer (nothing is handed to the sink then).
    Wire(WireError),
}

impl<E: fmt::Display> fmt::Display for ChunkedEncodeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sink(error) => write!(f, "the sink refused a chunk: {error}"),
            Self::Wire(error) => write!(f, "{error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for ChunkedEncodeError<E> {}

/// A sink as the pager sees it: every caller's sink behind one type, so
/// that postcard's serializer of each wire type is compiled once, not once
/// per sink (about 3 KiB of flash each). `Err` only says "stop"; the
/// caller's own error is kept by [`encode_chunked`].
type Sink<'s> = &'s mut dyn FnMut(&[u8]) -> Result<(), Stop>;

/// A sink refused a page.
struct Stop;

/// The postcard flavor: bytes gathered in `page`, handed to `sink` a full
/// page at a time (the last page may be shorter). A page is handed over
/// only when more bytes need its room, or at the end, so a value that fits
/// the page reaches the sink in one call.
struct Pager<'p, 's> {
    page: &'p mut [u8],
    filled: usize,
    handed_over: usize,
    sink: Sink<'s>,
}

impl Pager<'_, '_> {
    /// Hands the filled part of the page to the sink and empties the page.
    fn flush(&mut self) -> postcard::Result<()> {
        let full = self.page.get(..self.filled).unwrap_or_default();
        // Postcard only needs to stop; `encode_chunked` keeps the cause.
        (self.sink)(full).map_err(|Stop| postcard::Error::SerializeBufferFull)?;
        self.handed_over += self.filled;
        self.filled = 0;
        Ok(())
    }
}

impl Flavor for &mut Pager<'_, '_> {
    type Output = ();

    fn try_extend(&mut self, mut data: &[u8]) -> postcard::Result<()> {
        while !data.is_empty() {
            if self.filled == self.page.len() {
                self.flush()?;
            }
            let room = self.page.get_mut(self.filled..).unwrap_or_default();
            let taken = room.len().min(data.len());
            let (now, later) = data.split_at_checked(taken).unwrap_or((data, &[]));
            room.iter_mut().zip(now).for_each(|(to, from)| *to = *from);
            self.filled += now.len();
            data = later;
            if now.is_empty() {
                // Only with an empty page, which `encode_chunked` refuses;
                // stop rather than loop.
                return Err(postcard::Error::SerializeBufferFull);
            }
        }
        Ok(())
    }

    // Postcard writes most bytes one at a time (every byte of an array or a
    // byte list), so this is the hot path.
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.filled == self.page.len() {
            self.flush()?;
        }
        let slot = self
            .page
            .get_mut(self.filled)
            // Only with an empty page, which `encode_chunked` refuses.
            .ok_or(postcard::Error::SerializeBufferFull)?;
        *slot = byte;
        self.filled += 1;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        if self.filled > 0 {
            self.flush()?;
        }
        Ok(())
    }
}

/// Encodes `value` (the `version` byte, then postcard) through `chunk`,
/// handing the bytes to `sink` in order; returns how many it was handed.
pub(super) fn encode_chunked<T: Serialize + ?Sized, E>(
    value: &T,
    version: u8,
    chunk: &mut [u8],
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<usize, ChunkedEncodeError<E>> {
    if chunk.is_empty() {
        return Err(ChunkedEncodeError::Wire(WireError::BufferTooSmall));
    }
    let mut refused = None;
    let mut erased = |page: &[u8]| {
        sink(page).map_err(|error| {
            refused = Some(error);
            Stop
        })
    };
    let encoded = encode_pages(value, Some(version), chunk, &mut erased);
    match (encoded, refused) {
        (Ok(total), _) => Ok(total),
        (Err(_), Some(error)) => Err(ChunkedEncodeError::Sink(error)),
        // Only a type's own `Serialize` can fail otherwise; ours do not.
        (Err(_), None) => Err(ChunkedEncodeError::Wire(WireError::Malformed)),
    }
}

/// [`encode_chunked`] behind the erased sink; with no `version`, the
/// postcard bytes alone ([`feed`]).
fn encode_pages<T: Serialize + ?Sized>(
    value: &T,
    version: Option<u8>,
    chunk: &mut [u8],
    sink: Sink<'_>,
) -> postcard::Result<usize> {
    let mut pager = Pager {
        page: chunk,
        filled: 0,
        handed_over: 0,
        sink,
    };
    if let Some(version) = version {
        (&mut pager).try_push(version)?;
    }
    postcard::serialize_with_flavor(value, &mut pager)?;
    Ok(pager.handed_over)
}

/// The page did not hold the whole encoding.
struct PageFull;

/// Encodes `value` after its `version` byte into `buf`, returning the
/// bytes written: the pager with `buf` as its page and a sink that accepts
/// the last page only.
pub(super) fn encode_into<'b, T: Serialize + ?Sized>(
    value: &T,
    version: u8,
    buf: &'b mut [u8],
) -> Result<&'b [u8], WireError> {
    // The first page the sink sees is either the whole encoding (at the
    // end) or a full buffer with more to come, which a second call shows.
    let mut pages = 0usize;
    let written = encode_chunked(value, version, buf, |_| {
        pages += 1;
        if pages > 1 { Err(PageFull) } else { Ok(()) }
    })
    .map_err(|error| match error {
        ChunkedEncodeError::Sink(PageFull) => WireError::BufferTooSmall,
        ChunkedEncodeError::Wire(error) => error,
    })?;
    buf.get(..written).ok_or(WireError::BufferTooSmall)
}

/// Bytes handed to [`feed`]'s sink at once.
const FEED_CHUNK_LEN: usize = 64;

/// Hands the encoding of `value` (after the `version` byte if there is
/// one; postcard alone otherwise) to `sink` in pieces, through a
/// [`FEED_CHUNK_LEN`]-byte page on the stack: what a MAC is fed, with no
/// buffer of the whole encoding.
pub(super) fn feed<T: Serialize + ?Sized>(
    value: &T,
    version: Option<u8>,
    mut sink: impl FnMut(&[u8]),
) -> Result<(), WireError> {
    let mut page = [0u8; FEED_CHUNK_LEN];
    let mut erased = |bytes: &[u8]| {
        sink(bytes);
        Ok(())
    };
    encode_pages(value, version, &mut page, &mut erased)
        .map(|_| ())
        // Only a type's own `Serialize` can fail; ours do not.
        .map_err(|_| WireError::Malformed)
}

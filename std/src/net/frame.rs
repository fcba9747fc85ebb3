//! Framing on a peer connection.
//!
//! Each frame is a 4-byte big-endian length, then that many bytes. An empty
//! frame is a keep-alive. Any other frame starts with a format byte and the
//! 16 rack-id bytes: either one peer message as the core encodes it (the
//! format byte is the core's peer message version) or a proxy frame
//! ([`crate::proxy`], format byte [`crate::proxy::PROXY_FRAME`]). The
//! largest frame is the larger of the core's largest peer message and the
//! largest proxy frame ([`MAX_FRAME_LEN`]); a longer length prefix ends the
//! connection before its bytes are read.

use std::io::{self, IoSlice};
use std::ops::Deref;

use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tq_core::ids::RackId;
use tq_core::wire::{MAX_PEER_MSG_LEN, PEER_MSG_VERSION};
use zeroize::Zeroizing;

use super::stats::CloseReason;
use crate::proxy::{MAX_PROXY_FRAME_LEN, PROXY_FRAME};

/// Bytes of the length prefix.
pub const FRAME_PREFIX_LEN: usize = 4;

/// Largest frame payload: the core's largest encoded peer message or the
/// largest proxy frame.
pub const MAX_FRAME_LEN: usize = if MAX_PEER_MSG_LEN > MAX_PROXY_FRAME_LEN {
    MAX_PEER_MSG_LEN
} else {
    MAX_PROXY_FRAME_LEN
};

/// Bytes of a frame's header: the format byte and the rack id.
pub const MESSAGE_HEADER_LEN: usize = 1 + 16;

/// One frame's payload (without its length prefix), in a buffer of exactly
/// its size that is zeroized on drop: a Prepare or a Share carries a key
/// share. It is never grown (so never copied by a reallocation), its
/// `Debug` shows only its length, and it compares in constant time.
#[derive(Clone, Default)]
pub struct Frame(Zeroizing<Vec<u8>>);

impl Frame {
    /// A frame holding a copy of `bytes`.
    pub fn copy_from_slice(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }
}

impl From<Vec<u8>> for Frame {
    /// Takes the vector as it is (no copy is left behind).
    fn from(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
}

impl Deref for Frame {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Frame({} bytes)", self.0.len())
    }
}

/// Why [`read_frame`] returned no frame.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The length prefix is above [`MAX_FRAME_LEN`]; nothing after it was
    /// read.
    Oversize,
    /// The stream failed or ended inside a frame.
    Io(io::Error),
}

/// Reads one frame: the length prefix, then exactly that many bytes into a
/// [`Frame`] allocated at that size. `None` if the stream ended cleanly
/// between frames. Not cancel safe: a caller that drops it mid-frame must
/// drop the stream too.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Frame>, ReadError> {
    let mut prefix = [0u8; FRAME_PREFIX_LEN];
    let first = reader.read(&mut prefix).await.map_err(ReadError::Io)?;
    if first == 0 {
        return Ok(None);
    }
    let rest = prefix.get_mut(first..).unwrap_or_default();
    reader.read_exact(rest).await.map_err(ReadError::Io)?;
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(ReadError::Oversize);
    }
    let mut frame = Frame(Zeroizing::new(vec![0; len]));
    reader
        .read_exact(frame.0.as_mut_slice())
        .await
        .map_err(ReadError::Io)?;
    Ok(Some(frame))
}

/// Writes `frames`, each after its length prefix, with vectored writes
/// straight from the frames (no copy into a write buffer: the TLS layer
/// encrypts them into its records), then flushes. Every frame must be at
/// most [`MAX_FRAME_LEN`] bytes ([`super::Net::send`] checks).
pub(crate) async fn write_frames<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frames: &[Frame],
) -> io::Result<()> {
    let prefixes: Vec<[u8; FRAME_PREFIX_LEN]> = frames
        .iter()
        .map(|frame| u32::try_from(frame.len()).unwrap_or(u32::MAX).to_be_bytes())
        .collect();
    let mut slices: Vec<IoSlice<'_>> = prefixes
        .iter()
        .zip(frames)
        .flat_map(|(prefix, frame)| [IoSlice::new(prefix), IoSlice::new(frame)])
        .collect();
    let mut rest = slices.as_mut_slice();
    while !rest.is_empty() {
        let written = writer.write_vectored(rest).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, written);
    }
    writer.flush().await
}

/// Checks a frame's header: our peer message version or the proxy format and, if
/// `rack` is given, our rack id. The body is the node layer's to decode.
pub(crate) fn check_header(frame: &[u8], rack: Option<&RackId>) -> Result<(), CloseReason> {
    let Some((&version, rest)) = frame.split_first() else {
        return Err(CloseReason::BadHeader);
    };
    let Some(rack_id) = rest.first_chunk::<16>() else {
        return Err(CloseReason::BadHeader);
    };
    if version != PEER_MSG_VERSION && version != PROXY_FRAME {
        return Err(CloseReason::BadHeader);
    }
    match rack {
        Some(rack) if rack.as_bytes() != rack_id => Err(CloseReason::WrongRack),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RACK: RackId = RackId([7; 16]);

    #[test]
    fn headers() {
        let mut good = vec![PEER_MSG_VERSION];
        good.extend_from_slice(&[7; 16]);
        assert_eq!(check_header(&good, Some(&RACK)), Ok(()));
        good.push(0xff);
        assert_eq!(check_header(&good, Some(&RACK)), Ok(()));
        assert_eq!(check_header(&good, None), Ok(()));
        assert_eq!(
            check_header(&good[..16], Some(&RACK)),
            Err(CloseReason::BadHeader)
        );
        let mut other_rack = good.clone();
        other_rack[16] = 8;
        assert_eq!(
            check_header(&other_rack, Some(&RACK)),
            Err(CloseReason::WrongRack)
        );
        assert_eq!(check_header(&other_rack, None), Ok(()));
        let mut other_version = good.clone();
        other_version[0] = PEER_MSG_VERSION + 1;
        assert_eq!(
            check_header(&other_version, None),
            Err(CloseReason::BadHeader)
        );
    }

    #[tokio::test]
    async fn frames_round_trip_and_the_largest_passes() {
        let (mut a, mut b) = tokio::io::duplex(4 * MAX_FRAME_LEN);
        let frames = [
            Frame::default(),
            Frame::copy_from_slice(b"one"),
            Frame::from(vec![1; MAX_FRAME_LEN]),
        ];
        write_frames(&mut a, &frames).await.unwrap();
        drop(a);
        for frame in &frames {
            assert_eq!(read_frame(&mut b).await.unwrap().as_ref(), Some(frame));
        }
        assert!(matches!(read_frame(&mut b).await, Ok(None)));
    }

    #[tokio::test]
    async fn one_more_byte_is_oversize_before_its_bytes_are_read() {
        let prefix = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        let mut stream: &[u8] = &prefix;
        assert!(matches!(
            read_frame(&mut stream).await,
            Err(ReadError::Oversize)
        ));
    }

    #[tokio::test]
    async fn an_empty_frame_is_four_zero_bytes_and_a_cut_frame_fails() {
        let mut out = Vec::new();
        write_frames(&mut out, &[Frame::default()]).await.unwrap();
        assert_eq!(out, [0, 0, 0, 0]);
        let mut cut: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(matches!(read_frame(&mut cut).await, Err(ReadError::Io(_))));
        let mut cut_prefix: &[u8] = &[0, 0];
        assert!(matches!(
            read_frame(&mut cut_prefix).await,
            Err(ReadError::Io(_))
        ));
    }

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(
            format!("{:?}", Frame::copy_from_slice(&[0xab; 3])),
            "Frame(3 bytes)"
        );
    }
}

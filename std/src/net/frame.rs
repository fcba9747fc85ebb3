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

use std::ops::Deref;

use subtle::ConstantTimeEq;
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

/// A frame's length prefix is above [`MAX_FRAME_LEN`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Oversize;

/// The length prefix of a frame of `len` bytes.
pub(crate) fn prefix_of(len: usize) -> [u8; FRAME_PREFIX_LEN] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// Cuts a received byte stream, given in pieces of any size, into frames.
/// Each frame is copied straight into a [`Frame`] allocated at the length
/// its prefix gives (no growable buffer in between); an oversize prefix is
/// refused before any of its bytes are taken.
#[derive(Default)]
pub(crate) struct FrameReader {
    prefix: [u8; FRAME_PREFIX_LEN],
    /// Bytes of `prefix` received so far.
    prefix_len: usize,
    /// The frame being filled, and how many of its bytes arrived.
    body: Option<(Frame, usize)>,
}

impl FrameReader {
    /// Takes `bytes`, pushing every frame they complete onto `out`.
    pub(crate) fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Frame>) -> Result<(), Oversize> {
        while !bytes.is_empty() {
            let Some((frame, filled)) = &mut self.body else {
                let take = (FRAME_PREFIX_LEN - self.prefix_len).min(bytes.len());
                let (head, rest) = bytes.split_at(take);
                if let Some(to) = self.prefix.get_mut(self.prefix_len..self.prefix_len + take) {
                    to.copy_from_slice(head);
                }
                self.prefix_len += take;
                bytes = rest;
                if self.prefix_len == FRAME_PREFIX_LEN {
                    self.prefix_len = 0;
                    let len = u32::from_be_bytes(self.prefix) as usize;
                    if len > MAX_FRAME_LEN {
                        return Err(Oversize);
                    }
                    let frame = Frame(Zeroizing::new(vec![0; len]));
                    if len == 0 {
                        out.push(frame);
                    } else {
                        self.body = Some((frame, 0));
                    }
                }
                continue;
            };
            let take = (frame.len() - *filled).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            if let Some(to) = frame.0.get_mut(*filled..*filled + take) {
                to.copy_from_slice(head);
            }
            *filled += take;
            bytes = rest;
            if *filled == frame.len()
                && let Some((frame, _)) = self.body.take()
            {
                out.push(frame);
            }
        }
        Ok(())
    }

    /// Whether part of a frame (or of its prefix) is waiting for the rest.
    pub(crate) fn mid_frame(&self) -> bool {
        self.prefix_len > 0 || self.body.is_some()
    }
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

    /// The stream of `frames`, each after its prefix.
    fn stream_of(frames: &[Frame]) -> Vec<u8> {
        frames
            .iter()
            .flat_map(|frame| {
                prefix_of(frame.len())
                    .into_iter()
                    .chain(frame.iter().copied())
            })
            .collect()
    }

    #[test]
    fn frames_round_trip_in_pieces_of_any_size_and_the_largest_passes() {
        let frames = [
            Frame::default(),
            Frame::copy_from_slice(b"one"),
            Frame::from(vec![1; MAX_FRAME_LEN]),
            Frame::default(),
        ];
        let stream = stream_of(&frames);
        for piece in [1, 3, 4, 5, 1000, stream.len()] {
            let mut reader = FrameReader::default();
            let mut out = Vec::new();
            for chunk in stream.chunks(piece) {
                reader.push(chunk, &mut out).unwrap();
            }
            assert_eq!(out, frames, "pieces of {piece}");
            assert!(!reader.mid_frame());
        }
    }

    #[test]
    fn one_more_byte_is_oversize_before_its_bytes_are_taken() {
        let mut reader = FrameReader::default();
        let prefix = prefix_of(MAX_FRAME_LEN + 1);
        assert_eq!(reader.push(&prefix, &mut Vec::new()), Err(Oversize));
    }

    #[test]
    fn an_empty_frame_is_four_zero_bytes_and_a_cut_frame_is_pending() {
        assert_eq!(stream_of(&[Frame::default()]), [0, 0, 0, 0]);
        let mut reader = FrameReader::default();
        let mut out = Vec::new();
        reader.push(&[0, 0, 0, 5, 1, 2], &mut out).unwrap();
        assert!(out.is_empty() && reader.mid_frame());
        let mut reader = FrameReader::default();
        reader.push(&[0, 0], &mut out).unwrap();
        assert!(out.is_empty() && reader.mid_frame());
    }

    #[test]
    fn debug_shows_only_the_length() {
        assert_eq!(
            format!("{:?}", Frame::copy_from_slice(&[0xab; 3])),
            "Frame(3 bytes)"
        );
    }
}

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

use std::io;

use tokio_util::codec::{LengthDelimitedCodec, LengthDelimitedCodecError};
use tq_core::ids::RackId;
use tq_core::wire::{MAX_PEER_MSG_LEN, PEER_MSG_VERSION};

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

/// The codec for both directions.
pub(crate) fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(FRAME_PREFIX_LEN)
        .big_endian()
        .max_frame_length(MAX_FRAME_LEN)
        .new_codec()
}

/// Whether a read error is the codec refusing an oversize length prefix.
pub(crate) fn is_oversize(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|e| e.is::<LengthDelimitedCodecError>())
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
    use bytes::BytesMut;
    use tokio_util::codec::{Decoder, Encoder};

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

    #[test]
    fn largest_frame_passes_and_one_more_byte_does_not() {
        let mut codec = codec();
        let mut buf = BytesMut::new();
        codec
            .encode(bytes::Bytes::from(vec![1; MAX_FRAME_LEN]), &mut buf)
            .unwrap();
        assert_eq!(&buf[..4], &(MAX_FRAME_LEN as u32).to_be_bytes());
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap().len(),
            MAX_FRAME_LEN
        );

        let mut buf = BytesMut::from(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes()[..]);
        let error = codec.decode(&mut buf).unwrap_err();
        assert!(is_oversize(&error), "{error}");
        assert!(!is_oversize(&io::Error::other("x")));
    }

    #[test]
    fn empty_frame_is_four_zero_bytes() {
        let mut buf = BytesMut::new();
        codec().encode(bytes::Bytes::new(), &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0]);
    }
}

//! The round-trip check of each decoder.
//!
//! Decoding is canonical (PROTOCOL.md section 5): bytes are accepted only
//! if they are exactly the encoding of the value they decode to. So
//! whenever `decode(b)` succeeds, `encode(decode(b))` must be `b` itself,
//! byte for byte. Comparing encodings also covers the types that hold
//! secrets and have no `PartialEq`.

use tq_core::wire::{self, WireError};

/// Decodes `bytes` with `decode`; if that succeeds, re-encodes with
/// `encode` into a `max_len` buffer and checks that gives `bytes` back.
///
/// # Panics
///
/// If a decoded value does not fit `max_len`, or encodes to other bytes
/// than it was decoded from.
pub fn check<T>(
    bytes: &[u8],
    max_len: usize,
    decode: impl Fn(&[u8]) -> Result<T, WireError>,
    encode: impl for<'b> Fn(&T, &'b mut [u8]) -> Result<&'b [u8], WireError>,
) {
    let Ok(value) = decode(bytes) else {
        return;
    };
    let mut buf = vec![0u8; max_len];
    match encode(&value, &mut buf) {
        Ok(encoded) => assert_eq!(
            encoded, bytes,
            "accepted bytes are not the encoding of their value (not canonical)"
        ),
        Err(e) => panic!("a decoded value does not re-encode into {max_len} bytes: {e}"),
    }
}

/// A peer message (decoded owned, encoded through a borrowed view).
pub fn peer_msg(bytes: &[u8]) {
    check(
        bytes,
        wire::MAX_PEER_MSG_LEN,
        wire::decode_peer_msg,
        |msg, buf| wire::encode_peer_msg(&msg.as_ref(), buf),
    );
}

/// A persistent state.
pub fn persistent_state(bytes: &[u8]) {
    check(
        bytes,
        wire::MAX_PERSISTENT_STATE_LEN,
        wire::decode_persistent_state,
        wire::encode_persistent_state,
    );
}

/// A reconfiguration request.
pub fn reconfigure_msg(bytes: &[u8]) {
    check(
        bytes,
        wire::MAX_RECONFIGURE_MSG_LEN,
        wire::decode_reconfigure_msg,
        wire::encode_reconfigure_msg,
    );
}

/// An LRTQ upgrade request.
pub fn lrtq_upgrade_msg(bytes: &[u8]) {
    check(
        bytes,
        wire::MAX_LRTQ_UPGRADE_MSG_LEN,
        wire::decode_lrtq_upgrade_msg,
        wire::encode_lrtq_upgrade_msg,
    );
}

/// LRTQ share data.
pub fn lrtq_share_data(bytes: &[u8]) {
    check(
        bytes,
        wire::MAX_LRTQ_SHARE_DATA_LEN,
        wire::decode_lrtq_share_data,
        wire::encode_lrtq_share_data,
    );
}

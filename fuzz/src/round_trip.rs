//! The round-trip check of each decoder.
//!
//! Several decoded types hold secrets and have no `PartialEq`, so values are
//! compared through their encodings: `encode(decode(b))` must decode again,
//! and encoding that second value must give the very same bytes. The first
//! encoding need not equal the input `b`: decoding normalises some inputs
//! (a member set is sorted).

use tq_core::wire::{self, WireError};

/// Decodes `bytes` with `decode`; if that succeeds, re-encodes with
/// `encode` into a `max_len` buffer and checks the round trip. Returns the
/// value decoded from the re-encoding, for further checks.
///
/// # Panics
///
/// If a decoded value does not fit `max_len`, if its encoding does not
/// decode, or if re-encoding is not stable.
pub fn check<T>(
    bytes: &[u8],
    max_len: usize,
    decode: impl Fn(&[u8]) -> Result<T, WireError>,
    encode: impl for<'b> Fn(&T, &'b mut [u8]) -> Result<&'b [u8], WireError>,
) -> Option<(T, T)> {
    let first = decode(bytes).ok()?;
    let mut buf = vec![0u8; max_len];
    let encoded = match encode(&first, &mut buf) {
        Ok(encoded) => encoded.to_vec(),
        Err(e) => panic!("a decoded value does not re-encode into {max_len} bytes: {e}"),
    };
    let second = match decode(&encoded) {
        Ok(second) => second,
        Err(e) => panic!("a re-encoded value does not decode: {e}"),
    };
    let mut again = vec![0u8; max_len];
    let reencoded = match encode(&second, &mut again) {
        Ok(reencoded) => reencoded,
        Err(e) => panic!("a value decoded from a re-encoding does not encode: {e}"),
    };
    assert_eq!(reencoded, &encoded[..], "re-encoding is not stable");
    Some((first, second))
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

/// A reconfiguration request; it has `PartialEq`, so the values must also
/// be equal.
pub fn reconfigure_msg(bytes: &[u8]) {
    if let Some((first, second)) = check(
        bytes,
        wire::MAX_RECONFIGURE_MSG_LEN,
        wire::decode_reconfigure_msg,
        wire::encode_reconfigure_msg,
    ) {
        assert_eq!(first, second, "the round trip changed the request");
    }
}

/// An LRTQ upgrade request; values must also be equal.
pub fn lrtq_upgrade_msg(bytes: &[u8]) {
    if let Some((first, second)) = check(
        bytes,
        wire::MAX_LRTQ_UPGRADE_MSG_LEN,
        wire::decode_lrtq_upgrade_msg,
        wire::encode_lrtq_upgrade_msg,
    ) {
        assert_eq!(first, second, "the round trip changed the request");
    }
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

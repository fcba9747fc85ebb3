//! The round-trip check of each decoder.
//!
//! Several decoded types hold secrets and have no `PartialEq`, so values are
//! compared through their encodings: `encode(decode(b))` must decode again,
//! and encoding that second value must give the very same bytes. The first
//! encoding need not equal the input `b`: decoding normalises some inputs
//! (a member set is sorted).

use tq_core::api::{
    CommitOutcome, CoordinatorStatus, NodeStatus, PrepareAndCommitOutcome, ReconfigureOutcome,
};
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_core::wire::{self, DecodeSlot, Fillable, NexusWire, WireError};

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

// Each target below returns whether `bytes` decoded.

/// A peer message (decoded owned, encoded through a borrowed view).
pub fn peer_msg(bytes: &[u8]) -> bool {
    check(
        bytes,
        wire::MAX_PEER_MSG_LEN,
        wire::decode_peer_msg,
        |msg, buf| wire::encode_peer_msg(&msg.as_ref(), buf),
    )
    .is_some()
}

/// A persistent state.
pub fn persistent_state(bytes: &[u8]) -> bool {
    check(
        bytes,
        wire::MAX_PERSISTENT_STATE_LEN,
        wire::decode_persistent_state,
        wire::encode_persistent_state,
    )
    .is_some()
}

/// A value decoded in place into a fresh slot (as a node does), cloned
/// out for the comparison.
fn in_place<T: Fillable + Clone>(
    decode: impl for<'s> Fn(&[u8], &'s mut DecodeSlot<T>) -> Result<&'s T, WireError>,
) -> impl Fn(&[u8]) -> Result<T, WireError> {
    move |bytes| {
        let mut slot = Box::new(DecodeSlot::new());
        decode(bytes, &mut slot).cloned()
    }
}

/// A request or answer between Nexus and a node: it has `PartialEq`, so
/// the values must also be equal.
fn nexus<T: NexusWire + PartialEq + core::fmt::Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, WireError>,
) -> bool {
    let Some((first, second)) = check(bytes, T::MAX_LEN, decode, |value, buf| {
        wire::encode_nexus(value, buf)
    }) else {
        return false;
    };
    assert_eq!(first, second, "the round trip changed the value");
    true
}

/// A reconfiguration request, decoded in place.
pub fn reconfigure_msg(bytes: &[u8]) -> bool {
    nexus(bytes, in_place(wire::decode_reconfigure_msg_into))
}

/// An LRTQ upgrade request, decoded in place.
pub fn lrtq_upgrade_msg(bytes: &[u8]) -> bool {
    nexus(bytes, in_place(wire::decode_lrtq_upgrade_msg_into))
}

/// A configuration, as `prepare_and_commit`'s request, decoded in place.
pub fn configuration(bytes: &[u8]) -> bool {
    nexus(bytes, in_place(wire::decode_configuration_into))
}

/// A commit request.
pub fn commit_request(bytes: &[u8]) -> bool {
    nexus(bytes, wire::decode_commit_request)
}

/// Every answer a node gives Nexus; the first byte picks which.
pub fn nexus_answer(bytes: &[u8]) -> bool {
    let Some((&which, bytes)) = bytes.split_first() else {
        return false;
    };
    match which % 6 {
        0 => nexus::<Result<ReconfigureOutcome, ReconfigureError>>(bytes, wire::decode_answer),
        1 => nexus::<Result<(), LrtqUpgradeError>>(bytes, wire::decode_answer),
        2 => nexus::<Result<CommitOutcome, CommitError>>(bytes, wire::decode_answer),
        3 => nexus::<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>(
            bytes,
            wire::decode_answer,
        ),
        4 => nexus::<Option<CoordinatorStatus>>(bytes, wire::decode_answer),
        _ => nexus::<NodeStatus>(bytes, wire::decode_answer),
    }
}

/// LRTQ share data.
pub fn lrtq_share_data(bytes: &[u8]) -> bool {
    check(
        bytes,
        wire::MAX_LRTQ_SHARE_DATA_LEN,
        wire::decode_lrtq_share_data,
        wire::encode_lrtq_share_data,
    )
    .is_some()
}

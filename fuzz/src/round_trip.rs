//! The round-trip check of each decoder.
//!
//! Decoding is canonical (PROTOCOL.md section 5): bytes are accepted only
//! if they are exactly the encoding of the value they decode to. So
//! whenever `decode(b)` succeeds, `encode(decode(b))` must be `b` itself,
//! byte for byte. Comparing encodings also covers the types that hold
//! secrets and have no `PartialEq`.

use tq_core::api::{
    CommitOutcome, CoordinatorStatus, NodeStatus, PrepareAndCommitOutcome, ReconfigureOutcome,
};
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_core::wire::{self, DecodeSlot, Fillable, NexusWire, WireError};

/// Decodes `bytes` with `decode`; if that succeeds, re-encodes with
/// `encode` into a `max_len` buffer and checks that gives `bytes` back.
/// Returns whether `bytes` decoded.
///
/// # Panics
///
/// If a decoded value does not fit `max_len`, or does not encode back to
/// `bytes`.
pub fn check<T>(
    bytes: &[u8],
    max_len: usize,
    decode: impl Fn(&[u8]) -> Result<T, WireError>,
    encode: impl for<'b> Fn(&T, &'b mut [u8]) -> Result<&'b [u8], WireError>,
) -> bool {
    let Ok(value) = decode(bytes) else {
        return false;
    };
    let mut buf = vec![0u8; max_len];
    match encode(&value, &mut buf) {
        Ok(encoded) => assert_eq!(
            encoded, bytes,
            "accepted bytes are not the encoding of their value (not canonical)"
        ),
        Err(e) => panic!("a decoded value does not re-encode into {max_len} bytes: {e}"),
    }
    true
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
}

/// A persistent state.
pub fn persistent_state(bytes: &[u8]) -> bool {
    check(
        bytes,
        wire::MAX_PERSISTENT_STATE_LEN,
        wire::decode_persistent_state,
        wire::encode_persistent_state,
    )
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

/// A request or answer between Nexus and a node.
fn nexus<T: NexusWire>(bytes: &[u8], decode: impl Fn(&[u8]) -> Result<T, WireError>) -> bool {
    check(bytes, T::MAX_LEN, decode, |value, buf| {
        wire::encode_nexus(value, buf)
    })
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
}

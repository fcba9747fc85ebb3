//! The hand-written wire vectors (`core/tests/vectors/wire.txt`) on the
//! host. The service processor runs the same file (target-tests, bin
//! `vectors`) and must give the same outcomes.

#[path = "../../tests/vectors/format.rs"]
mod format;

use std::vec::Vec;

use super::*;
use crate::api::{LrtqUpgradeMsg, ReconfigureMsg};
use crate::persistent::PersistentState;
use format::{Decoder, Outcome, Vector};

const VECTORS: &str = include_str!("../../tests/vectors/wire.txt");

fn all_vectors() -> Vec<Vector<'static>> {
    format::vectors(VECTORS)
        .collect::<Result<_, _>>()
        .expect("every line of wire.txt is a vector, a comment or blank")
}

fn bytes_of(vector: &Vector<'_>) -> Vec<u8> {
    let mut buf = std::vec![0; MAX_PERSISTENT_STATE_LEN];
    vector.bytes_into(&mut buf).expect("hex").to_vec()
}

/// A reconfiguration request, decoded through its slot.
fn decode_reconfigure_msg(bytes: &[u8]) -> Result<ReconfigureMsg, WireError> {
    decode_reconfigure_msg_into(bytes, &mut DecodeSlot::new()).cloned()
}

/// An LRTQ upgrade request, decoded through its slot.
fn decode_lrtq_upgrade_msg(bytes: &[u8]) -> Result<LrtqUpgradeMsg, WireError> {
    decode_lrtq_upgrade_msg_into(bytes, &mut DecodeSlot::new()).cloned()
}

/// What the public decoder of `decoder` makes of `bytes`.
fn decode_as(decoder: Decoder, bytes: &[u8]) -> Result<(), WireError> {
    match decoder {
        Decoder::Peer => decode_peer_msg(bytes).map(drop),
        Decoder::State => decode_persistent_state(bytes).map(drop),
        Decoder::Reconfigure => decode_reconfigure_msg(bytes).map(drop),
        Decoder::Upgrade => decode_lrtq_upgrade_msg(bytes).map(drop),
        Decoder::Lrtq => decode_lrtq_share_data(bytes).map(drop),
    }
}

/// Whether postcard and the types' own rules, without the canonical
/// check, read a value from `bytes` (trailing bytes allowed): what the
/// decoders accepted before the check.
fn postcard_alone_reads(decoder: Decoder, bytes: &[u8]) -> bool {
    match decoder {
        Decoder::Peer => decode_with(
            bytes,
            PEER_MSG_VERSION,
            in_place::PeerMsgInto(&mut empty_peer_msg()),
        )
        .is_ok(),
        Decoder::State => {
            let mut state = PersistentState::new();
            decode_with(
                bytes,
                PERSISTENT_STATE_VERSION,
                in_place::StateInto(&mut state),
            )
            .is_ok()
        }
        Decoder::Reconfigure => {
            let mut msg = <ReconfigureMsg as Fillable>::UNFILLED;
            decode_with(bytes, NEXUS_VERSION, in_place::ReconfigureInto(&mut msg)).is_ok()
        }
        Decoder::Upgrade => {
            let mut msg = <LrtqUpgradeMsg as Fillable>::UNFILLED;
            decode_with(bytes, NEXUS_VERSION, in_place::LrtqUpgradeInto(&mut msg)).is_ok()
        }
        Decoder::Lrtq => decode_with(
            bytes,
            LRTQ_SHARE_DATA_VERSION,
            in_place::LrtqDataInto(&mut None),
        )
        .is_ok(),
    }
}

#[test]
fn every_vector_gives_its_outcome() {
    let mut wrong = Vec::new();
    for vector in all_vectors() {
        let got = Outcome::of(&decode_as(vector.decoder, &bytes_of(&vector)));
        if got != vector.expected {
            wrong.push((vector.line, vector.expected, got));
        }
    }
    assert!(wrong.is_empty(), "(line, expected, got): {wrong:?}");
}

/// The `canonical` mark is right both ways: exactly the vectors so marked
/// are read by postcard alone on this 64-bit host and refused by the
/// canonical rule. So each of them tests the rule, and no other refusal
/// is the rule's doing.
#[test]
fn exactly_the_marked_vectors_are_refused_by_the_canonical_rule_alone() {
    let mut wrong = Vec::new();
    for vector in all_vectors() {
        let bytes = bytes_of(&vector);
        let by_rule =
            vector.expected == Outcome::Malformed && postcard_alone_reads(vector.decoder, &bytes);
        if by_rule != vector.canonical_rule {
            wrong.push(vector.line);
        }
    }
    assert!(wrong.is_empty(), "lines with a wrong mark: {wrong:?}");
}

#[test]
fn the_vectors_cover_every_decoder_with_each_kind_of_outcome() {
    let vectors = all_vectors();
    for decoder in Decoder::ALL {
        let of = |pick: &dyn Fn(&Vector<'_>) -> bool| {
            vectors
                .iter()
                .filter(|v| v.decoder == decoder && pick(v))
                .count()
        };
        assert!(of(&|v| v.expected == Outcome::Ok) >= 1, "{decoder:?}");
        assert!(of(&|v| v.canonical_rule) >= 3, "{decoder:?}");
        assert!(of(&|v| v.expected == Outcome::Trailing) >= 1, "{decoder:?}");
        assert!(of(&|v| v.expected == Outcome::Empty) >= 1, "{decoder:?}");
    }
}

/// Every accepted vector is, byte for byte, what our encoder writes for
/// its value: the vectors were written from the format's description, so
/// this checks the encoder against it too.
#[test]
fn every_accepted_vector_is_what_the_encoder_writes() {
    for vector in all_vectors().iter().filter(|v| v.expected == Outcome::Ok) {
        let bytes = bytes_of(vector);
        let mut buf = std::vec![0; MAX_PERSISTENT_STATE_LEN];
        let encoded = match vector.decoder {
            Decoder::Peer => encode_peer_msg(&decode_peer_msg(&bytes).unwrap().as_ref(), &mut buf),
            Decoder::State => {
                encode_persistent_state(&decode_persistent_state(&bytes).unwrap(), &mut buf)
            }
            Decoder::Reconfigure => {
                encode_nexus(&decode_reconfigure_msg(&bytes).unwrap(), &mut buf)
            }
            Decoder::Upgrade => encode_nexus(&decode_lrtq_upgrade_msg(&bytes).unwrap(), &mut buf),
            Decoder::Lrtq => {
                encode_lrtq_share_data(&decode_lrtq_share_data(&bytes).unwrap(), &mut buf)
            }
        };
        assert_eq!(encoded.unwrap(), &bytes[..], "line {}", vector.line);
    }
}

/// The small decoder the node tries first reads exactly the peer messages
/// the full decoder reads that carry no configuration, as the same
/// message, and refuses every other vector (which the node then hands to
/// the full decoder).
#[test]
fn the_small_peer_decoder_agrees_with_the_full_one() {
    let mut kinds = std::collections::BTreeSet::new();
    for vector in all_vectors() {
        if vector.decoder != Decoder::Peer {
            continue;
        }
        let bytes = bytes_of(&vector);
        let mut small = empty_small_peer_msg();
        let small_read = decode_small_peer_msg_into(&bytes, &mut small);
        match decode_peer_msg(&bytes) {
            Ok(full) if !matches!(full.body, Body::Prepare { .. } | Body::CommitAdvance(_)) => {
                assert_eq!(small_read, Ok(()), "line {}", vector.line);
                let mut a = [0u8; MAX_PEER_MSG_LEN];
                let mut b = [0u8; MAX_PEER_MSG_LEN];
                assert_eq!(
                    encode_peer_msg(&small.as_peer_msg_ref(), &mut a),
                    encode_peer_msg(&full.as_ref(), &mut b),
                    "line {}",
                    vector.line
                );
                kinds.insert(full.body.kind());
            }
            Ok(full) => {
                assert!(small_read.is_err(), "line {}", vector.line);
                kinds.insert(full.body.kind());
            }
            Err(_) => assert!(small_read.is_err(), "line {}", vector.line),
        }
    }
    assert_eq!(
        kinds.len(),
        8,
        "every body kind has an accepted vector: {kinds:?}"
    );
}

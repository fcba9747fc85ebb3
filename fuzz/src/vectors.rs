//! The hand-written wire vectors of `core/tests/vectors/wire.txt` as seeds
//! of the decoder targets: small inputs, accepted and refused, with
//! overlong varints in every position postcard reads one (epochs, body
//! tags, list and string lengths). `examples/make_corpus.rs` writes them
//! into `seeds/<target>/vector_line_<N>`.

// The reader tq-core's host test and the target binary share; the seeds
// use only part of it.
#[allow(dead_code)]
#[path = "../../core/tests/vectors/format.rs"]
mod format;

use format::Decoder;
use tq_core::wire::{self, WireError};

const VECTORS: &str = include_str!("../../core/tests/vectors/wire.txt");

/// The fuzz target that feeds `decoder`.
fn target(decoder: Decoder) -> &'static str {
    match decoder {
        Decoder::Peer => "peer_msg",
        Decoder::State => "persistent_state",
        Decoder::Reconfigure => "reconfigure_msg",
        Decoder::Upgrade => "lrtq_upgrade_msg",
        Decoder::Lrtq => "lrtq_share_data",
    }
}

/// Every vector: its target, a file name, its bytes.
///
/// # Panics
///
/// If `wire.txt` has a line that is not a vector, a comment or blank.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut buf = vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
    format::vectors(VECTORS)
        .map(|vector| {
            let vector = vector.expect("wire.txt parses");
            let bytes = vector.bytes_into(&mut buf).expect("vector bytes parse");
            (
                target(vector.decoder),
                format!("vector_line_{}", vector.line),
                bytes.to_vec(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round_trip;

    /// The round trip holds on every vector (those that decode give their
    /// bytes back), and each gives the outcome the file says.
    #[test]
    fn every_vector_round_trips_with_its_outcome() {
        let mut buf = vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
        let mut count = 0;
        for vector in format::vectors(VECTORS) {
            let vector = vector.unwrap();
            let bytes = vector.bytes_into(&mut buf).unwrap();
            let outcome = match vector.decoder {
                Decoder::Peer => {
                    round_trip::peer_msg(bytes);
                    format::Outcome::of(&wire::decode_peer_msg(bytes))
                }
                Decoder::State => {
                    round_trip::persistent_state(bytes);
                    format::Outcome::of(&wire::decode_persistent_state(bytes))
                }
                Decoder::Reconfigure => {
                    round_trip::reconfigure_msg(bytes);
                    let mut slot = Box::new(wire::DecodeSlot::new());
                    format::Outcome::of(&wire::decode_reconfigure_msg_into(bytes, &mut slot))
                }
                Decoder::Upgrade => {
                    round_trip::lrtq_upgrade_msg(bytes);
                    let mut slot = Box::new(wire::DecodeSlot::new());
                    format::Outcome::of(&wire::decode_lrtq_upgrade_msg_into(bytes, &mut slot))
                }
                Decoder::Lrtq => {
                    round_trip::lrtq_share_data(bytes);
                    format::Outcome::of(&wire::decode_lrtq_share_data(bytes))
                }
            };
            assert_eq!(outcome, vector.expected, "line {}", vector.line);
            count += 1;
        }
        assert_eq!(seeds().len(), count);
    }
}

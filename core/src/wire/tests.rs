//! Round trips, exact worst-case sizes, and refusal of bad bytes.

mod nexus;
mod pages;

use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::api::{LrtqUpgradeMsg, ReconfigureMsg};
use crate::config::{ConfigFields, Configuration, Member, Members};
use crate::crypto::{EncryptedRackSecrets, LrtqShare, Share, ShareDigest};
use crate::ids::{Epoch, LrtqThreshold, PlatformId, RackId, Threshold};
use crate::limits::{LRTQ_TOTAL_SHARES, MAX_MEMBERS, MAX_SEALED_LEN};
use crate::member_set::MemberSet;
use crate::messages::{Body, Envelope};
use crate::persistent::{Expunged, LrtqShareData, StateFields, StoredConfig};

/// A reconfiguration request decoded into a fresh slot, as a value.
fn decode_reconfigure_msg(bytes: &[u8]) -> Result<ReconfigureMsg, WireError> {
    let mut slot = DecodeSlot::new();
    decode_reconfigure_msg_into(bytes, &mut slot).cloned()
}

/// An LRTQ upgrade request decoded into a fresh slot, as a value.
fn decode_lrtq_upgrade_msg(bytes: &[u8]) -> Result<LrtqUpgradeMsg, WireError> {
    let mut slot = DecodeSlot::new();
    decode_lrtq_upgrade_msg_into(bytes, &mut slot).cloned()
}

/// A platform id with both fields at their longest, distinct per `i`.
fn longest_id(i: usize) -> PlatformId {
    let serial = std::format!("{i:0>32}");
    PlatformId::new(&"P".repeat(32), &serial).unwrap()
}

fn share() -> Share {
    Share::new(255, &[0xee; 32]).unwrap()
}

fn lrtq_share() -> LrtqShare {
    let mut bytes = [0u8; 33];
    bytes[0] = 255;
    bytes[1] = 7;
    LrtqShare::from_bytes(&bytes).unwrap()
}

fn largest_config(epoch: u64) -> Configuration {
    let members: Members = (0..MAX_MEMBERS)
        .map(|i| Member {
            id: longest_id(i),
            share_digest: ShareDigest([0xff; 32]),
        })
        .collect();
    let sealed = EncryptedRackSecrets::from_parts([0xaa; 32], &[0xbb; MAX_SEALED_LEN]).unwrap();
    Configuration::new(ConfigFields {
        rack_id: RackId([0xff; 16]),
        epoch: Epoch(epoch),
        coordinator: longest_id(0),
        members,
        threshold: Threshold::new(31).unwrap(),
        encrypted_rack_secrets: Some(sealed),
    })
    .unwrap()
}

fn largest_member_set() -> MemberSet {
    let ids: Vec<PlatformId> = (0..MAX_MEMBERS).map(longest_id).collect();
    MemberSet::new(&ids).unwrap()
}

fn largest_lrtq_data() -> LrtqShareData {
    LrtqShareData {
        rack_id: RackId([0xff; 16]),
        threshold: LrtqThreshold::new(32).unwrap(),
        share: lrtq_share(),
        share_digests: (0..LRTQ_TOTAL_SHARES)
            .map(|i| ShareDigest([i as u8; 32]))
            .collect(),
    }
}

fn largest_state() -> PersistentState {
    let configs = [u64::MAX - 2, u64::MAX - 1, u64::MAX]
        .into_iter()
        .map(|e| StoredConfig {
            config: largest_config(e),
            share: Some(share()),
        })
        .collect();
    PersistentState::try_from(StateFields {
        lrtq: Some(largest_lrtq_data()),
        configs,
        latest_committed: Some(Epoch(u64::MAX - 2)),
        expunged: Some(Expunged {
            epoch: Epoch(u64::MAX),
            from: longest_id(1),
        }),
    })
    .unwrap()
}

#[test]
fn the_largest_prepare_fills_max_peer_msg_len_exactly() {
    let config = largest_config(u64::MAX);
    let share = share();
    let msg: PeerMsgRef<'_> = Envelope {
        rack_id: RackId([0xff; 16]),
        body: Body::Prepare {
            config: &config,
            share: &share,
            last_committed: Some(Epoch(u64::MAX)),
        },
    };
    let mut buf = [0u8; MAX_PEER_MSG_LEN];
    let bytes = encode_peer_msg(&msg, &mut buf).unwrap();
    assert_eq!(bytes.len(), MAX_PEER_MSG_LEN);
    let decoded = decode_peer_msg(bytes).unwrap();
    let Body::Prepare {
        config: c,
        share: s,
        last_committed,
    } = decoded.body
    else {
        panic!("expected Prepare");
    };
    assert_eq!(c, config);
    assert_eq!(last_committed, Some(Epoch(u64::MAX)));
    assert_eq!(s.x(), 255);
    // One byte less does not fit, and says so.
    assert_eq!(
        encode_peer_msg(&msg, &mut buf[..MAX_PEER_MSG_LEN - 1]),
        Err(WireError::BufferTooSmall)
    );
}

#[test]
fn the_largest_persistent_state_fills_its_bound_exactly() {
    let state = largest_state();
    let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
    let bytes = encode_persistent_state(&state, &mut buf).unwrap().to_vec();
    assert_eq!(bytes.len(), MAX_PERSISTENT_STATE_LEN);
    let decoded = decode_persistent_state(&bytes).unwrap();
    let mut again = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
    assert_eq!(
        encode_persistent_state(&decoded, &mut again).unwrap(),
        &bytes[..]
    );
}

#[test]
fn the_largest_nexus_requests_fill_their_bounds_exactly() {
    let reconfigure = ReconfigureMsg {
        rack_id: RackId([0xff; 16]),
        epoch: Epoch(u64::MAX),
        last_committed_epoch: Some(Epoch(u64::MAX)),
        members: largest_member_set(),
        threshold: Threshold::new(31).unwrap(),
    };
    let mut buf = [0u8; MAX_RECONFIGURE_MSG_LEN];
    let bytes = encode_nexus(&reconfigure, &mut buf).unwrap();
    assert_eq!(bytes.len(), MAX_RECONFIGURE_MSG_LEN);
    assert_eq!(decode_reconfigure_msg(bytes).unwrap(), reconfigure);

    let upgrade = LrtqUpgradeMsg {
        rack_id: RackId([0xff; 16]),
        epoch: Epoch(u64::MAX),
        members: largest_member_set(),
        threshold: Threshold::new(31).unwrap(),
    };
    let mut buf = [0u8; MAX_LRTQ_UPGRADE_MSG_LEN];
    let bytes = encode_nexus(&upgrade, &mut buf).unwrap();
    assert_eq!(bytes.len(), MAX_LRTQ_UPGRADE_MSG_LEN);
    assert_eq!(decode_lrtq_upgrade_msg(bytes).unwrap(), upgrade);
}

#[test]
fn the_largest_lrtq_share_data_fills_its_bound_exactly() {
    let data = largest_lrtq_data();
    let mut buf = [0u8; MAX_LRTQ_SHARE_DATA_LEN];
    let bytes = encode_lrtq_share_data(&data, &mut buf).unwrap();
    assert_eq!(bytes.len(), MAX_LRTQ_SHARE_DATA_LEN);
    let decoded = decode_lrtq_share_data(bytes).unwrap();
    assert_eq!(decoded.share_digests, data.share_digests);
    assert_eq!(decoded.share.expose_bytes(), data.share.expose_bytes());
}

fn small_msg_bytes() -> Vec<u8> {
    let msg: PeerMsgRef<'_> = Envelope {
        rack_id: RackId([1; 16]),
        body: Body::GetShare(Epoch(300)),
    };
    let mut buf = [0u8; MAX_PEER_MSG_LEN];
    encode_peer_msg(&msg, &mut buf).unwrap().to_vec()
}

#[test]
fn a_small_message_has_a_stable_layout() {
    // version, rack id, variant tag 2 (GetShare), epoch 300 as a varint.
    let mut expected = std::vec![PEER_MSG_VERSION];
    expected.extend_from_slice(&[1; 16]);
    expected.extend_from_slice(&[2, 0xac, 0x02]);
    assert_eq!(small_msg_bytes(), expected);
}

#[test]
fn bad_framing_is_refused() {
    assert_eq!(decode_peer_msg(&[]).err(), Some(WireError::Empty));
    let mut bytes = small_msg_bytes();
    bytes[0] = PEER_MSG_VERSION + 1;
    assert_eq!(
        decode_peer_msg(&bytes).err(),
        Some(WireError::UnsupportedVersion(PEER_MSG_VERSION + 1))
    );
    let mut bytes = small_msg_bytes();
    bytes.push(0);
    assert_eq!(
        decode_peer_msg(&bytes).err(),
        Some(WireError::TrailingBytes)
    );
    let bytes = small_msg_bytes();
    for len in 1..bytes.len() {
        assert_eq!(
            decode_peer_msg(&bytes[..len]).err(),
            Some(WireError::Malformed)
        );
    }
}

#[test]
fn values_that_break_type_rules_are_refused() {
    // A share with x = 0.
    let mut bytes = std::vec![PEER_MSG_VERSION];
    bytes.extend_from_slice(&[1; 16]);
    bytes.extend_from_slice(&[3, 5, 0]); // Share { epoch 5, x 0, .. }
    bytes.extend_from_slice(&[9; 32]);
    assert_eq!(decode_peer_msg(&bytes).err(), Some(WireError::Malformed));
    bytes[19] = 1;
    assert!(decode_peer_msg(&bytes).is_ok());

    // A threshold out of range, and a non-printable platform id.
    let reconfigure = ReconfigureMsg {
        rack_id: RackId([1; 16]),
        epoch: Epoch(2),
        last_committed_epoch: None,
        members: MemberSet::new(&[PlatformId::new("p", "s").unwrap()]).unwrap(),
        threshold: Threshold::new(2).unwrap(),
    };
    let mut buf = [0u8; MAX_RECONFIGURE_MSG_LEN];
    let good = encode_nexus(&reconfigure, &mut buf).unwrap().to_vec();
    let mut bad_threshold = good.clone();
    *bad_threshold.last_mut().unwrap() = 1;
    assert_eq!(
        decode_reconfigure_msg(&bad_threshold).err(),
        Some(WireError::Malformed)
    );
    let mut bad_id = good.clone();
    let at = bad_id.iter().position(|&b| b == b's').unwrap();
    bad_id[at] = 0x07;
    assert_eq!(
        decode_reconfigure_msg(&bad_id).err(),
        Some(WireError::Malformed)
    );
}

#[test]
fn an_unsorted_member_list_is_refused_but_a_member_set_is_sorted() {
    let config = largest_config(5);
    let mut fields = config.fields().clone();
    fields.members.swap(0, 1);
    // Encode the raw fields (bypassing validation) and decode as a config.
    let mut buf = std::vec![0u8; MAX_PEER_MSG_LEN];
    let raw = postcard::to_slice(&fields, &mut buf).unwrap().to_vec();
    assert!(postcard::from_bytes::<Configuration>(&raw).is_err());
    let ok = postcard::to_slice(config.fields(), &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(postcard::from_bytes::<Configuration>(&ok).unwrap(), config);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_peer_msg(&bytes);
        let _ = decode_persistent_state(&bytes);
        let _ = decode_reconfigure_msg(&bytes);
        let _ = decode_lrtq_upgrade_msg(&bytes);
        let _ = decode_lrtq_share_data(&bytes);
        let _ = decode_commit_request(&bytes);
        let _ = decode_configuration_into(&bytes, &mut DecodeSlot::new());
    }

    #[test]
    fn mutated_messages_never_panic_and_reencode_identically(
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let config = largest_config(9);
        let share = share();
        let msg: PeerMsgRef<'_> = Envelope {
            rack_id: RackId([3; 16]),
            body: Body::CommitAdvance(&config),
        };
        let _ = &share;
        let mut buf = std::vec![0u8; MAX_PEER_MSG_LEN];
        let mut bytes = encode_peer_msg(&msg, &mut buf).unwrap().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = value;
        if let Ok(decoded) = decode_peer_msg(&bytes) {
            let Body::CommitAdvance(c) = &decoded.body else {
                return Ok(());
            };
            let again: PeerMsgRef<'_> = Envelope {
                rack_id: decoded.rack_id,
                body: Body::CommitAdvance(c),
            };
            let mut out = std::vec![0u8; MAX_PEER_MSG_LEN];
            prop_assert_eq!(encode_peer_msg(&again, &mut out).unwrap(), &bytes[..]);
        }
    }
}

/// Peer messages of every kind, encoded.
fn every_kind_of_msg() -> Vec<Vec<u8>> {
    let config = largest_config(9);
    let share = share();
    let lrtq = lrtq_share();
    let bodies: [Body<&Configuration, &Share, &LrtqShare>; 8] = [
        Body::Prepare {
            config: &config,
            share: &share,
            last_committed: Some(Epoch(8)),
        },
        Body::PrepareAck(Epoch(9)),
        Body::GetShare(Epoch(300)),
        Body::Share {
            epoch: Epoch(9),
            share: &share,
        },
        Body::GetLrtqShare,
        Body::LrtqShare(&lrtq),
        Body::Expunged(Epoch(u64::MAX)),
        Body::CommitAdvance(&config),
    ];
    bodies
        .into_iter()
        .map(|body| {
            let mut buf = std::vec![0u8; MAX_PEER_MSG_LEN];
            let msg = Envelope {
                rack_id: RackId([3; 16]),
                body,
            };
            encode_peer_msg(&msg, &mut buf).unwrap().to_vec()
        })
        .collect()
}

/// States with and without each optional part, encoded.
fn some_states() -> Vec<Vec<u8>> {
    let small = PersistentState::try_from(StateFields {
        lrtq: None,
        configs: [StoredConfig {
            config: largest_config(4),
            share: None,
        }]
        .into_iter()
        .collect(),
        latest_committed: None,
        expunged: None,
    })
    .unwrap();
    [largest_state(), small, PersistentState::new()]
        .iter()
        .map(|state| {
            let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
            encode_persistent_state(state, &mut buf).unwrap().to_vec()
        })
        .collect()
}

/// Changes one byte of `bytes`, or cuts it short there.
fn damage(mut bytes: Vec<u8>, at: prop::sample::Index, value: u8, cut: bool) -> Vec<u8> {
    let i = at.index(bytes.len());
    if cut {
        bytes.truncate(i);
    } else {
        bytes[i] = value;
    }
    bytes
}

/// The in-place peer message decoder accepts exactly what serde's derived
/// decoder accepts, with the same value or the same error; what it accepts
/// is the encoding of the value it gives (canonical).
fn peer_msg_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let derived = decode::<PeerMsg>(bytes, PEER_MSG_VERSION);
    let in_place = decode_peer_msg(bytes);
    match (derived, in_place) {
        (Ok(a), Ok(b)) => {
            let (mut x, mut y) = (
                std::vec![0; MAX_PEER_MSG_LEN],
                std::vec![0; MAX_PEER_MSG_LEN],
            );
            prop_assert_eq!(
                encode(&a, PEER_MSG_VERSION, &mut x).unwrap(),
                encode(&b, PEER_MSG_VERSION, &mut y).unwrap()
            );
            prop_assert_eq!(encode(&b, PEER_MSG_VERSION, &mut y).unwrap(), bytes);
        }
        (a, b) => prop_assert_eq!(a.err(), b.err()),
    }
    Ok(())
}

/// The same for the persistent state; a failed decode leaves it empty.
fn state_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let derived = decode::<PersistentState>(bytes, PERSISTENT_STATE_VERSION);
    let mut state = PersistentState::new();
    // Stale contents must not survive a failed decode.
    state.store(&largest_config(1), Some(&share())).unwrap();
    let in_place = decode_persistent_state_into(bytes, &mut state);
    match derived {
        Ok(d) => {
            prop_assert_eq!(in_place, Ok(()));
            let mut x = std::vec![0; MAX_PERSISTENT_STATE_LEN];
            let mut y = std::vec![0; MAX_PERSISTENT_STATE_LEN];
            prop_assert_eq!(
                encode_persistent_state(&d, &mut x).unwrap(),
                encode_persistent_state(&state, &mut y).unwrap()
            );
            prop_assert_eq!(encode_persistent_state(&state, &mut y).unwrap(), bytes);
        }
        Err(e) => {
            prop_assert_eq!(in_place, Err(e));
            let fields = state.fields();
            prop_assert!(fields.lrtq.is_none() && fields.configs.is_empty());
            prop_assert!(fields.latest_committed.is_none() && fields.expunged.is_none());
        }
    }
    Ok(())
}

/// LRTQ share data with every digest and with few, encoded.
fn some_lrtq_data() -> Vec<Vec<u8>> {
    let mut few = largest_lrtq_data();
    few.threshold = LrtqThreshold::new(2).unwrap();
    few.share_digests.truncate(3);
    [largest_lrtq_data(), few]
        .iter()
        .map(|data| {
            let mut buf = std::vec![0u8; MAX_LRTQ_SHARE_DATA_LEN];
            encode_lrtq_share_data(data, &mut buf).unwrap().to_vec()
        })
        .collect()
}

/// The same for LRTQ share data, decoded into a slot that held other data
/// and into an empty one; a failed decode leaves the slot empty.
fn lrtq_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let derived = decode::<LrtqShareData>(bytes, LRTQ_SHARE_DATA_VERSION);
    let mut stale = Some(LrtqShareData {
        rack_id: RackId([1; 16]),
        threshold: LrtqThreshold::new(9).unwrap(),
        share: lrtq_share(),
        share_digests: (0..LRTQ_TOTAL_SHARES)
            .map(|i| ShareDigest([!(i as u8); 32]))
            .collect(),
    });
    let in_place = decode_lrtq_share_data_into(bytes, &mut stale);
    let fresh = decode_lrtq_share_data(bytes);
    let mut buf = [0u8; MAX_LRTQ_SHARE_DATA_LEN];
    let mut encoded = |data: &LrtqShareData| {
        encode_lrtq_share_data(data, &mut buf)
            .map(<[u8]>::to_vec)
            .unwrap()
    };
    match derived {
        Ok(d) => {
            prop_assert_eq!(in_place, Ok(()));
            let expected = encoded(&d);
            prop_assert_eq!(&expected[..], bytes);
            prop_assert_eq!(stale.as_ref().map(&mut encoded), Some(expected.clone()));
            prop_assert_eq!(fresh.as_ref().map(&mut encoded).ok(), Some(expected));
        }
        Err(e) => {
            prop_assert_eq!(in_place, Err(e));
            prop_assert!(stale.is_none());
            prop_assert_eq!(fresh.err(), Some(e));
        }
    }
    Ok(())
}

#[test]
fn the_in_place_decoders_read_every_kind_back() {
    for bytes in every_kind_of_msg() {
        assert!(decode_peer_msg(&bytes).is_ok());
        peer_msg_decoders_agree(&bytes).unwrap();
    }
    for bytes in some_states() {
        let mut state = PersistentState::new();
        decode_persistent_state_into(&bytes, &mut state).unwrap();
        state_decoders_agree(&bytes).unwrap();
    }
    for bytes in some_lrtq_data() {
        assert!(decode_lrtq_share_data(&bytes).is_ok());
        lrtq_decoders_agree(&bytes).unwrap();
    }
}

#[test]
fn a_reused_message_takes_each_new_body_whole() {
    // Every kind after every kind (itself included), into one message, as
    // a caller keeping one buffer would: the result is what a fresh decode
    // gives, whatever the message held before.
    let mut kinds = every_kind_of_msg();
    // And smaller bodies of the same kinds as the largest ones.
    let small = Configuration::new(crate::config::tests::fields(4, 2)).unwrap();
    let share = Share::new(3, &[1; 32]).unwrap();
    for body in [
        Body::Prepare {
            config: &small,
            share: &share,
            last_committed: None,
        },
        Body::CommitAdvance(&small),
    ] {
        let mut buf = std::vec![0u8; MAX_PEER_MSG_LEN];
        let msg = Envelope {
            rack_id: RackId([4; 16]),
            body,
        };
        kinds.push(encode_peer_msg(&msg, &mut buf).unwrap().to_vec());
    }
    let mut msg = empty_peer_msg();
    let (mut x, mut y) = (
        std::vec![0; MAX_PEER_MSG_LEN],
        std::vec![0; MAX_PEER_MSG_LEN],
    );
    for before in &kinds {
        for after in &kinds {
            decode_peer_msg_into(before, &mut msg).unwrap();
            decode_peer_msg_into(after, &mut msg).unwrap();
            let fresh = decode_peer_msg(after).unwrap();
            assert_eq!(
                encode_peer_msg(&msg.as_ref(), &mut x).unwrap(),
                encode_peer_msg(&fresh.as_ref(), &mut y).unwrap()
            );
        }
    }
}

proptest! {
    #[test]
    fn the_in_place_peer_msg_decoder_agrees_with_serde(
        kind in 0usize..8,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = every_kind_of_msg().swap_remove(kind);
        peer_msg_decoders_agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn the_in_place_state_decoder_agrees_with_serde(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = some_states().swap_remove(which);
        state_decoders_agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn the_in_place_lrtq_decoder_agrees_with_serde(
        which in 0usize..2,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = some_lrtq_data().swap_remove(which);
        lrtq_decoders_agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn the_in_place_decoders_agree_with_serde_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        peer_msg_decoders_agree(&bytes)?;
        state_decoders_agree(&bytes)?;
        lrtq_decoders_agree(&bytes)?;
    }
}

/// Streams `state` through a chunk of `size` bytes: the pages handed over,
/// and the total the encoder reported.
fn pages_of(state: &PersistentState, size: usize) -> (Vec<Vec<u8>>, usize) {
    let mut chunk = std::vec![0u8; size];
    let mut pages = Vec::new();
    let total = encode_persistent_state_chunked(state, &mut chunk, |page| {
        pages.push(page.to_vec());
        Ok::<(), ()>(())
    })
    .unwrap();
    (pages, total)
}

#[test]
fn the_chunked_state_encoder_writes_exactly_the_buffer_encoding() {
    let mut states = std::vec![largest_state(), PersistentState::new()];
    states.extend(
        some_states()
            .iter()
            .map(|b| decode_persistent_state(b).unwrap()),
    );
    for state in &states {
        let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
        let whole = encode_persistent_state(state, &mut buf).unwrap();
        for size in [
            1,
            7,
            256,
            MAX_PERSISTENT_STATE_LEN,
            MAX_PERSISTENT_STATE_LEN + 9,
        ] {
            let (pages, total) = pages_of(state, size);
            assert_eq!(pages.concat(), whole, "chunk of {size}");
            assert_eq!(total, whole.len());
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|page| page.len() == size));
            assert!(!last.is_empty() && last.len() <= size);
        }
    }
    // The largest state, in one call when the chunk holds it exactly.
    let (pages, _) = pages_of(&largest_state(), MAX_PERSISTENT_STATE_LEN);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0][0], PERSISTENT_STATE_VERSION);
}

#[test]
fn a_sink_error_stops_the_chunked_encoder_and_is_returned() {
    let state = largest_state();
    let mut chunk = [0u8; 256];
    let mut calls = 0;
    let result = encode_persistent_state_chunked(&state, &mut chunk, |_| {
        calls += 1;
        if calls == 3 {
            Err("storage full")
        } else {
            Ok(())
        }
    });
    assert_eq!(result, Err(ChunkedEncodeError::Sink("storage full")));
    assert_eq!(calls, 3);
    // Refused on the last page too.
    let result = encode_persistent_state_chunked(&PersistentState::new(), &mut chunk, |_| Err(7u8));
    assert_eq!(result, Err(ChunkedEncodeError::Sink(7)));
}

#[test]
fn a_zero_length_chunk_is_an_error_before_any_output() {
    let mut calls = 0;
    let result = encode_persistent_state_chunked(&largest_state(), &mut [], |_| {
        calls += 1;
        Ok::<(), ()>(())
    });
    assert_eq!(
        result,
        Err(ChunkedEncodeError::Wire(WireError::BufferTooSmall))
    );
    assert_eq!(calls, 0);
}

#[test]
fn a_short_buffer_is_refused_by_the_buffer_encoder() {
    let state = largest_state();
    let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
    for len in [0, 1, 256, MAX_PERSISTENT_STATE_LEN - 1] {
        assert_eq!(
            encode_persistent_state(&state, &mut buf[..len]),
            Err(WireError::BufferTooSmall),
            "buffer of {len}"
        );
    }
    assert_eq!(
        encode_persistent_state(&PersistentState::new(), &mut buf[..1]),
        Err(WireError::BufferTooSmall)
    );
}

/// A member set of `n` sleds, listed in reverse: not its canonical
/// encoding.
fn reversed_member_list(n: usize) -> heapless::Vec<PlatformId, MAX_MEMBERS, u8> {
    (0..n).rev().map(longest_id).collect()
}

/// Nexus requests of both kinds, the largest and small ones, encoded;
/// among them member lists that are unsorted or repeat a sled, encoded
/// from raw fields (bypassing `MemberSet`).
fn some_requests() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut buf = [0u8; MAX_RECONFIGURE_MSG_LEN];
    let small_set = MemberSet::new(&[longest_id(2), longest_id(0), longest_id(1)]).unwrap();
    let reconfigure = |last, members: &MemberSet| ReconfigureMsg {
        rack_id: RackId([0xff; 16]),
        epoch: Epoch(u64::MAX),
        last_committed_epoch: last,
        members: members.clone(),
        threshold: Threshold::new(31).unwrap(),
    };
    let mut reconfigures: Vec<Vec<u8>> = [
        reconfigure(Some(Epoch(u64::MAX)), &largest_member_set()),
        reconfigure(None, &small_set),
    ]
    .iter()
    .map(|msg| encode_nexus(msg, &mut buf).unwrap().to_vec())
    .collect();
    let upgrade = |members: &MemberSet| LrtqUpgradeMsg {
        rack_id: RackId([7; 16]),
        epoch: Epoch(2),
        members: members.clone(),
        threshold: Threshold::new(2).unwrap(),
    };
    let mut upgrades: Vec<Vec<u8>> = [upgrade(&largest_member_set()), upgrade(&small_set)]
        .iter()
        .map(|msg| encode_nexus(msg, &mut buf).unwrap().to_vec())
        .collect();
    let mut repeated = reversed_member_list(4);
    repeated[3] = repeated[0].clone();
    for list in [reversed_member_list(MAX_MEMBERS), repeated] {
        let raw = (
            RackId([1; 16]),
            Epoch(5),
            Some(Epoch(4)),
            &list,
            Threshold::new(2).unwrap(),
        );
        reconfigures.push(encode(&raw, NEXUS_VERSION, &mut buf).unwrap().to_vec());
        let raw = (RackId([1; 16]), Epoch(5), &list, Threshold::new(2).unwrap());
        upgrades.push(encode(&raw, NEXUS_VERSION, &mut buf).unwrap().to_vec());
    }
    (reconfigures, upgrades)
}

/// The in-place reconfiguration request decoder accepts exactly what
/// serde's derived decoder accepts, with the same value or the same error,
/// into a slot that held another request and into a fresh one; after a
/// failed decode the slot yields nothing.
fn reconfigure_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let derived = decode::<ReconfigureMsg>(bytes, NEXUS_VERSION);
    let held = ReconfigureMsg {
        rack_id: RackId([9; 16]),
        epoch: Epoch(77),
        last_committed_epoch: Some(Epoch(76)),
        members: largest_member_set(),
        threshold: Threshold::new(5).unwrap(),
    };
    let mut buf = [0u8; MAX_RECONFIGURE_MSG_LEN];
    let mut stale = DecodeSlot::new();
    decode_reconfigure_msg_into(encode_nexus(&held, &mut buf).unwrap(), &mut stale).unwrap();
    let in_place = decode_reconfigure_msg_into(bytes, &mut stale).cloned();
    let fresh = decode_reconfigure_msg(bytes);
    match derived {
        Ok(d) => {
            prop_assert_eq!(in_place, Ok(d.clone()));
            prop_assert_eq!(stale.get(), Some(&d));
            let mut buf = [0u8; MAX_RECONFIGURE_MSG_LEN];
            prop_assert_eq!(encode_nexus(&d, &mut buf).unwrap(), bytes);
            prop_assert_eq!(fresh, Ok(d));
        }
        Err(e) => {
            prop_assert_eq!(in_place, Err(e));
            prop_assert!(stale.get().is_none());
            prop_assert_eq!(fresh, Err(e));
        }
    }
    Ok(())
}

/// The same for LRTQ upgrade requests.
fn upgrade_decoders_agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let derived = decode::<LrtqUpgradeMsg>(bytes, NEXUS_VERSION);
    let held = LrtqUpgradeMsg {
        rack_id: RackId([9; 16]),
        epoch: Epoch(77),
        members: largest_member_set(),
        threshold: Threshold::new(5).unwrap(),
    };
    let mut buf = [0u8; MAX_LRTQ_UPGRADE_MSG_LEN];
    let mut stale = DecodeSlot::new();
    decode_lrtq_upgrade_msg_into(encode_nexus(&held, &mut buf).unwrap(), &mut stale).unwrap();
    let in_place = decode_lrtq_upgrade_msg_into(bytes, &mut stale).cloned();
    let fresh = decode_lrtq_upgrade_msg(bytes);
    match derived {
        Ok(d) => {
            prop_assert_eq!(in_place, Ok(d.clone()));
            prop_assert_eq!(stale.get(), Some(&d));
            let mut buf = [0u8; MAX_LRTQ_UPGRADE_MSG_LEN];
            prop_assert_eq!(encode_nexus(&d, &mut buf).unwrap(), bytes);
            prop_assert_eq!(fresh, Ok(d));
        }
        Err(e) => {
            prop_assert_eq!(in_place, Err(e));
            prop_assert!(stale.get().is_none());
            prop_assert_eq!(fresh, Err(e));
        }
    }
    Ok(())
}

#[test]
fn the_in_place_request_decoders_read_every_kind_back() {
    let (reconfigures, upgrades) = some_requests();
    // The first two of each are valid, then an unsorted full list (refused:
    // the set's one encoding is sorted), then a repeated sled (refused).
    let outcomes = [true, true, false, false];
    for (bytes, ok) in reconfigures.iter().zip(outcomes) {
        assert_eq!(decode_reconfigure_msg(bytes).is_ok(), ok);
        reconfigure_decoders_agree(bytes).unwrap();
    }
    for (bytes, ok) in upgrades.iter().zip(outcomes) {
        assert_eq!(decode_lrtq_upgrade_msg(bytes).is_ok(), ok);
        upgrade_decoders_agree(bytes).unwrap();
    }
    assert_eq!(
        decode_reconfigure_msg(&reconfigures[2]),
        Err(WireError::Malformed)
    );
    assert_eq!(
        decode_lrtq_upgrade_msg(&upgrades[3]),
        Err(WireError::Malformed)
    );
}

proptest! {
    #[test]
    fn the_in_place_reconfigure_decoder_agrees_with_serde(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = some_requests().0.swap_remove(which);
        reconfigure_decoders_agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn the_in_place_upgrade_decoder_agrees_with_serde(
        which in 0usize..4,
        at in any::<prop::sample::Index>(),
        value in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let bytes = some_requests().1.swap_remove(which);
        upgrade_decoders_agree(&damage(bytes, at, value, cut))?;
    }

    #[test]
    fn the_in_place_request_decoders_agree_with_serde_on_any_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        reconfigure_decoders_agree(&bytes)?;
        upgrade_decoders_agree(&bytes)?;
    }
}

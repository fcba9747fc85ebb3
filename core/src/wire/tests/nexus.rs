//! The codecs of Nexus's requests and answers: each `MAX_*_LEN` against
//! the largest value, and the borrowed answers against the owned ones.

use super::*;
use crate::api::{
    Activity, Alarm, COUNTER_COUNT, CommitError, CommitOutcome, CommitRequest, ConfigSummary,
    Coordinating, CoordinatorPhase, CoordinatorStatus, CoordinatorStatusRef, Counters, ExpungedAt,
    LrtqSummary, LrtqUpgradeError, NodeStatus, NodeStatusRef, PrepareAndCommitError,
    PrepareAndCommitOutcome, RackMismatch, ReconfigureError, ReconfigureOutcome, StateSummary,
};
use crate::crypto::RngError;
use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_STORED_CONFIGS};
use crate::member_set::MemberSubset;

/// `value` encoded into a buffer of exactly its `MAX_LEN`.
fn encoded<T: NexusWire + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = std::vec![0u8; T::MAX_LEN];
    encode_nexus(value, &mut buf).unwrap().to_vec()
}

/// Checks that `value` is the largest of its type: it fills `MAX_LEN`
/// exactly, one byte less is refused, and it decodes back.
fn assert_fills_its_bound<T>(value: &T, decode: impl Fn(&[u8]) -> Result<T, WireError>)
where
    T: NexusWire + PartialEq + core::fmt::Debug,
{
    let bytes = encoded(value);
    assert_eq!(bytes.len(), T::MAX_LEN);
    let mut short = std::vec![0u8; T::MAX_LEN - 1];
    assert_eq!(
        encode_nexus(value, &mut short),
        Err(WireError::BufferTooSmall)
    );
    assert_eq!(decode(&bytes).as_ref(), Ok(value));
}

const MAX_EPOCH: Epoch = Epoch(u64::MAX);

#[test]
fn the_largest_commit_request_fills_its_bound_exactly() {
    let request = CommitRequest {
        rack_id: RackId([0xff; 16]),
        epoch: MAX_EPOCH,
    };
    assert_eq!(CommitRequest::MAX_LEN, MAX_COMMIT_REQUEST_LEN);
    assert_fills_its_bound(&request, decode_commit_request);
}

#[test]
fn the_largest_configuration_fills_its_bound_exactly() {
    assert_eq!(Configuration::MAX_LEN, MAX_CONFIGURATION_LEN);
    assert_fills_its_bound(&largest_config(u64::MAX), |bytes| {
        decode_configuration_into(bytes, &mut DecodeSlot::new()).cloned()
    });
}

fn largest_expunged() -> ExpungedAt {
    ExpungedAt {
        epoch: MAX_EPOCH,
        from: longest_id(1),
    }
}

fn mismatch() -> RackMismatch {
    RackMismatch {
        expected: RackId([0xff; 16]),
        got: RackId([0xfe; 16]),
    }
}

/// Checks that each of `errors` (the largest value of each variant) fits
/// in `MAX_ANSWER_LEN`, the expungement, first, exactly.
fn assert_answers_fit<O, E>(errors: &[E])
where
    O: core::fmt::Debug + PartialEq,
    E: Clone + core::fmt::Debug + PartialEq,
    Result<O, E>: NexusWire + serde::de::DeserializeOwned + core::fmt::Debug + PartialEq,
{
    let answers: Vec<Result<O, E>> = errors.iter().cloned().map(Err).collect();
    assert_eq!(<Result<O, E>>::MAX_LEN, MAX_ANSWER_LEN);
    assert_fills_its_bound(&answers[0], |bytes| decode(bytes, NEXUS_VERSION));
    for answer in &answers[1..] {
        let bytes = encoded(answer);
        assert!(bytes.len() < MAX_ANSWER_LEN, "{answer:?}");
        assert_eq!(
            decode::<Result<O, E>>(&bytes, NEXUS_VERSION).as_ref(),
            Ok(answer)
        );
    }
}

#[test]
fn the_largest_answers_fill_max_answer_len_exactly() {
    let k = Threshold::new(31).unwrap();
    let big = usize::MAX;
    assert_answers_fit::<ReconfigureOutcome, _>(&[
        ReconfigureError::Expunged(largest_expunged()),
        ReconfigureError::RackIdMismatch(mismatch()),
        ReconfigureError::MemberCount(big),
        ReconfigureError::ThresholdTooLarge {
            threshold: k,
            members: big,
        },
        ReconfigureError::LastCommittedEpochMismatch {
            node: Some(MAX_EPOCH),
            request: Some(MAX_EPOCH),
        },
        ReconfigureError::EpochNotNewer { latest: MAX_EPOCH },
        ReconfigureError::Rng(RngError),
    ]);
    assert_answers_fit::<(), _>(&[
        LrtqUpgradeError::Expunged(largest_expunged()),
        LrtqUpgradeError::RackIdMismatch(mismatch()),
        LrtqUpgradeError::ThresholdTooLarge {
            threshold: k,
            members: big,
        },
        LrtqUpgradeError::LrtqThresholdAboveMembers {
            lrtq_threshold: crate::ids::LrtqThreshold::new(crate::limits::MAX_LRTQ_THRESHOLD)
                .unwrap(),
            members: big,
        },
    ]);
    assert_answers_fit::<CommitOutcome, _>(&[
        CommitError::Expunged(largest_expunged()),
        CommitError::RackIdMismatch(mismatch()),
        CommitError::NotPrepared(MAX_EPOCH),
    ]);
    assert_answers_fit::<PrepareAndCommitOutcome, _>(&[
        PrepareAndCommitError::Expunged(largest_expunged()),
        PrepareAndCommitError::RackIdMismatch(mismatch()),
        PrepareAndCommitError::NewerCommitted {
            epoch: MAX_EPOCH,
            latest: MAX_EPOCH,
        },
    ]);
    // The outcomes are a tag each.
    let ok: Result<PrepareAndCommitOutcome, PrepareAndCommitError> =
        Ok(PrepareAndCommitOutcome::ComputingShare);
    assert_eq!(encoded(&ok).len(), 3);
}

fn largest_coordinator_status() -> Option<CoordinatorStatus> {
    Some(CoordinatorStatus {
        epoch: MAX_EPOCH,
        phase: CoordinatorPhase::Preparing,
        acked: largest_member_set(),
        config: Some(largest_config(u64::MAX)),
    })
}

#[test]
fn the_largest_coordinator_status_fills_its_bound_exactly() {
    let status = largest_coordinator_status();
    assert_eq!(
        <Option<CoordinatorStatus>>::MAX_LEN,
        MAX_COORDINATOR_STATUS_LEN
    );
    assert_fills_its_bound(&status, |bytes| decode(bytes, NEXUS_VERSION));
    // What a node answers, borrowing its parts, is the same bytes.
    let owned = status.as_ref().unwrap();
    let borrowed: Option<CoordinatorStatusRef<'_>> = Some(CoordinatorStatus {
        epoch: owned.epoch,
        phase: owned.phase,
        acked: MemberSubset::all(owned.acked.as_slice()),
        config: owned.config.as_ref(),
    });
    assert_eq!(encoded(&borrowed), encoded(&status));
}

/// Counters all at their largest.
fn saturated_counters() -> Counters {
    // A tuple of counts encodes as the counts one after the other (serde
    // has no array impl past 32 elements, so they are written one by one).
    let mut bytes = Vec::new();
    for _ in 0..COUNTER_COUNT {
        let mut buf = [0u8; 5];
        bytes.extend_from_slice(postcard::to_slice(&u32::MAX, &mut buf).unwrap());
    }
    postcard::from_bytes(&bytes).unwrap()
}

fn largest_node_status() -> NodeStatus {
    let summary = ConfigSummary {
        epoch: MAX_EPOCH,
        coordinator: longest_id(2),
        members: u8::MAX,
        threshold: Threshold::new(31).unwrap(),
        share_held: true,
        committed: true,
    };
    NodeStatus {
        id: longest_id(0),
        connected: (0..MAX_CONNECTED).map(longest_id).collect(),
        state: StateSummary {
            lrtq: Some(LrtqSummary {
                rack_id: RackId([0xff; 16]),
                threshold: crate::ids::LrtqThreshold::new(crate::limits::MAX_LRTQ_THRESHOLD)
                    .unwrap(),
            }),
            configs: core::iter::repeat_n(summary, MAX_STORED_CONFIGS).collect(),
            latest_committed: Some(MAX_EPOCH),
            expunged: Some(Expunged {
                epoch: MAX_EPOCH,
                from: longest_id(3),
            }),
        },
        state_stored: true,
        activity: Activity {
            coordinating: Some(Coordinating {
                epoch: MAX_EPOCH,
                phase: CoordinatorPhase::CollectingLrtqShares,
            }),
            computing_share: Some(MAX_EPOCH),
            loading_secret: Some(MAX_EPOCH),
            secret_loaded: Some(MAX_EPOCH),
        },
        alarms: (0..MAX_ALARMS)
            .map(|_| Alarm::ReconstructionFailed(MAX_EPOCH))
            .collect(),
        counters: saturated_counters(),
    }
}

#[test]
fn the_largest_node_status_fills_its_bound_exactly() {
    let status = largest_node_status();
    assert_eq!(status.counters.iter().count(), COUNTER_COUNT);
    assert!(status.counters.iter().all(|(_, n)| n == u32::MAX));
    assert_eq!(<NodeStatus>::MAX_LEN, MAX_NODE_STATUS_LEN);
    assert_fills_its_bound(&status, |bytes| decode(bytes, NEXUS_VERSION));
    let borrowed: NodeStatusRef<'_> = NodeStatus {
        id: status.id.clone(),
        connected: &status.connected,
        state: status.state.clone(),
        state_stored: status.state_stored,
        activity: status.activity,
        alarms: status.alarms.clone(),
        counters: status.counters,
    };
    assert_eq!(encoded(&borrowed), encoded(&status));
}

//! Every request and answer between Nexus and a node, as the host reads
//! and writes them (feature `host`): through JSON and back, and through the
//! postcard codecs and back, equal; borrowed answers encode as the owned
//! ones; platform ids of any printable ASCII survive JSON; rack ids are
//! UUIDs and digests hex in the JSON text.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::collections::BTreeSet;
use std::fmt::Debug;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use tq_core::api::{
    Activity, CommitOutcome, CommitRequest, ConfigSummary, Coordinating, CoordinatorStatus,
    CoordinatorStatusRef, LrtqSummary, LrtqUpgradeMsg, NodeStatus, NodeStatusRef, PeerList,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome, StateSummary,
};
use tq_core::authority::{
    AnswerTag, RequestAuth, RequestRefusal, decode_answer_tag, decode_request_auth,
};
use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::{EncryptedRackSecrets, RngError, ShareDigest};
use tq_core::ids::{Epoch, LrtqThreshold, PlatformId, RackId, Threshold};
use tq_core::limits::{
    MAX_ALARMS, MAX_CONNECTED, MAX_LRTQ_THRESHOLD, MAX_MEMBERS, MAX_RETAINED_SECRETS,
    MAX_STORED_CONFIGS, MAX_THRESHOLD, MIN_LRTQ_THRESHOLD, MIN_MEMBERS, MIN_THRESHOLD, SECRET_LEN,
};
use tq_core::member_set::{MemberSet, MemberSubset};
use tq_core::node::{
    Alarm, COUNTER_COUNT, CommitError, CoordinatorPhase, Counters, ExpungedAt, LoadSecretError,
    LrtqUpgradeError, PrepareAndCommitError, RackMismatch, ReconfigureError,
};
use tq_core::persistent::Expunged;
use tq_core::wire::{
    DecodeSlot, NexusWire, WireError, decode_answer, decode_commit_request,
    decode_configuration_into, decode_lrtq_upgrade_msg_into, decode_reconfigure_msg_into,
    encode_nexus,
};

// ---- values ----

/// A field of 1 to 32 printable ASCII characters, `"` and `\` included.
const FIELD: &str = "[ -~]{1,32}";

fn platform_id() -> impl Strategy<Value = PlatformId> {
    (FIELD, FIELD).prop_map(|(part, serial)| PlatformId::new(&part, &serial).unwrap())
}

fn rack_id() -> impl Strategy<Value = RackId> {
    any::<[u8; 16]>().prop_map(RackId)
}

fn epoch() -> impl Strategy<Value = Epoch> {
    any::<u64>().prop_map(Epoch)
}

fn threshold() -> impl Strategy<Value = Threshold> {
    (MIN_THRESHOLD..=MAX_THRESHOLD).prop_map(|k| Threshold::new(k).unwrap())
}

fn lrtq_threshold() -> impl Strategy<Value = LrtqThreshold> {
    (MIN_LRTQ_THRESHOLD..=MAX_LRTQ_THRESHOLD).prop_map(|k| LrtqThreshold::new(k).unwrap())
}

fn member_set() -> impl Strategy<Value = MemberSet> {
    btree_set(platform_id(), 0..=MAX_MEMBERS).prop_map(|ids| MemberSet::new(&ids).unwrap())
}

/// Sealed old secrets: a whole number of entries (epoch and secret) and
/// the tag.
fn sealed() -> impl Strategy<Value = EncryptedRackSecrets> {
    (any::<[u8; 32]>(), 0..=MAX_RETAINED_SECRETS).prop_flat_map(|(salt, entries)| {
        vec(any::<u8>(), entries * (8 + SECRET_LEN) + 16).prop_map(move |ciphertext| {
            EncryptedRackSecrets::from_parts(salt, &ciphertext).unwrap()
        })
    })
}

fn configuration() -> impl Strategy<Value = Configuration> {
    btree_set(platform_id(), MIN_MEMBERS..=MAX_MEMBERS).prop_flat_map(|ids: BTreeSet<_>| {
        let n = ids.len();
        let most = (n - 1).min(usize::from(MAX_THRESHOLD));
        (
            Just(ids),
            vec(any::<[u8; 32]>(), n),
            rack_id(),
            epoch(),
            0..n,
            usize::from(MIN_THRESHOLD)..=most,
            option::of(sealed()),
        )
            .prop_map(|(ids, digests, rack_id, epoch, coordinator, k, sealed)| {
                let members: Members = ids
                    .iter()
                    .zip(digests)
                    .map(|(id, digest)| Member {
                        id: id.clone(),
                        share_digest: ShareDigest(digest),
                    })
                    .collect();
                Configuration::new(ConfigFields {
                    rack_id,
                    epoch,
                    coordinator: members[coordinator].id.clone(),
                    members,
                    threshold: Threshold::new(u8::try_from(k).unwrap()).unwrap(),
                    encrypted_rack_secrets: sealed,
                })
                .unwrap()
            })
    })
}

fn reconfigure_msg() -> impl Strategy<Value = ReconfigureMsg> {
    (
        rack_id(),
        epoch(),
        option::of(epoch()),
        member_set(),
        threshold(),
    )
        .prop_map(
            |(rack_id, epoch, last_committed_epoch, members, threshold)| ReconfigureMsg {
                rack_id,
                epoch,
                last_committed_epoch,
                members,
                threshold,
            },
        )
}

fn lrtq_upgrade_msg() -> impl Strategy<Value = LrtqUpgradeMsg> {
    (rack_id(), epoch(), member_set(), threshold()).prop_map(
        |(rack_id, epoch, members, threshold)| LrtqUpgradeMsg {
            rack_id,
            epoch,
            members,
            threshold,
        },
    )
}

fn commit_request() -> impl Strategy<Value = CommitRequest> {
    (rack_id(), epoch()).prop_map(|(rack_id, epoch)| CommitRequest { rack_id, epoch })
}

fn expunged_at() -> impl Strategy<Value = ExpungedAt> {
    (epoch(), platform_id()).prop_map(|(epoch, from)| ExpungedAt { epoch, from })
}

fn rack_mismatch() -> impl Strategy<Value = RackMismatch> {
    (rack_id(), rack_id()).prop_map(|(expected, got)| RackMismatch { expected, got })
}

fn reconfigure_error() -> impl Strategy<Value = ReconfigureError> {
    use ReconfigureError as E;
    prop_oneof![
        expunged_at().prop_map(E::Expunged),
        rack_mismatch().prop_map(E::RackIdMismatch),
        Just(E::MustUpgradeFromLrtq),
        epoch().prop_map(E::LrtqUpgradeInProgress),
        Just(E::NotAMember),
        any::<usize>().prop_map(E::MemberCount),
        (threshold(), any::<usize>())
            .prop_map(|(threshold, members)| E::ThresholdTooLarge { threshold, members }),
        (option::of(epoch()), option::of(epoch()))
            .prop_map(|(node, request)| E::LastCommittedEpochMismatch { node, request }),
        epoch().prop_map(E::NewerCoordinationRunning),
        epoch().prop_map(E::DifferentRequestRunning),
        epoch().prop_map(|latest| E::EpochNotNewer { latest }),
        epoch().prop_map(E::ComputingShare),
        Just(E::Rng(RngError)),
        Just(E::Internal),
    ]
}

fn lrtq_upgrade_error() -> impl Strategy<Value = LrtqUpgradeError> {
    use LrtqUpgradeError as E;
    prop_oneof![
        expunged_at().prop_map(E::Expunged),
        rack_mismatch().prop_map(E::RackIdMismatch),
        Just(E::NoLrtqData),
        epoch().prop_map(E::AlreadyCommitted),
        Just(E::NotAMember),
        any::<usize>().prop_map(E::MemberCount),
        (threshold(), any::<usize>())
            .prop_map(|(threshold, members)| E::ThresholdTooLarge { threshold, members }),
        (lrtq_threshold(), any::<usize>()).prop_map(|(lrtq_threshold, members)| {
            E::LrtqThresholdAboveMembers {
                lrtq_threshold,
                members,
            }
        }),
        epoch().prop_map(E::EpochTooSmall),
        epoch().prop_map(|latest| E::EpochNotNewer { latest }),
    ]
}

fn commit_error() -> impl Strategy<Value = CommitError> {
    prop_oneof![
        expunged_at().prop_map(CommitError::Expunged),
        rack_mismatch().prop_map(CommitError::RackIdMismatch),
        epoch().prop_map(CommitError::NotPrepared),
    ]
}

fn prepare_and_commit_error() -> impl Strategy<Value = PrepareAndCommitError> {
    use PrepareAndCommitError as E;
    prop_oneof![
        expunged_at().prop_map(E::Expunged),
        rack_mismatch().prop_map(E::RackIdMismatch),
        Just(E::NotAMember),
        (epoch(), epoch()).prop_map(|(epoch, latest)| E::NewerCommitted { epoch, latest }),
        epoch().prop_map(E::MismatchedConfiguration),
        epoch().prop_map(E::ConflictsWithCommitted),
        epoch().prop_map(E::CoordinatingNewerEpoch),
        Just(E::Internal),
    ]
}

fn load_secret_error() -> impl Strategy<Value = LoadSecretError> {
    use LoadSecretError as E;
    prop_oneof![
        expunged_at().prop_map(E::Expunged),
        Just(E::NoCommittedConfiguration),
        epoch().prop_map(E::NotCommitted),
        (epoch(), epoch()).prop_map(|(epoch, oldest_retained)| E::TooOld {
            epoch,
            oldest_retained
        }),
    ]
}

fn reconfigure_answer() -> impl Strategy<Value = Result<ReconfigureOutcome, ReconfigureError>> {
    prop_oneof![
        Just(Ok(ReconfigureOutcome::Started)),
        Just(Ok(ReconfigureOutcome::AlreadyRunning)),
        reconfigure_error().prop_map(Err),
    ]
}

fn lrtq_upgrade_answer() -> impl Strategy<Value = Result<(), LrtqUpgradeError>> {
    prop_oneof![Just(Ok(())), lrtq_upgrade_error().prop_map(Err)]
}

fn commit_answer() -> impl Strategy<Value = Result<CommitOutcome, CommitError>> {
    prop_oneof![
        Just(Ok(CommitOutcome::Committed)),
        Just(Ok(CommitOutcome::AlreadyCommitted)),
        commit_error().prop_map(Err),
    ]
}

fn prepare_and_commit_answer()
-> impl Strategy<Value = Result<PrepareAndCommitOutcome, PrepareAndCommitError>> {
    prop_oneof![
        Just(Ok(PrepareAndCommitOutcome::Committed)),
        Just(Ok(PrepareAndCommitOutcome::ComputingShare)),
        Just(Ok(PrepareAndCommitOutcome::AlreadyCommitted)),
        prepare_and_commit_error().prop_map(Err),
    ]
}

fn phase() -> impl Strategy<Value = CoordinatorPhase> {
    prop_oneof![
        Just(CoordinatorPhase::CollectingShares),
        Just(CoordinatorPhase::CollectingLrtqShares),
        Just(CoordinatorPhase::Preparing),
    ]
}

fn coordinator_status() -> impl Strategy<Value = Option<CoordinatorStatus>> {
    option::of(
        (epoch(), phase(), member_set(), option::of(configuration())).prop_map(
            |(epoch, phase, acked, config)| CoordinatorStatus {
                epoch,
                phase,
                acked,
                config,
            },
        ),
    )
}

fn alarm() -> impl Strategy<Value = Alarm> {
    prop_oneof![
        epoch().prop_map(Alarm::MismatchedConfigurations),
        epoch().prop_map(Alarm::ShareComputationFailed),
        epoch().prop_map(Alarm::CommittedConfigurationLost),
        epoch().prop_map(Alarm::DecryptionFailed),
        epoch().prop_map(Alarm::ReconstructionFailed),
    ]
}

/// Counters with any counts, made as postcard writes them (a count per
/// counter, in order).
fn counters() -> impl Strategy<Value = Counters> {
    prop::array::uniform::<_, COUNTER_COUNT>(any::<u32>()).prop_map(|counts| {
        // One by one: serde has no array impl past 32 elements.
        let mut bytes = Vec::new();
        for count in counts {
            let mut buf = [0u8; 5];
            bytes.extend_from_slice(postcard::to_slice(&count, &mut buf).unwrap());
        }
        postcard::from_bytes(&bytes).unwrap()
    })
}

fn state_summary() -> impl Strategy<Value = StateSummary> {
    let config = (
        epoch(),
        platform_id(),
        any::<u8>(),
        threshold(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(epoch, coordinator, members, threshold, share_held, committed)| ConfigSummary {
                epoch,
                coordinator,
                members,
                threshold,
                share_held,
                committed,
            },
        );
    (
        option::of((rack_id(), lrtq_threshold())),
        vec(config, 0..=MAX_STORED_CONFIGS),
        option::of(epoch()),
        option::of((epoch(), platform_id())),
    )
        .prop_map(|(lrtq, configs, latest_committed, expunged)| StateSummary {
            lrtq: lrtq.map(|(rack_id, threshold)| LrtqSummary { rack_id, threshold }),
            configs: configs.into_iter().collect(),
            latest_committed,
            expunged: expunged.map(|(epoch, from)| Expunged { epoch, from }),
        })
}

fn activity() -> impl Strategy<Value = Activity> {
    (
        option::of((epoch(), phase()).prop_map(|(epoch, phase)| Coordinating { epoch, phase })),
        option::of(epoch()),
        option::of(epoch()),
        option::of(epoch()),
    )
        .prop_map(
            |(coordinating, computing_share, loading_secret, secret_loaded)| Activity {
                coordinating,
                computing_share,
                loading_secret,
                secret_loaded,
            },
        )
}

fn node_status() -> impl Strategy<Value = NodeStatus> {
    (
        platform_id(),
        vec(platform_id(), 0..=MAX_CONNECTED),
        state_summary(),
        any::<bool>(),
        activity(),
        vec(alarm(), 0..=MAX_ALARMS),
        counters(),
    )
        .prop_map(
            |(id, connected, state, state_stored, activity, alarms, counters)| NodeStatus {
                id,
                connected: connected.into_iter().collect::<PeerList>(),
                state,
                state_stored,
                activity,
                alarms: alarms.into_iter().collect(),
                counters,
            },
        )
}

// ---- round trips ----

/// `value` through JSON and back.
fn through_json<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text)
        .map_err(|error| TestCaseError::fail(format!("{error}: {text}")))?;
    prop_assert_eq!(&back, value);
    Ok(())
}

/// `value` through its postcard codec (`encode_nexus` into a buffer of its
/// `MAX_LEN`, then `decode`) and back.
fn through_postcard<T>(
    value: &T,
    decode: impl FnOnce(&[u8]) -> Result<T, WireError>,
) -> Result<(), TestCaseError>
where
    T: NexusWire + PartialEq + Debug,
{
    let mut buf = vec![0u8; T::MAX_LEN];
    let bytes = encode_nexus(value, &mut buf).unwrap();
    prop_assert_eq!(&decode(bytes).unwrap(), value);
    Ok(())
}

/// Both round trips of an answer.
fn answer_round_trips<T>(value: &T) -> Result<(), TestCaseError>
where
    T: NexusWire + DeserializeOwned + PartialEq + Debug,
{
    through_json(value)?;
    through_postcard(value, decode_answer)
}

proptest! {
    #[test]
    fn reconfigure_requests_round_trip(msg in reconfigure_msg()) {
        through_json(&msg)?;
        through_postcard(&msg, |bytes| {
            decode_reconfigure_msg_into(bytes, &mut DecodeSlot::new()).cloned()
        })?;
    }

    #[test]
    fn lrtq_upgrade_requests_round_trip(msg in lrtq_upgrade_msg()) {
        through_json(&msg)?;
        through_postcard(&msg, |bytes| {
            decode_lrtq_upgrade_msg_into(bytes, &mut DecodeSlot::new()).cloned()
        })?;
    }

    #[test]
    fn commit_requests_round_trip(request in commit_request()) {
        through_json(&request)?;
        through_postcard(&request, decode_commit_request)?;
    }

    #[test]
    fn configurations_round_trip(config in configuration()) {
        through_json(&config)?;
        through_postcard(&config, |bytes| {
            decode_configuration_into(bytes, &mut DecodeSlot::new()).cloned()
        })?;
    }

    #[test]
    fn reconfigure_answers_round_trip(answer in reconfigure_answer()) {
        answer_round_trips(&answer)?;
    }

    #[test]
    fn lrtq_upgrade_answers_round_trip(answer in lrtq_upgrade_answer()) {
        answer_round_trips(&answer)?;
    }

    #[test]
    fn commit_answers_round_trip(answer in commit_answer()) {
        answer_round_trips(&answer)?;
    }

    #[test]
    fn prepare_and_commit_answers_round_trip(answer in prepare_and_commit_answer()) {
        answer_round_trips(&answer)?;
    }

    #[test]
    fn load_secret_errors_round_trip_through_json(error in load_secret_error()) {
        through_json(&error)?;
    }

    #[test]
    fn coordinator_statuses_round_trip(status in coordinator_status()) {
        answer_round_trips(&status)?;
        // A node answers with borrowed parts: the same bytes, the same JSON.
        let borrowed: Option<CoordinatorStatusRef<'_>> =
            status.as_ref().map(|status| CoordinatorStatus {
                epoch: status.epoch,
                phase: status.phase,
                acked: MemberSubset::all(status.acked.as_slice()),
                config: status.config.as_ref(),
            });
        prop_assert_eq!(postcard_bytes(&borrowed), postcard_bytes(&status));
        prop_assert_eq!(
            serde_json::to_string(&borrowed).unwrap(),
            serde_json::to_string(&status).unwrap()
        );
    }

    #[test]
    fn node_statuses_round_trip(status in node_status()) {
        answer_round_trips(&status)?;
        let borrowed: NodeStatusRef<'_> = NodeStatus {
            id: status.id.clone(),
            connected: &status.connected,
            state: status.state.clone(),
            state_stored: status.state_stored,
            activity: status.activity,
            alarms: status.alarms.clone(),
            counters: status.counters,
        };
        prop_assert_eq!(postcard_bytes(&borrowed), postcard_bytes(&status));
        prop_assert_eq!(
            serde_json::to_string(&borrowed).unwrap(),
            serde_json::to_string(&status).unwrap()
        );
    }

    #[test]
    fn printable_platform_ids_survive_json(id in platform_id()) {
        through_json(&id)?;
    }

    #[test]
    fn rack_ids_are_uuid_strings_in_json(request in commit_request()) {
        let expected = format!(
            r#"{{"rack_id":"{}","epoch":{}}}"#,
            uuid(&request.rack_id.0),
            request.epoch.0
        );
        prop_assert_eq!(serde_json::to_string(&request).unwrap(), expected);
    }
}

fn postcard_bytes<T: NexusWire>(value: &T) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    encode_nexus(value, &mut buf).unwrap().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The hyphenated UUID form, 8-4-4-4-12.
fn uuid(bytes: &[u8; 16]) -> String {
    let parts = [
        &bytes[..4],
        &bytes[4..6],
        &bytes[6..8],
        &bytes[8..10],
        &bytes[10..],
    ];
    parts.map(hex).join("-")
}

#[test]
fn every_printable_character_survives_json_in_a_platform_id() {
    let printable: String = (0x20u8..=0x7e).map(char::from).collect();
    let mut ids: Vec<PlatformId> = printable
        .as_bytes()
        .chunks(32)
        .map(|chunk| {
            let field = std::str::from_utf8(chunk).unwrap();
            PlatformId::new(field, field).unwrap()
        })
        .collect();
    ids.push(PlatformId::new("\"", "\\").unwrap());
    ids.push(PlatformId::new(r#"\"\\"#, r#"\u0041"#).unwrap());
    for id in &ids {
        let text = serde_json::to_string(id).unwrap();
        let back: PlatformId = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, id, "{text}");
    }
    // Escapes a JSON writer may choose are read too.
    let escaped = r#"{"part_number":"\u0022\/","serial_number":"\u005c"}"#;
    let back: PlatformId = serde_json::from_str(escaped).unwrap();
    assert_eq!(back, PlatformId::new("\"/", "\\").unwrap());
}

#[test]
fn json_shows_rack_ids_as_uuids_and_digests_and_ciphertexts_as_hex() {
    let rack = RackId([
        0x67, 0xe5, 0x50, 0x44, 0x10, 0xb1, 0x42, 0x6f, 0x92, 0x47, 0xbb, 0x68, 0x0e, 0x5f, 0xe0,
        0xc8,
    ]);
    let members: Members = (0..3u8)
        .map(|i| Member {
            id: PlatformId::new(tq_core::ids::SLED_PART_NUMBER, &format!("SN{i}")).unwrap(),
            share_digest: ShareDigest([0xa0 + i; 32]),
        })
        .collect();
    let ciphertext = [0x5cu8; 16 + 8 + SECRET_LEN];
    let config = Configuration::new(ConfigFields {
        rack_id: rack,
        epoch: Epoch(4),
        coordinator: members[0].id.clone(),
        members,
        threshold: Threshold::new(2).unwrap(),
        encrypted_rack_secrets: Some(
            EncryptedRackSecrets::from_parts([0x3b; 32], &ciphertext).unwrap(),
        ),
    })
    .unwrap();
    let text = serde_json::to_string(&config).unwrap();
    assert!(
        text.contains(r#""rack_id":"67e55044-10b1-426f-9247-bb680e5fe0c8""#),
        "{text}"
    );
    for i in 0..3u8 {
        let digest = format!(r#""share_digest":"{}""#, hex(&[0xa0 + i; 32]));
        assert!(text.contains(&digest), "{text}");
    }
    assert!(
        text.contains(&format!(r#""salt":"{}""#, hex(&[0x3b; 32]))),
        "{text}"
    );
    assert!(
        text.contains(&format!(r#""ciphertext":"{}""#, hex(&ciphertext))),
        "{text}"
    );
    // Upper-case hex and UUIDs are read as well.
    let upper = text
        .replace(
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
        )
        .replace(&hex(&[0x3b; 32]), &hex(&[0x3b; 32]).to_uppercase());
    let back: Configuration = serde_json::from_str(&upper).unwrap();
    assert_eq!(back, config);
    // A request's rack id, and a status's.
    let status = LrtqSummary {
        rack_id: rack,
        threshold: LrtqThreshold::new(3).unwrap(),
    };
    assert_eq!(
        serde_json::to_string(&status).unwrap(),
        r#"{"rack_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","threshold":3}"#
    );
}

fn request_auth() -> impl Strategy<Value = RequestAuth> {
    (
        rack_id(),
        platform_id(),
        any::<[u8; 16]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(rack_id, target, nonce, tag)| RequestAuth {
            rack_id,
            target,
            nonce,
            tag,
        })
}

proptest! {
    #[test]
    fn request_authenticators_and_answer_tags_round_trip(
        auth in request_auth(),
        tag in any::<[u8; 32]>().prop_map(AnswerTag),
    ) {
        through_json(&auth)?;
        through_postcard(&auth, decode_request_auth)?;
        through_json(&tag)?;
        through_postcard(&tag, decode_answer_tag)?;
    }
}

#[test]
fn json_shows_nonces_and_tags_as_hex() {
    let auth = RequestAuth {
        rack_id: RackId([0x67; 16]),
        target: PlatformId::new(tq_core::ids::SLED_PART_NUMBER, "SN0").unwrap(),
        nonce: [0xa5; 16],
        tag: [0x3c; 32],
    };
    let text = serde_json::to_string(&auth).unwrap();
    assert!(
        text.contains(&format!(r#""nonce":"{}""#, hex(&[0xa5; 16]))),
        "{text}"
    );
    assert!(
        text.contains(&format!(r#""tag":"{}""#, hex(&[0x3c; 32]))),
        "{text}"
    );
    let text = serde_json::to_string(&AnswerTag([0x3c; 32])).unwrap();
    assert_eq!(text, format!(r#""{}""#, hex(&[0x3c; 32])));
    for refusal in [
        RequestRefusal::ForeignRack,
        RequestRefusal::WrongTarget,
        RequestRefusal::NoKey,
        RequestRefusal::BadTag,
    ] {
        let text = serde_json::to_string(&refusal).unwrap();
        assert_eq!(
            serde_json::from_str::<RequestRefusal>(&text).unwrap(),
            refusal
        );
    }
}

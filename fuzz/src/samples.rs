//! Real values of every encodable kind, built with the core's own
//! primitives (real secrets, real Shamir shares and digests, real
//! encrypted old secrets, a real LRTQ split), for the seed corpora.
//!
//! Everything is drawn from a seeded RNG, so the seeds are reproducible:
//! `examples/make_corpus.rs` writes the same bytes on every run.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::api::{
    Activity, CommitOutcome, CommitRequest, ConfigSummary, CoordinatorStatus, LrtqSummary,
    LrtqUpgradeMsg, NodeStatus, PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
    StateSummary,
};
use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::{EncryptedRackSecrets, LrtqShare, RackSecret, RetainedSecrets, Share, split};
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::limits::{MAX_MEMBERS, MAX_RETAINED_SECRETS, MAX_THRESHOLD};
use tq_core::member_set::MemberSet;
use tq_core::messages::{Body, Envelope, PeerMsgRef};
use tq_core::node::{
    Alarm, CommitError, CoordinatorPhase, Counters, ExpungedAt, LrtqUpgradeError,
    PrepareAndCommitError, ReconfigureError,
};
use tq_core::persistent::{Expunged, LrtqShareData, PersistentState, StateFields, StoredConfig};
use tq_core::wire;
use tq_core::wire::NexusWire;
use tq_test_fixtures::lrtq_rack;

/// The rack of every sample.
pub const RACK: RackId = RackId([0x42; 16]);

/// One named seed: a file name and its bytes.
pub type Seed = (&'static str, Vec<u8>);

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A realistic sled id (`913-0000019:BRM4222NNNN`).
pub fn sled(i: usize) -> PlatformId {
    PlatformId::new(tq_core::ids::SLED_PART_NUMBER, &format!("BRM4222{i:04}")).expect("valid id")
}

/// A sled id with both fields at their 32-byte maximum.
fn longest_sled(i: usize) -> PlatformId {
    PlatformId::new(&"9".repeat(32), &format!("{i:0>32}")).expect("valid id")
}

/// A configuration together with the secret and every member's share.
pub struct Split {
    /// The configuration.
    pub config: Configuration,
    /// Its secret.
    pub secret: RackSecret,
    /// Member `i`'s share (x = i + 1).
    pub shares: Vec<Share>,
}

/// Makes a configuration of `ids` (sorted here) at `epoch` with threshold
/// `k`, a fresh secret, and `old` sealed under it if given.
fn make_config(
    seed: u64,
    mut ids: Vec<PlatformId>,
    epoch: Epoch,
    k: u8,
    old: Option<&RetainedSecrets>,
) -> Split {
    let mut rng = rng(seed);
    ids.sort();
    let secret = RackSecret::generate(&mut rng).expect("rng");
    let mut shares = heapless::Vec::<Share, MAX_MEMBERS>::new();
    split(&secret, usize::from(k), ids.len(), &mut rng, &mut shares).expect("split");
    let members: Members = ids
        .iter()
        .zip(shares.iter())
        .map(|(id, share)| Member {
            id: id.clone(),
            share_digest: share.digest(),
        })
        .collect();
    let encrypted_rack_secrets = old.map(|old| {
        EncryptedRackSecrets::encrypt(&mut rng, &RACK, epoch, &secret, old).expect("seal")
    });
    let config = Configuration::new(ConfigFields {
        rack_id: RACK,
        epoch,
        coordinator: ids.first().expect("members").clone(),
        members,
        threshold: Threshold::new(k).expect("threshold"),
        encrypted_rack_secrets,
    })
    .expect("valid configuration");
    Split {
        config,
        secret,
        shares: shares.into_iter().collect(),
    }
}

/// A fresh rack's first configuration: epoch 1, five sleds, `K = 3`, no
/// old secrets.
pub fn first_config() -> Split {
    make_config(1, (0..5).map(sled).collect(), Epoch(1), 3, None)
}

/// A later configuration: epoch 4, six sleds, `K = 4`, carrying the
/// secrets of epochs 1 to 3.
pub fn later_config() -> Split {
    let mut old = RetainedSecrets::new();
    for e in 1..=3u64 {
        let secret = make_config(10 + e, (0..5).map(sled).collect(), Epoch(e), 3, None).secret;
        old.push(Epoch(e), secret).expect("retain");
    }
    make_config(4, (0..6).map(sled).collect(), Epoch(4), 4, Some(&old))
}

/// The largest configuration: 32 members with the longest ids, the highest
/// threshold, every retained secret, and the largest epoch.
pub fn largest_config() -> Split {
    let mut old = RetainedSecrets::new();
    let mut r = rng(99);
    for e in 1..=MAX_RETAINED_SECRETS as u64 {
        old.push(Epoch(e), RackSecret::generate(&mut r).expect("rng"))
            .expect("retain");
    }
    let ids = (0..MAX_MEMBERS).map(longest_sled).collect();
    make_config(5, ids, Epoch(u64::MAX), MAX_THRESHOLD, Some(&old))
}

fn encode_msg(msg: &PeerMsgRef<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; wire::MAX_PEER_MSG_LEN];
    wire::encode_peer_msg(msg, &mut buf)
        .expect("fits MAX_PEER_MSG_LEN")
        .to_vec()
}

fn envelope<'a>(
    body: Body<&'a Configuration, &'a Share, &'a LrtqShare>,
) -> Envelope<&'a Configuration, &'a Share, &'a LrtqShare> {
    Envelope {
        rack_id: RACK,
        body,
    }
}

/// Every peer message kind, with small and largest contents.
pub fn peer_msgs() -> Vec<Seed> {
    let first = first_config();
    let later = later_config();
    let largest = largest_config();
    let (lrtq, _) = lrtq_rack(5, 7);
    let lrtq_share = &lrtq[1].share;
    let prepare = |split: &Split, last_committed: Option<u64>| {
        encode_msg(&envelope(Body::Prepare {
            config: &split.config,
            share: &split.shares[1],
            last_committed: last_committed.map(Epoch),
        }))
    };
    vec![
        ("prepare_first", prepare(&first, None)),
        ("prepare_later", prepare(&later, Some(3))),
        ("prepare_largest", prepare(&largest, Some(u64::MAX - 1))),
        (
            "prepare_ack",
            encode_msg(&envelope(Body::PrepareAck(Epoch(4)))),
        ),
        ("get_share", encode_msg(&envelope(Body::GetShare(Epoch(1))))),
        (
            "get_share_max_epoch",
            encode_msg(&envelope(Body::GetShare(Epoch(u64::MAX)))),
        ),
        (
            "share",
            encode_msg(&envelope(Body::Share {
                epoch: Epoch(4),
                share: &later.shares[2],
            })),
        ),
        ("get_lrtq_share", encode_msg(&envelope(Body::GetLrtqShare))),
        (
            "lrtq_share",
            encode_msg(&envelope(Body::LrtqShare(lrtq_share))),
        ),
        ("expunged", encode_msg(&envelope(Body::Expunged(Epoch(4))))),
        (
            "commit_advance_first",
            encode_msg(&envelope(Body::CommitAdvance(&first.config))),
        ),
        (
            "commit_advance_later",
            encode_msg(&envelope(Body::CommitAdvance(&later.config))),
        ),
    ]
}

fn stored(split: &Split, member: usize, with_share: bool) -> StoredConfig {
    StoredConfig {
        config: split.config.clone(),
        share: with_share.then(|| split.shares[member].clone()),
    }
}

fn encode_state(fields: StateFields) -> Vec<u8> {
    let state = PersistentState::try_from(fields).expect("valid state");
    let mut buf = vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
    wire::encode_persistent_state(&state, &mut buf)
        .expect("fits MAX_PERSISTENT_STATE_LEN")
        .to_vec()
}

/// Persistent states: empty, LRTQ only, prepared, committed, committed with
/// newer prepared configurations, upgraded from LRTQ, and expunged.
pub fn persistent_states() -> Vec<Seed> {
    let first = first_config();
    let later = later_config();
    let newer = make_config(6, (0..6).map(sled).collect(), Epoch(5), 3, None);
    let newest = make_config(7, (1..7).map(sled).collect(), Epoch(6), 3, None);
    let (lrtq, _) = lrtq_rack(5, 7);
    let upgraded = make_config(8, (0..5).map(sled).collect(), Epoch(2), 3, None);
    let list = |configs: Vec<StoredConfig>| configs.into_iter().collect();
    vec![
        ("empty", encode_state(StateFields::default())),
        (
            "lrtq_only",
            encode_state(StateFields {
                lrtq: Some(lrtq[0].clone()),
                ..StateFields::default()
            }),
        ),
        (
            "prepared_first",
            encode_state(StateFields {
                configs: list(vec![stored(&first, 1, true)]),
                ..StateFields::default()
            }),
        ),
        (
            "committed_first",
            encode_state(StateFields {
                configs: list(vec![stored(&first, 1, true)]),
                latest_committed: Some(Epoch(1)),
                ..StateFields::default()
            }),
        ),
        (
            "committed_with_newer",
            encode_state(StateFields {
                configs: list(vec![
                    stored(&later, 1, true),
                    stored(&newer, 1, false),
                    stored(&newest, 1, true),
                ]),
                latest_committed: Some(Epoch(4)),
                ..StateFields::default()
            }),
        ),
        (
            "lrtq_upgraded",
            encode_state(StateFields {
                lrtq: Some(lrtq[2].clone()),
                configs: list(vec![stored(&upgraded, 2, true)]),
                latest_committed: Some(Epoch(2)),
                ..StateFields::default()
            }),
        ),
        (
            "expunged",
            encode_state(StateFields {
                configs: list(vec![stored(&later, 0, true)]),
                latest_committed: Some(Epoch(4)),
                expunged: Some(Expunged {
                    epoch: Epoch(6),
                    from: sled(3),
                }),
                ..StateFields::default()
            }),
        ),
    ]
}

fn member_set(ids: impl IntoIterator<Item = PlatformId>) -> MemberSet {
    let ids: Vec<PlatformId> = ids.into_iter().collect();
    MemberSet::new(&ids).expect("member set")
}

/// `value` encoded as Nexus and a node exchange it.
fn encode_nexus<T: NexusWire>(value: &T) -> Vec<u8> {
    let mut buf = vec![0u8; T::MAX_LEN];
    wire::encode_nexus(value, &mut buf)
        .expect("fits MAX_LEN")
        .to_vec()
}

/// Reconfiguration requests: a fresh rack's first, a later one, the largest.
pub fn reconfigure_msgs() -> Vec<Seed> {
    let encode = encode_nexus::<ReconfigureMsg>;
    let first = ReconfigureMsg {
        rack_id: RACK,
        epoch: Epoch(1),
        last_committed_epoch: None,
        members: member_set((0..5).map(sled)),
        threshold: Threshold::new(3).expect("threshold"),
    };
    let later = ReconfigureMsg {
        rack_id: RACK,
        epoch: Epoch(5),
        last_committed_epoch: Some(Epoch(4)),
        members: member_set((1..7).map(sled)),
        threshold: Threshold::new(4).expect("threshold"),
    };
    let largest = ReconfigureMsg {
        rack_id: RACK,
        epoch: Epoch(u64::MAX),
        last_committed_epoch: Some(Epoch(u64::MAX - 1)),
        members: member_set((0..MAX_MEMBERS).map(longest_sled)),
        threshold: Threshold::new(MAX_THRESHOLD).expect("threshold"),
    };
    vec![
        ("first", encode(&first)),
        ("later", encode(&later)),
        ("largest", encode(&largest)),
    ]
}

/// LRTQ upgrade requests: a typical one and the largest.
pub fn lrtq_upgrade_msgs() -> Vec<Seed> {
    let encode = encode_nexus::<LrtqUpgradeMsg>;
    let typical = LrtqUpgradeMsg {
        rack_id: RACK,
        epoch: Epoch(2),
        members: member_set((0..5).map(sled)),
        threshold: Threshold::new(3).expect("threshold"),
    };
    let largest = LrtqUpgradeMsg {
        rack_id: RACK,
        epoch: Epoch(u64::MAX),
        members: member_set((0..MAX_MEMBERS).map(longest_sled)),
        threshold: Threshold::new(MAX_THRESHOLD).expect("threshold"),
    };
    vec![("typical", encode(&typical)), ("largest", encode(&largest))]
}

/// LRTQ share data: as LRTQ setup left it (255 digests), and a short
/// digest list.
pub fn lrtq_share_data() -> Vec<Seed> {
    let encode = |data: &LrtqShareData| {
        let mut buf = vec![0u8; wire::MAX_LRTQ_SHARE_DATA_LEN];
        wire::encode_lrtq_share_data(data, &mut buf)
            .expect("fits")
            .to_vec()
    };
    let (lrtq, _) = lrtq_rack(5, 7);
    let mut short = lrtq[3].clone();
    short.share_digests.truncate(5);
    vec![("setup", encode(&lrtq[0])), ("short", encode(&short))]
}

/// Configurations, as `prepare_and_commit`'s request.
pub fn configurations() -> Vec<Seed> {
    vec![
        ("first", encode_nexus(&first_config().config)),
        ("later", encode_nexus(&later_config().config)),
        ("largest", encode_nexus(&largest_config().config)),
    ]
}

/// Commit requests.
pub fn commit_requests() -> Vec<Seed> {
    let request = |epoch| CommitRequest {
        rack_id: RACK,
        epoch: Epoch(epoch),
    };
    vec![
        ("first", encode_nexus(&request(1))),
        ("largest", encode_nexus(&request(u64::MAX))),
    ]
}

/// Every answer a node gives Nexus, each after the byte that makes the
/// `nexus_answer` target read it as its type.
pub fn nexus_answers() -> Vec<Seed> {
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    let expunged = ExpungedAt {
        epoch: Epoch(u64::MAX),
        from: longest_sled(1),
    };
    let later = later_config();
    let largest = largest_config();
    let peers: tq_core::api::PeerList = (0..tq_core::limits::MAX_CONNECTED)
        .map(longest_sled)
        .collect();
    let status = NodeStatus {
        id: longest_sled(0),
        connected: peers,
        state: StateSummary {
            lrtq: Some(LrtqSummary {
                rack_id: RACK,
                threshold: tq_core::ids::LrtqThreshold::new(17).expect("threshold"),
            }),
            configs: (1..=3)
                .map(|e| ConfigSummary {
                    epoch: Epoch(u64::MAX - e),
                    coordinator: longest_sled(e as usize),
                    members: 32,
                    threshold: Threshold::new(MAX_THRESHOLD).expect("threshold"),
                    share_held: true,
                    committed: e == 3,
                })
                .collect(),
            latest_committed: Some(Epoch(u64::MAX - 3)),
            expunged: Some(Expunged {
                epoch: Epoch(u64::MAX),
                from: longest_sled(2),
            }),
        },
        state_stored: true,
        activity: Activity {
            coordinating: Some(tq_core::api::Coordinating {
                epoch: Epoch(u64::MAX),
                phase: CoordinatorPhase::Preparing,
            }),
            computing_share: Some(Epoch(u64::MAX)),
            loading_secret: Some(Epoch(u64::MAX)),
            secret_loaded: Some(Epoch(u64::MAX)),
        },
        alarms: (0..tq_core::limits::MAX_ALARMS as u64)
            .map(|e| Alarm::DecryptionFailed(Epoch(u64::MAX - e)))
            .collect(),
        counters: Counters::new(),
    };
    vec![
        (
            "reconfigure_started",
            tagged(
                0,
                encode_nexus(&Ok::<_, ReconfigureError>(ReconfigureOutcome::Started)),
            ),
        ),
        (
            "reconfigure_expunged",
            tagged(
                0,
                encode_nexus(&Err::<ReconfigureOutcome, _>(ReconfigureError::Expunged(
                    expunged.clone(),
                ))),
            ),
        ),
        (
            "upgrade_refused",
            tagged(
                1,
                encode_nexus(&Err::<(), _>(LrtqUpgradeError::EpochNotNewer {
                    latest: Epoch(9),
                })),
            ),
        ),
        (
            "commit_not_prepared",
            tagged(
                2,
                encode_nexus(&Err::<CommitOutcome, _>(CommitError::NotPrepared(Epoch(3)))),
            ),
        ),
        (
            "prepare_and_commit_computing",
            tagged(
                3,
                encode_nexus(&Ok::<_, PrepareAndCommitError>(
                    PrepareAndCommitOutcome::ComputingShare,
                )),
            ),
        ),
        (
            "coordinator_status_later",
            tagged(
                4,
                encode_nexus(&Some(CoordinatorStatus {
                    epoch: later.config.epoch(),
                    phase: CoordinatorPhase::Preparing,
                    acked: member_set(later.config.members().iter().map(|m| m.id.clone())),
                    config: Some(later.config.clone()),
                })),
            ),
        ),
        (
            "coordinator_status_largest",
            tagged(
                4,
                encode_nexus(&Some(CoordinatorStatus {
                    epoch: Epoch(u64::MAX),
                    phase: CoordinatorPhase::Preparing,
                    acked: member_set(largest.config.members().iter().map(|m| m.id.clone())),
                    config: Some(largest.config.clone()),
                })),
            ),
        ),
        ("node_status_largest", tagged(5, encode_nexus(&status))),
    ]
}

/// Every decoder target's name with its seeds.
pub fn all() -> Vec<(&'static str, Vec<Seed>)> {
    vec![
        ("peer_msg", peer_msgs()),
        ("persistent_state", persistent_states()),
        ("reconfigure_msg", reconfigure_msgs()),
        ("lrtq_upgrade_msg", lrtq_upgrade_msgs()),
        ("lrtq_share_data", lrtq_share_data()),
        ("configuration", configurations()),
        ("commit_request", commit_requests()),
        ("nexus_answer", nexus_answers()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::round_trip;

    #[test]
    fn every_seed_decodes_and_round_trips() {
        for (target, seeds) in all() {
            for (name, bytes) in seeds {
                let decoded = match target {
                    "peer_msg" => round_trip::peer_msg(&bytes),
                    "persistent_state" => round_trip::persistent_state(&bytes),
                    "reconfigure_msg" => round_trip::reconfigure_msg(&bytes),
                    "lrtq_upgrade_msg" => round_trip::lrtq_upgrade_msg(&bytes),
                    "lrtq_share_data" => round_trip::lrtq_share_data(&bytes),
                    "configuration" => round_trip::configuration(&bytes),
                    "commit_request" => round_trip::commit_request(&bytes),
                    "nexus_answer" => round_trip::nexus_answer(&bytes),
                    other => panic!("unknown target {other}"),
                };
                assert!(decoded, "{target}/{name} does not decode");
            }
        }
    }

    #[test]
    fn every_body_variant_has_a_seed() {
        let mut kinds: Vec<&str> = peer_msgs()
            .iter()
            .map(|(_, bytes)| wire::decode_peer_msg(bytes).expect("decodes").body.kind())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 8);
    }

    #[test]
    fn the_lrtq_rack_combines_to_its_secret() {
        let (data, secret) = lrtq_rack(5, 3);
        let shares: Vec<LrtqShare> = data.iter().take(3).map(|d| d.share.clone()).collect();
        let combined = tq_core::crypto::combine_lrtq(&shares).expect("combine");
        assert_eq!(combined.expose_secret(), secret.expose_secret());
        assert!(data.iter().all(|d| d.is_known_digest(&d.share.digest())));
    }
}

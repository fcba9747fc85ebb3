//! Decoding, and decoding then encoding, of the largest value of each kind
//! a node decodes and of a small peer message. Every decoder re-encodes
//! what it decoded to check the bytes are canonical, so `decode` includes
//! one encode through a 64-byte page; the second function adds an encode
//! into a buffer, for scale.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use criterion::{Criterion, criterion_group};
use std::hint::black_box;
use tq_core::api::ReconfigureMsg;
use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::{EncryptedRackSecrets, Share, ShareDigest};
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::limits::{MAX_MEMBERS, MAX_SEALED_LEN, MAX_STORED_CONFIGS};
use tq_core::member_set::MemberSet;
use tq_core::messages::{Body, Envelope, PeerMsgRef};
use tq_core::persistent::{Expunged, PersistentState, StateFields, StoredConfig};
use tq_core::wire;

/// A platform id with both fields at their longest, distinct per `i`.
fn longest_id(i: usize) -> PlatformId {
    PlatformId::new(&"P".repeat(32), &format!("{i:0>32}")).expect("valid id")
}

fn share() -> Share {
    Share::new(7, &[0xee; 32]).expect("x is not 0")
}

fn largest_config(epoch: u64) -> Configuration {
    let members: Members = (0..MAX_MEMBERS)
        .map(|i| Member {
            id: longest_id(i),
            share_digest: ShareDigest([0xdd; 32]),
        })
        .collect();
    let sealed = EncryptedRackSecrets::from_parts([0xaa; 32], &[0xbb; MAX_SEALED_LEN])
        .expect("a whole number of secrets");
    Configuration::new(ConfigFields {
        rack_id: RackId([0x07; 16]),
        epoch: Epoch(epoch),
        coordinator: longest_id(0),
        members,
        threshold: Threshold::new(31).expect("valid threshold"),
        encrypted_rack_secrets: Some(sealed),
    })
    .expect("valid configuration")
}

/// The largest state without LRTQ data (whose type differs across the
/// versions this bench compares): every configuration at its largest.
fn large_state() -> PersistentState {
    let configs = (0..MAX_STORED_CONFIGS as u64)
        .map(|e| StoredConfig {
            config: largest_config(u64::MAX - e),
            share: Some(share()),
        })
        .rev()
        .collect();
    PersistentState::try_from(StateFields {
        lrtq: None,
        configs,
        latest_committed: Some(Epoch(u64::MAX - 2)),
        expunged: Some(Expunged {
            epoch: Epoch(u64::MAX),
            from: longest_id(1),
        }),
    })
    .expect("valid state")
}

/// One value of each kind measured, encoded.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
}

/// The values measured: their names and encodings.
fn cases() -> Vec<Case> {
    let config = largest_config(u64::MAX);
    let share = share();
    let prepare: PeerMsgRef<'_> = Envelope {
        rack_id: RackId([0x07; 16]),
        body: Body::Prepare {
            config: &config,
            share: &share,
            last_committed: Some(Epoch(u64::MAX)),
        },
    };
    let get_share: PeerMsgRef<'_> = Envelope {
        rack_id: RackId([0x07; 16]),
        body: Body::GetShare(Epoch(300)),
    };
    let ids: Vec<PlatformId> = (0..MAX_MEMBERS).map(longest_id).collect();
    let request = ReconfigureMsg {
        rack_id: RackId([0x07; 16]),
        epoch: Epoch(u64::MAX),
        last_committed_epoch: Some(Epoch(u64::MAX - 1)),
        members: MemberSet::new(&ids).expect("distinct ids"),
        threshold: Threshold::new(31).expect("valid threshold"),
    };
    let mut buf = vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
    let case = |name, bytes: Result<&[u8], wire::WireError>| Case {
        name,
        bytes: bytes.expect("fits").to_vec(),
    };
    vec![
        case("prepare", wire::encode_peer_msg(&prepare, &mut buf)),
        case("get-share", wire::encode_peer_msg(&get_share, &mut buf)),
        case(
            "state",
            wire::encode_persistent_state(&large_state(), &mut buf),
        ),
        case("reconfigure", wire::encode_nexus(&request, &mut buf)),
    ]
}

/// Decoders and encoders of each case, with storage of their own: the
/// state and the request are decoded in place, as a node does.
struct Codec {
    state: PersistentState,
    request: wire::DecodeSlot<ReconfigureMsg>,
    buf: Vec<u8>,
}

impl Codec {
    fn new() -> Self {
        Self {
            state: PersistentState::new(),
            request: wire::DecodeSlot::new(),
            buf: vec![0u8; wire::MAX_PERSISTENT_STATE_LEN],
        }
    }

    /// Decodes `case` and, with `encode_too`, encodes the decoded value.
    fn run(&mut self, case: &Case, encode_too: bool) -> usize {
        let bytes = black_box(&case.bytes[..]);
        let buf = &mut self.buf;
        let encoded = match case.name {
            "prepare" | "get-share" => {
                let msg = wire::decode_peer_msg(bytes).expect("decodes");
                encode_too.then(|| wire::encode_peer_msg(&msg.as_ref(), buf).map(<[u8]>::len))
            }
            "state" => {
                wire::decode_persistent_state_into(bytes, &mut self.state).expect("decodes");
                encode_too.then(|| wire::encode_persistent_state(&self.state, buf).map(<[u8]>::len))
            }
            _ => {
                let request =
                    wire::decode_reconfigure_msg_into(bytes, &mut self.request).expect("decodes");
                encode_too.then(|| wire::encode_nexus(request, buf).map(<[u8]>::len))
            }
        };
        encoded.map_or(0, |len| len.expect("encodes"))
    }
}

fn wire_codec(c: &mut Criterion) {
    let mut codec = Codec::new();
    for case in cases() {
        let mut group = c.benchmark_group(format!("wire {} ({} B)", case.name, case.bytes.len()));
        group.bench_function("decode", |b| b.iter(|| codec.run(&case, false)));
        group.bench_function("decode, then encode", |b| b.iter(|| codec.run(&case, true)));
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = common::quick_criterion();
    targets = wire_codec
}

/// With `TQ_WIRE_REPEAT=CASE:N[:encode]`, runs one case N times and exits
/// instead of benchmarking, so that valgrind can count its instructions,
/// which the machine's load does not change (see the README).
fn main() {
    let Ok(spec) = std::env::var("TQ_WIRE_REPEAT") else {
        benches();
        Criterion::default().configure_from_args().final_summary();
        return;
    };
    let mut parts = spec.split(':');
    let (name, times) = (parts.next(), parts.next().and_then(|n| n.parse().ok()));
    let encode_too = parts.next() == Some("encode");
    let cases = cases();
    let (Some(case), Some(times)) = (cases.iter().find(|c| Some(c.name) == name), times) else {
        panic!(
            "TQ_WIRE_REPEAT is CASE:N[:encode], CASE one of prepare, get-share, state, reconfigure"
        );
    };
    let mut codec = Codec::new();
    for _ in 0..times {
        black_box(codec.run(case, encode_too));
    }
}

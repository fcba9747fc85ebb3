//! Decoding next to encoding, for the largest value of each kind a node
//! decodes and for a small peer message. Every decoder re-encodes what it
//! decoded to check the bytes are canonical, so `decode` includes one
//! encode through a 64-byte page; `encode` is the encoder alone into a
//! buffer, for scale.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::{EncryptedRackSecrets, Share, ShareDigest};
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::limits::{MAX_MEMBERS, MAX_SEALED_LEN, MAX_STORED_CONFIGS};
use tq_core::messages::{Body, Envelope, MemberSet, PeerMsgRef, ReconfigureMsg};
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

fn wire_codec(c: &mut Criterion) {
    let config = largest_config(u64::MAX);
    let share = share();
    let messages: [(&str, PeerMsgRef<'_>); 2] = [
        (
            "largest Prepare",
            Envelope {
                rack_id: RackId([0x07; 16]),
                body: Body::Prepare {
                    config: &config,
                    share: &share,
                    last_committed: Some(Epoch(u64::MAX)),
                },
            },
        ),
        (
            "GetShare",
            Envelope {
                rack_id: RackId([0x07; 16]),
                body: Body::GetShare(Epoch(300)),
            },
        ),
    ];
    let mut buf = vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
    for (name, msg) in &messages {
        let bytes = wire::encode_peer_msg(msg, &mut buf).expect("fits").to_vec();
        let mut group = c.benchmark_group(format!("peer message {name} ({} B)", bytes.len()));
        group.bench_function("decode", |b| {
            b.iter(|| wire::decode_peer_msg(black_box(&bytes)).expect("decodes"))
        });
        group.bench_function("encode", |b| {
            b.iter(|| wire::encode_peer_msg(black_box(msg), &mut buf).map(<[u8]>::len))
        });
        group.finish();
    }

    let state = large_state();
    let bytes = wire::encode_persistent_state(&state, &mut buf)
        .expect("fits")
        .to_vec();
    let mut decoded = PersistentState::new();
    let mut group = c.benchmark_group(format!("persistent state ({} B)", bytes.len()));
    group.bench_function("decode", |b| {
        b.iter(|| wire::decode_persistent_state_into(black_box(&bytes), &mut decoded))
    });
    group.bench_function("encode", |b| {
        b.iter(|| wire::encode_persistent_state(black_box(&state), &mut buf).map(<[u8]>::len))
    });
    group.finish();

    let ids: Vec<PlatformId> = (0..MAX_MEMBERS).map(longest_id).collect();
    let request = ReconfigureMsg {
        rack_id: RackId([0x07; 16]),
        epoch: Epoch(u64::MAX),
        last_committed_epoch: Some(Epoch(u64::MAX - 1)),
        members: MemberSet::new(&ids).expect("distinct ids"),
        threshold: Threshold::new(31).expect("valid threshold"),
    };
    let bytes = wire::encode_reconfigure_msg(&request, &mut buf)
        .expect("fits")
        .to_vec();
    let mut decoded = ReconfigureMsg::unfilled();
    let mut group = c.benchmark_group(format!("reconfiguration request ({} B)", bytes.len()));
    group.bench_function("decode", |b| {
        b.iter(|| wire::decode_reconfigure_msg_into(black_box(&bytes), &mut decoded))
    });
    group.bench_function("encode", |b| {
        b.iter(|| wire::encode_reconfigure_msg(black_box(&request), &mut buf).map(<[u8]>::len))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::quick_criterion();
    targets = wire_codec
}
criterion_main!(benches);

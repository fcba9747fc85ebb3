//! Issue 19's attack from inside the rack, over the real peer network: a
//! sled with a valid rack certificate (an authenticated peer) sends every
//! other sled a proxied `prepare_and_commit` of a made-up configuration at
//! epoch 2^64 - 1. Before Nexus's authenticator, each stored it and
//! refused every real prepare from then on. Now each target's node
//! refuses it (it carries no tag Nexus made for that request and sled),
//! counts the refusal, and changes nothing else; the rack still
//! reconfigures afterwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::time::Duration;

use common::authority::{authorize, sled_key};
use common::nexus::Driver;
use common::rack::{RACK_ID, Rack};
use tq_core::api::{CommitRequest, StateSummary};
use tq_core::authority::{RequestAuth, RequestRefusal};
use tq_core::config::{ConfigFields, Configuration, Member, Members};
use tq_core::crypto::ShareDigest;
use tq_core::ids::{Epoch, Threshold};
use tq_core::node::Counter;
use tq_nexus::Origin;
use tq_std::handle::Unavailable;

const LIMIT: Duration = Duration::from_secs(120);
const DEADLINE: Duration = Duration::from_secs(5);

/// A configuration no Nexus made: every sled a member, made-up share
/// digests, the last epoch there is.
fn made_up(rack: &Rack) -> Configuration {
    let members: Members = rack
        .ids()
        .into_iter()
        .map(|id| Member {
            id,
            share_digest: ShareDigest([0x66; 32]),
        })
        .collect();
    Configuration::new(ConfigFields {
        rack_id: RACK_ID,
        epoch: Epoch(u64::MAX),
        coordinator: rack.ids()[0].clone(),
        members,
        threshold: Threshold::new(2).unwrap(),
        encrypted_rack_secrets: None,
    })
    .unwrap()
}

/// What a sled's node holds and does, less its counters.
async fn state(rack: &Rack, i: usize) -> (StateSummary, u64) {
    let report = rack.handle(i).status().await.unwrap();
    let generation = rack.handle(i).metrics().await.unwrap().ledger.generation;
    (report.node.state, generation)
}

async fn refusals(rack: &Rack, i: usize) -> u32 {
    let counters = rack.handle(i).metrics().await.unwrap().counters;
    counters.get(Counter::RequestBadTag) + counters.get(Counter::RequestWrongTarget)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_forged_prepare_and_commit_at_the_last_epoch_changes_nothing_but_a_counter() {
    let sleds = 4;
    let mut rack = Rack::new(0, sleds, 61);
    rack.start_all().await;
    rack.wait_connected().await;
    let all: Vec<usize> = (0..sleds).collect();
    let mut nexus = Driver::new(Origin::Fresh, &rack.ids()).await;
    assert_eq!(nexus.start(&rack, &all, 2, 0).await, Epoch(1));
    nexus.settle(&rack, LIMIT).await;

    let forged = made_up(&rack);
    let attacker = rack.handle(0).clone();
    let mut before = Vec::new();
    for i in 0..sleds {
        before.push(state(&rack, i).await);
    }
    // What the attacker can put in the frame: no tag Nexus made; a tag
    // made with its own key (the only one it holds), for the target or
    // naming itself; Nexus's genuine tag of another request to the
    // target (a commit of epoch 1).
    for target in 1..sleds {
        let to = rack.ids()[target].clone();
        let own_key = sled_key(&rack.ids()[0]);
        let genuine = authorize(
            &to,
            &CommitRequest {
                rack_id: RACK_ID,
                epoch: Epoch(1),
            },
        );
        let forgeries = [
            (
                RequestAuth {
                    rack_id: RACK_ID,
                    target: to.clone(),
                    nonce: [0; 16],
                    tag: [0; 32],
                },
                RequestRefusal::BadTag,
            ),
            (
                own_key.authorize(&to, [1; 16], &forged).unwrap(),
                RequestRefusal::BadTag,
            ),
            (
                own_key.authorize(&rack.ids()[0], [2; 16], &forged).unwrap(),
                RequestRefusal::WrongTarget,
            ),
            (genuine, RequestRefusal::BadTag),
        ];
        let count = forgeries.len() as u32;
        for (auth, refusal) in forgeries {
            let answer = attacker
                .proxy_prepare_and_commit(to.clone(), auth, forged.clone(), DEADLINE)
                .await;
            assert_eq!(answer, Err(Unavailable::Refused(refusal)), "sled {target}");
        }
        assert_eq!(refusals(&rack, target).await, count, "sled {target}");
    }
    // And straight to a node, as a local process without the key would.
    let direct = rack.handle(1).prepare_and_commit(
        RequestAuth {
            rack_id: RACK_ID,
            target: rack.ids()[1].clone(),
            nonce: [3; 16],
            tag: [0xff; 32],
        },
        forged.clone(),
    );
    assert_eq!(
        direct.await,
        Err(Unavailable::Refused(RequestRefusal::BadTag))
    );
    for (i, before) in before.iter().enumerate() {
        assert_eq!(&state(&rack, i).await, before, "sled {i} changed");
    }
    let metrics = rack.handle(1).metrics().await.unwrap();
    assert_eq!(metrics.counters.get(Counter::RequestBadTag), 4);
    let text = tq_std::metrics::render(&metrics);
    assert!(text.contains("request_bad_tag"), "{text}");

    // The rack still reconfigures: epoch 2, then 3, everywhere.
    assert_eq!(nexus.start(&rack, &all, 3, 1).await, Epoch(2));
    nexus.settle(&rack, LIMIT).await;
    assert_eq!(nexus.start(&rack, &all, 2, 2).await, Epoch(3));
    nexus.settle(&rack, LIMIT).await;
    for i in 0..sleds {
        let (summary, _) = state(&rack, i).await;
        assert_eq!(summary.latest_committed, Some(Epoch(3)), "sled {i}");
        assert!(
            summary.configs.iter().all(|c| c.epoch != Epoch(u64::MAX)),
            "sled {i} stored the made-up configuration"
        );
    }
    rack.shutdown().await;
}

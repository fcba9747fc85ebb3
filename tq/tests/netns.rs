//! Separate hosts: each sled a `tq sled` process in its own network
//! namespace, the namespaces joined by veth pairs to a bridge in a
//! namespace of its own, IPv6 unique local addresses only (Oxide's
//! bootstrap network is IPv6-only), no route off the machine. Nexus (this
//! test, in the root namespace, reaching the bridge over one more veth
//! pair) drives the demo's scenario over the sleds' HTTP APIs: the LRTQ
//! upgrade, reconfigurations, a sled SIGKILLed in the middle of a prepare,
//! a coordinator killed, a cold boot after which every member unlocks.
//!
//! The hosts are `tq::netns`'s. Needs root and iproute2 (`ip`); where
//! namespaces cannot be made it says so and checks nothing (`SKIPPED` on
//! stderr). Everything it made is removed at the end, whether it passed or
//! not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq::demo::layout::Addressing;
use tq::demo::progress::Progress;
use tq::demo::sleds::Launch;
use tq::demo::{ADDED, Options};
use tq::netns::{Hosts, cannot_make_namespaces};

const TQ: &str = env!("CARGO_BIN_EXE_tq");

/// Sleds of the LRTQ rack (two more are added).
const LRTQ_SLEDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleds_in_their_own_network_namespaces_over_ipv6_run_the_whole_scenario() {
    if let Some(why) = cannot_make_namespaces() {
        eprintln!("SKIPPED (not run, not passed): network namespaces cannot be made here: {why}");
        return;
    }
    let sleds = LRTQ_SLEDS + ADDED;
    let hosts = Hosts::create(sleds).unwrap_or_else(|e| panic!("setting up namespaces: {e}"));
    let options = Options {
        sleds: LRTQ_SLEDS,
        seed: 11,
        launch: Launch::Processes {
            exe: TQ.into(),
            wrappers: hosts.wrappers(),
        },
        addressing: Addressing::Fixed(hosts.addresses().to_vec()),
        keep: false,
    };
    let record = tq::demo::run(options, Progress::new()).await.unwrap();
    let summary = record.summary();
    eprintln!("{summary}");
    assert!(record.passed(), "{summary}");
    // The sleds talked to each other and to Nexus only over the bridge.
    assert!(
        record
            .phases
            .iter()
            .any(|p| p.name == "cold boot" && p.traffic.messages > 0)
    );
    drop(hosts);
}

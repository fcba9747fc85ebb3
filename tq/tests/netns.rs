//! Separate hosts: each sled a `tq sled` process in its own network
//! namespace, the namespaces joined by veth pairs to a bridge in a
//! namespace of its own, IPv6 unique local addresses only (Oxide's
//! bootstrap network is IPv6-only), no route off the machine. Nexus (this
//! test, in the root namespace, reaching the bridge over one more veth
//! pair) drives the demo's scenario over the sleds' HTTP APIs: the LRTQ
//! upgrade, reconfigurations, a sled SIGKILLed in the middle of a prepare,
//! a coordinator killed, a cold boot after which every member unlocks.
//!
//! Needs root and iproute2 (`ip`); where namespaces cannot be made it says
//! so and checks nothing (`SKIPPED` on stderr). Everything it made is
//! removed at the end, whether it passed or not.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::net::{IpAddr, Ipv6Addr};
use std::process::Command;

use tq::demo::layout::Addressing;
use tq::demo::progress::Progress;
use tq::demo::sleds::Launch;
use tq::demo::{ADDED, Options};

const TQ: &str = env!("CARGO_BIN_EXE_tq");

/// Sleds of the LRTQ rack (two more are added).
const LRTQ_SLEDS: usize = 5;

/// Runs `ip args...`; `Err` with its stderr if it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The namespaces and links this test made; removed on drop.
struct Hosts {
    /// Each sled's namespace.
    sleds: Vec<String>,
    /// The bridge's namespace.
    bridge: String,
    /// Each sled's address.
    addresses: Vec<IpAddr>,
}

impl Hosts {
    /// `count` sled namespaces on one bridge, and the root namespace on it
    /// too. Unique names and a unique /64 per run.
    fn create(count: usize) -> Result<Self, String> {
        let run = std::process::id() % 10_000;
        let tag = format!("tq{run}");
        let prefix = [0xfd74, 0x7100, run as u16, 0, 0, 0, 0];
        let address = |host: u16| {
            let [a, b, c, d, e, f, g] = prefix;
            Ipv6Addr::new(a, b, c, d, e, f, g, host)
        };
        let mut hosts = Self {
            sleds: Vec::new(),
            bridge: format!("{tag}-br"),
            addresses: Vec::new(),
        };
        // Each step is recorded before the next, so a failure part way
        // leaves nothing behind (Drop removes what exists).
        ip(&["netns", "add", &hosts.bridge])?;
        ip(&["-n", &hosts.bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hosts.bridge, "link", "set", "br0", "up"])?;
        for i in 0..count {
            let ns = format!("{tag}-s{i}");
            ip(&["netns", "add", &ns])?;
            hosts.sleds.push(ns.clone());
            let (inside, port) = (format!("v{i}"), format!("p{i}"));
            ip(&[
                "link",
                "add",
                &inside,
                "netns",
                &ns,
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &hosts.bridge,
            ])?;
            let addr = address(u16::try_from(i + 1).map_err(|e| e.to_string())?);
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/64"),
                "dev",
                &inside,
                "nodad",
            ])?;
            ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            ip(&[
                "-n",
                &hosts.bridge,
                "link",
                "set",
                &port,
                "master",
                "br0",
                "up",
            ])?;
            hosts.addresses.push(IpAddr::V6(addr));
        }
        // The root namespace's leg (its end goes when the bridge's
        // namespace is deleted).
        let root = format!("{tag}r");
        ip(&[
            "link",
            "add",
            &root,
            "type",
            "veth",
            "peer",
            "name",
            "root",
            "netns",
            &hosts.bridge,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/64", address(0xffff)),
            "dev",
            &root,
            "nodad",
        ])?;
        ip(&["link", "set", &root, "up"])?;
        ip(&[
            "-n",
            &hosts.bridge,
            "link",
            "set",
            "root",
            "master",
            "br0",
            "up",
        ])?;
        Ok(hosts)
    }

    /// The command prefix that runs a program in sled `i`'s namespace.
    fn wrappers(&self) -> Vec<Vec<String>> {
        self.sleds
            .iter()
            .map(|ns| vec!["ip".into(), "netns".into(), "exec".into(), ns.clone()])
            .collect()
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in self.sleds.iter().chain([&self.bridge]) {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Why namespaces cannot be made here, if they cannot.
fn cannot_make_namespaces() -> Option<String> {
    let probe = format!("tq{}-probe", std::process::id() % 10_000);
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(e),
    }
}

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
        addressing: Addressing::Fixed(hosts.addresses.clone()),
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
